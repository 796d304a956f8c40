"""The matcher trained on a KB at load: its thresholds come from the KB, near misses stay
unanswered, a failed training keeps the old KB, the first match is warm."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import yaml

from services.dialog import calibrate, matcher
from services.dialog.calibrate import TrainingFailed, background
from services.dialog.engine import DialogEngine

EVAL = Path(__file__).resolve().parents[2] / "bench" / "eval"
ONLY_FILLERS = """\
scenarios:
  - id: hello
    title: Приветствие
    examples: [алло, ну это самое]
    answers: ["Слушаю."]
"""


def test_thresholds_are_fitted_on_the_kb_and_settings_override_them(write_kb) -> None:
    demo = DialogEngine.load(Path(__file__).resolve().parents[2] / "knowledge_base")
    fitted = demo.snapshot.matcher
    assert fitted.model.source == "kb" and 0.05 <= fitted.thresholds.answer < 0.99
    assert fitted.report.queries > 100 and 0 <= fitted.report.wrong <= calibrate.MAX_WRONG
    kb = write_kb(
        {
            "s.yaml": "settings:\n  matching: {answer_threshold: 0.9}\n",
            "a.yaml": "scenarios:\n  - id: a\n    title: Часы\n    examples: [когда работаете]\n"
            "    answers: [Всегда.]\n",
        }
    )
    small = DialogEngine.load(kb).snapshot.matcher
    assert small.model.source == "prior" and small.thresholds.answer == 0.9


@pytest.mark.parametrize(
    "text",
    # written for this test (not lines of bench/eval/): a word of a scenario, another subject
    [
        "где купить батарейки для пульта",
        "во сколько открывается рынок в субботу",
        "как записать собаку к ветеринару",
    ],
)
def test_near_misses_are_not_answered(demo_engine, text: str) -> None:
    match, _ = demo_engine.snapshot.match(text)
    assert match.decision != "answer", match


def test_reload_whose_training_fails_keeps_the_old_kb(mini_kb: Path, monkeypatch) -> None:
    engine = DialogEngine.load(mini_kb, isolate=False)  # the planted trainer is in this process
    before = engine.snapshot

    def failing(*_args: object, **_kwargs: object) -> None:
        raise TrainingFailed("planted")

    monkeypatch.setattr(matcher.calibrate, "train", failing)
    monkeypatch.setattr(matcher.Matcher.__init__, "__kwdefaults__", {"trainer": failing})
    status = engine.reload()
    assert not status.last_reload_ok and "planted" in status.errors[0].message
    assert engine.snapshot is before
    assert engine.new_session().respond("когда вы работаете").intent == "line_hours"


def test_a_kb_nothing_can_be_learnt_from_is_rejected_on_reload(mini_kb: Path) -> None:
    engine = DialogEngine.load(mini_kb)
    for path in mini_kb.glob("*.yaml"):
        path.unlink()
    (mini_kb / "a.yaml").write_text(ONLY_FILLERS, encoding="utf-8")
    status = engine.reload()
    assert not status.last_reload_ok and "TrainingFailed" in status.errors[0].message
    assert engine.snapshot.version == 1 and "line_hours" in engine.snapshot.kb.scenarios


def test_first_match_after_load_is_as_fast_as_later_ones(mini_kb: Path) -> None:
    snap = DialogEngine.load(mini_kb).snapshot
    started = time.perf_counter()
    snap.match("во сколько работает линия")
    first = time.perf_counter() - started
    later = []
    for _ in range(5):
        started = time.perf_counter()
        snap.match("во сколько работает линия")
        later.append(time.perf_counter() - started)
    assert first < max(10 * min(later), 0.05)  # warmed up at load (was 673 ms vs 3 ms)


def test_background_shares_no_line_with_the_eval_sets() -> None:
    def plain(text: str) -> str:
        return " ".join(re.sub(r"[^\w\s]", " ", text.lower().replace("ё", "е")).split())

    lines: set[str] = set()

    def walk(node: object) -> None:
        if isinstance(node, str):
            lines.add(plain(node.partition("=>")[0]))
        elif isinstance(node, dict):
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in EVAL.glob("*.yaml"):
        walk(yaml.safe_load(path.read_text(encoding="utf-8")))
    assert not {plain(q) for q in background()} & lines
