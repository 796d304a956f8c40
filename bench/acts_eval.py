"""Conversation acts on two KBs: per-act accuracy on bench/eval/acts_eval.yaml, and its
`not_acts` (act words inside a real question) handled as questions.

    PYTHONPATH=$PWD .venv/bin/python -m bench.acts_eval [--errors dev|test|all] [--out FILE]

Every line is the first caller turn of a fresh session (nothing open). An act line is right when
`Reply.act` is its act; a `bye` line handed off is counted apart (it must never happen). A
`not_acts` line is right when it is not taken for an act (`Reply.act` is None; the outcome it
then gets from the KB is shown). The set is split in halves, alternate lines: **dev** (even
lines) is the half the rules may be tuned on, **test** (odd lines) the half nobody looked at.
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.local import machine_note
from services.dialog.base import Act
from services.dialog.engine import DialogEngine

ROOT = Path(__file__).resolve().parents[1]
SET = ROOT / "bench" / "eval" / "acts_eval.yaml"
KBS = {
    "demo": ROOT / "knowledge_base",
    "bank": ROOT / "bench" / "eval" / "kb_bank",
    "isp": ROOT / "bench" / "eval" / "kb_isp",
}
# Each KB's own caller sets: their in-scope questions must not be taken for acts.
QUESTIONS = {
    "demo": ["kb_eval.yaml", "kb_eval_natural.yaml"],
    "bank": ["kb_bank_eval.yaml"],
    "isp": ["kb_isp_eval.yaml"],
}
OUT = ROOT / "bench" / "results" / "acts_eval.md"
HALVES = ("dev", "test")
HISTORY = (
    "How far to trust it: the rules (`services/dialog/acts.yaml`) were written before this set "
    "was read. Their first run on it, blind, is kept in `bench/results/acts_eval_blind.md` "
    "(all acts 77.0 % demo / 71.1 % bank, not_acts 89.3 % / 82.1 %). Then the misses of the "
    "**dev** half only were read, once, and the rules changed: act words compared by sound "
    "(«апиратора», «спасиба», «нэт»), more acknowledgements («отлично», «всё правильно»), "
    "refusals («неправильно»), «не слышно» as a line check (hello), an operator asked for beside "
    "other words only with a request word next to it. The **test** half was not read before "
    "this run: it is the honest figure. The false-positive check below was run after that "
    "change; its 6 hits (demo 3, bank 3: «работе» heard as «робот» by a fuzzy sound match, "
    "«перевести» far from «сотрудники») led to exact sound matches and the adjacency rule, and "
    "one more with a newer matcher («чужому человеку можно ли отменить») to «only a verb asks "
    "after the act», so it is fitted too. That last rule also turned the bank test half's one "
    "not_acts miss, already seen («пожилому человеку нужна помощь волонтёров»), into a hit: "
    "the bank's test-half not_acts figure is no longer blind (92.9 % before). After the test "
    "half's misses had been printed once (below), the only later change from act lines came "
    "from a unit test, not from these lines: fillers and an opening «да» / "
    "«нет» are dropped before a question is matched again. Lines the rules leave to the KB's "
    "matcher depend on it: with the matcher as of commit 57d5a66 the demo test half was 80.6 % "
    "(its own repeat / operator scenarios caught more paraphrases), with the one measured here "
    "it equals the bank KB's."
)


@dataclass(frozen=True)
class Line:
    text: str
    act: Act | None  # None: a not_acts line
    half: str


def read_set(path: Path = SET) -> list[Line]:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    lines = [
        Line(text, Act(act), HALVES[n % 2])
        for act, texts in data["acts"].items()
        for n, text in enumerate(texts)
    ]
    lines += [Line(item["text"], None, HALVES[n % 2]) for n, item in enumerate(data["not_acts"])]
    return lines


@dataclass(frozen=True)
class Heard:
    line: Line
    act: Act | None
    decision: str
    intent: str | None

    @property
    def right(self) -> bool:
        return self.act == self.line.act


def run(engine: DialogEngine, lines: list[Line]) -> list[Heard]:
    out = []
    for line in lines:
        reply = engine.new_session().respond(line.text)
        out.append(Heard(line, reply.act, reply.decision, reply.intent))
    return out


def _texts(node: object) -> list[str]:
    if isinstance(node, str):
        return [node.split("=>")[0].strip()]  # «текст => Регион»: the text
    if isinstance(node, dict):
        return [node["text"]] if "text" in node else [t for v in node.values() for t in _texts(v)]
    if isinstance(node, list):
        return [t for v in node for t in _texts(v)]
    return []


def questions(engine: DialogEngine, files: list[str]) -> list[str]:
    """In-scope lines of the KB's eval sets, of its scenarios that are not acts themselves."""
    linked = engine.snapshot.kb.acts.linked
    out = []
    for name in files:
        data = yaml.safe_load((SET.parent / name).read_text(encoding="utf-8"))
        for scenario, node in data["in_scope"].items():
            if scenario not in linked:
                out += _texts(node)
    return out


def taken_as_acts(engine: DialogEngine, lines: list[str]) -> list[tuple[str, Act]]:
    out = []
    for text in lines:
        act = engine.new_session().respond(text).act
        if act is not None:
            out.append((text, act))
    return out


def pct(a: int, n: int) -> str:
    return f"{100 * a / n:.1f} % ({a}/{n})" if n else "—"


def table(results: dict[str, list[Heard]], half: str | None) -> list[str]:
    names = list(results)
    rows = [
        f"| act | {' | '.join(names)} |",
        f"|---|{'---|' * len(names)}",
    ]
    picked = {k: [h for h in v if half is None or h.line.half == half] for k, v in results.items()}
    for act in [*Act, None]:
        label = act.value if act else "not_acts (taken as a question)"
        cells = []
        for name in names:
            mine = [h for h in picked[name] if h.line.act == act]
            cells.append(pct(sum(h.right for h in mine), len(mine)))
        rows.append(f"| {label} | {' | '.join(cells)} |")
    cells = []
    for name in names:
        acts = [h for h in picked[name] if h.line.act is not None]
        cells.append(pct(sum(h.right for h in acts), len(acts)))
    rows.append(f"| **all acts** | {' | '.join(cells)} |")
    cells = []
    for name in names:
        byes = [h for h in picked[name] if h.line.act is Act.BYE]
        cells.append(str(sum(h.decision == "handoff" for h in byes)))
    rows.append(f"| `bye` handed off (must be 0) | {' | '.join(cells)} |")
    return rows


def outcomes(results: dict[str, list[Heard]]) -> list[str]:
    rows = ["| KB | answered | clarify / rephrase | handed off |", "|---|---|---|---|"]
    for name, heard in results.items():
        questions = [h for h in heard if h.line.act is None and h.act is None]
        count = Counter(h.decision for h in questions)
        rows.append(f"| {name} | {count['answer']} | {count['clarify']} | {count['handoff']} |")
    return rows


def errors(results: dict[str, list[Heard]], half: str) -> list[str]:
    rows = []
    for name, heard in results.items():
        for h in heard:
            if not h.right and half in ("all", h.line.half):
                want = h.line.act.value if h.line.act else "a question"
                got = h.act.value if h.act else f"{h.decision} {h.intent or '—'}"
                rows.append(f"- {name} [{h.line.half}] «{h.line.text}»: want {want}, got {got}")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--errors", choices=("dev", "test", "all"), help="print the misses")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    lines = read_set()
    note = machine_note()
    engines = {name: DialogEngine.load(path) for name, path in KBS.items()}
    results = {name: run(engine, lines) for name, engine in engines.items()}
    asked = {name: questions(engine, QUESTIONS[name]) for name, engine in engines.items()}
    hijacked = {name: taken_as_acts(engines[name], asked[name]) for name in engines}
    text = [
        "# Conversation acts (bench/acts_eval.py)",
        "",
        f"Set: `bench/eval/acts_eval.yaml`, {sum(ln.act is not None for ln in lines)} act lines "
        f"and {sum(ln.act is None for ln in lines)} not_acts; each line is the first turn of a "
        "fresh session. KBs: demo (`knowledge_base/`, which has its own goodbye / repeat / "
        "operator scenarios), bank (`bench/eval/kb_bank/`) and isp (`bench/eval/kb_isp/`), "
        "which have none. isp was written after every rule here: its figures, its false "
        "positives included, are held out.",
        "",
        HISTORY,
        "",
    ]
    for half in ("test", "dev", None):
        title = {
            "test": "Test half (odd lines: never looked at while writing the rules)",
            "dev": "Dev half (even lines: the half the rules may have been tuned on)",
            None: "Whole set",
        }[half]
        text += [f"## {title}", "", *table(results, half), ""]
    text += [
        "## What the not_acts got (those taken as questions, whole set)",
        "",
        *outcomes(results),
        "",
        "## KB questions taken for acts (false positives)",
        "",
        "In-scope lines of each KB's own caller sets (`"
        + "`, `".join(f for fs in QUESTIONS.values() for f in fs)
        + "`), of scenarios that are not acts: a turn the act layer takes is never matched.",
        "",
        *(
            f"- {name}: {pct(len(hijacked[name]), len(asked[name]))}"
            + "".join(f"; «{t}» → {a.value}" for t, a in hijacked[name])
            for name in engines
        ),
        "",
        "Misses of the test half:",
        "",
        *(errors(results, "test") or ["- none"]),
        "",
        note,
        "",
    ]
    args.out.write_text("\n".join(text), encoding="utf-8")
    print("\n".join(text))
    if args.errors:
        print("\n".join(errors(results, args.errors)))


if __name__ == "__main__":
    main()
