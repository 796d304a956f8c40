"""Checks that need the matcher: conflicting examples and scenarios' test phrases."""

from __future__ import annotations

from dataclasses import dataclass

from services.dialog.engine import Snapshot
from services.dialog.loader import Issue

THIN_MARGIN = 0.05  # raw score gap under which an example's own scenario only barely wins


def conflicts(snap: Snapshot) -> list[Issue]:
    """Match every example against the whole KB (minus itself): would the bot answer or clarify
    it with another scenario, or barely tell its own scenario from another?"""
    issues = []
    for n, (intent, i) in enumerate(snap.example_owner):
        text = snap.kb.scenarios[intent].examples[i]
        tokens, _ = snap.analyze(text)
        match = snap.matcher.match(tokens, exclude=n)
        if not match.ranked:
            continue
        winner = match.ranked[0]
        if match.decision == "handoff":  # nobody would get it: the example is just unusual
            continue
        source, path = snap.kb.where[intent]
        at = (*path, "examples", i)
        if winner.intent != intent:
            own = next((c.score for c in match.ranked if c.intent == intent), 0.0)
            issues.append(
                source.issue(
                    "warning",
                    at,
                    f"example «{text}» of `{intent}` matches `{winner.intent}` better "
                    f"({winner.score:.2f} vs {own:.2f})",
                    f"reword it, move it to `{winner.intent}`, or strengthen `{intent}`",
                )
            )
        elif len(match.ranked) > 1 and match.margin < THIN_MARGIN:
            issues.append(
                source.issue(
                    "warning",
                    at,
                    f"example «{text}» of `{intent}` wins only by {match.margin:.2f} "
                    f"over `{match.ranked[1].intent}`",
                    f"make the examples of the two more distinct, or give `{intent}` keywords",
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
