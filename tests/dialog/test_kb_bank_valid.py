"""The bank card line KB (bench/eval/kb_bank), the evaluation's second KB, loads with the product's
loader and keeps its shape: enough scenarios, 5-10 examples each, and no conversation acts of its
own (the built-in layer must supply them). Loader only: the matcher is never run here."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from services.dialog.loader import KnowledgeBase, require_kb

KB_BANK = Path(__file__).resolve().parents[2] / "bench" / "eval" / "kb_bank"
# What callers say for the built-in acts (ё as е): no scenario here may claim one as an example.
ACT_PHRASES = {
    "до свидания",
    "спасибо",
    "спасибо до свидания",
    "повторите",
    "еще раз",
    "да",
    "нет",
    "алло",
    "вы меня слышите",
    "оператор",
    "соедините с оператором",
    "позовите человека",
}


@cache
def kb() -> KnowledgeBase:
    return require_kb(KB_BANK)[0]


def test_loads_without_errors_and_is_big_enough() -> None:
    assert len(kb().scenarios) >= 60


def test_examples_per_scenario() -> None:
    wrong = {
        sid: len(sc.examples)
        for sid, sc in kb().scenarios.items()
        if not 5 <= len(sc.examples) <= 10
    }
    assert not wrong, f"scenarios outside 5-10 examples: {wrong}"


def test_every_scenario_answers_and_names_its_topic() -> None:
    for sid, sc in kb().scenarios.items():
        assert sc.answers and sc.topic and sc.tests, sid


def test_defines_no_conversation_acts() -> None:
    for sid, sc in kb().scenarios.items():
        assert sc.action == "answer", f"{sid}: action {sc.action} is a built-in act"
        claimed = {e.lower().replace("ё", "е") for e in sc.examples} & ACT_PHRASES
        assert not claimed, f"{sid}: act phrases as examples: {claimed}"


def test_hands_off_to_the_bank_queues() -> None:
    queues = {sc.handoff.queue for sc in kb().scenarios.values() if sc.handoff}
    assert {"fraud", "complaints", "operators"} <= queues
