"""Checks that need the matcher: conflicting examples and scenarios' test phrases."""

from __future__ import annotations

from dataclasses import dataclass, replace

from services.dialog.engine import Snapshot
from services.dialog.loader import Issue
from services.dialog.session import Session

CLOSE_PAIR = 2  # examples going to the other scenario (either way) that make a pair «close»
SHOWN = 3  # colliding examples quoted per pair


def expected(snap: Snapshot) -> str:
    """What cross-validation at load says this KB will do with callers like its examples."""
    rep, t = snap.matcher.report, snap.matcher.thresholds
    model = (
        "fitted on this KB"
        if rep.source == "kb"
        else "the demo KB's (this KB has too few examples to fit its own)"
    )
    return (
        f"expected on phrasings like the examples (cross-validated over {rep.queries}): "
        f"answered right {rep.right:.0%}, wrong {rep.wrong:.0%}, clarified {rep.clarify:.0%}, "
        f"handed off {rep.handoff:.0%}; out-of-scope questions kept out {rep.oos_safe:.0%}. "
        f"Model: {model}; answer at ≥ {t.answer:.2f}, clarify at ≥ {t.clarify:.2f}"
    )


def conflicts(snap: Snapshot) -> list[Issue]:
    """Examples the KB's own model (trained without them) gives to another scenario, and pairs
    of scenarios it confuses, from the cross-validation done at load."""
    issues = []
    names = snap.matcher.intents

    def text(n: int) -> str:
        intent, i = snap.example_owner[n]
        return snap.kb.scenarios[intent].examples[i]

    for n, other, prob in snap.matcher.report.misassigned:
        intent, i = snap.example_owner[n]
        source, path = snap.kb.where[intent]
        issues.append(
            source.issue(
                "warning",
                (*path, "examples", i),
                f"example «{text(n)}» of `{intent}` matches `{names[other]}` better (the "
                f"KB's model trained without it gives it to `{names[other]}`, {prob:.2f})",
                f"reword it, move it to `{names[other]}`, or strengthen `{intent}`",
            )
        )
    for (a, b), examples in sorted(snap.matcher.report.confused.items()):
        if len(examples) < CLOSE_PAIR:
            continue
        source, path = snap.kb.where[names[a]]
        quoted = ", ".join(f"«{text(n)}» (`{snap.example_owner[n][0]}`)" for n in examples[:SHOWN])
        issues.append(
            source.issue(
                "warning",
                path,
                f"scenarios `{names[a]}` and `{names[b]}` are hard to tell apart: "
                f"{len(examples)} of their examples go to the other, e.g. {quoted}",
                "merge them, or give each examples and keywords the other does not use",
            )
        )
    return issues


@dataclass
class TestResult:
    scenario: str
    phrase: str
    ok: bool
    got: str | None
    decision: str
    score: float
    file: str
    line: int | None


def run_tests(snap: Snapshot) -> list[TestResult]:
    """Every scenario's `tests:` phrase must be answered by that scenario."""
    results = []
    for sc in snap.kb.scenarios.values():
        for i, phrase in enumerate(sc.tests):
            match, _ = snap.match(phrase)
            got = match.top.intent if match.top else None
            # a conversation act (the KB's «оператора», «до свидания») answers in the session
            reply = Session(snap).respond(phrase)
            if reply.act is not None and reply.intent == sc.id:
                got, match = sc.id, replace(match, decision="answer")
            file, line = snap.kb.location(sc.id, "tests", i)
            results.append(
                TestResult(
                    sc.id,
                    phrase,
                    got == sc.id and match.decision == "answer",
                    got,
                    match.decision,
                    round(match.confidence, 3),
                    file,
                    line,
                )
            )
    return results
