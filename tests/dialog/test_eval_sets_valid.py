"""The caller-phrasing evaluation sets (bench/eval/*_eval*.yaml) are well-formed and stay apart
from their KBs: every file parses, names only scenarios its KB has, uses the known categories,
meets its minimum sizes, and repeats no KB example / tests / in_context phrase. Loader only: the
matcher is never run here (the sets are measured by the benchmarks, not fitted on)."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.dialog.loader import KnowledgeBase, require_kb

ROOT = Path(__file__).resolve().parents[2]
EVAL = ROOT / "bench" / "eval"
DEMO_KB = ROOT / "knowledge_base"
BANK_KB = EVAL / "kb_bank"
ISP_KB = EVAL / "kb_isp"
CATEGORIES = ("plain", "colloquial", "long", "short", "slips")
ACTS = ("bye", "thanks", "yes", "no", "repeat", "hello", "operator")
DEMO_ACT_SCENARIOS = {"goodbye", "repeat", "operator"}  # measured by acts_eval.yaml instead
# Acts issue 14 names word for word: kept even where a KB has the same phrase as an example
CANONICAL_ACTS = {"повторите"}


@dataclass(frozen=True)
class KBSet:
    file: str
    kb: Path
    per_scenario: int
    in_scope: int
    near_miss: int
    foreign: int
    not_covered: frozenset[str]  # scenarios of the KB the set need not cover


SETS = [
    KBSet("kb_eval_natural.yaml", DEMO_KB, 4, 0, 30, 15, frozenset(DEMO_ACT_SCENARIOS)),
    KBSet("kb_bank_eval.yaml", BANK_KB, 5, 300, 35, 35, frozenset()),
    KBSet("kb_isp_eval.yaml", ISP_KB, 5, 320, 40, 35, frozenset()),
]


def plain(text: str) -> str:
    """As bench/kb_eval.py compares phrases: lower case, ё→е, no punctuation."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower().replace("ё", "е")).split())


def text_of(line: str) -> str:
    return line.partition("=>")[0].strip()


@cache
def kb(directory: Path) -> KnowledgeBase:
    return require_kb(directory)[0]


def kb_phrases(directory: Path) -> set[str]:
    return {
        plain(t)
        for sc in kb(directory).scenarios.values()
        for t in (*sc.examples, *sc.tests, *sc.in_context)
    }


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((EVAL / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict), f"{name}: not a mapping"
    return data


def in_scope_lines(data: dict[str, Any]) -> list[str]:
    """Every in-scope line as written (with its `=> Регион` where given)."""
    return [t for cats in data["in_scope"].values() for ts in cats.values() for t in ts]


def all_lines(data: dict[str, Any]) -> list[str]:
    oos = data["out_of_scope"]
    return [
        *map(text_of, in_scope_lines(data)),
        *(n["text"] for n in oos["near_miss"]),
        *oos["foreign"],
    ]


# What speech recognition delivers: lower-case Russian words, spaces, hyphenated words
ASR_TEXT = re.compile(r"[а-яё]+(?:[ -][а-яё]+)*")


def assert_apart(name: str, lines: list[str], known: set[str]) -> None:
    """Lines look like recognised speech, none is given twice, none is a KB phrase."""
    shaped = [t for t in lines if not (isinstance(t, str) and ASR_TEXT.fullmatch(t))]
    assert not shaped, f"{name}: not shaped like recognised speech: {shaped}"
    copied = sorted({t for t in lines if plain(t) in known})
    assert not copied, f"{name}: lines equal to KB phrases (keep the set blind): {copied}"
    twice = sorted(t for t, n in Counter(map(plain, lines)).items() if n > 1)
    assert not twice, f"{name}: lines given twice: {twice}"


@pytest.mark.parametrize("spec", SETS, ids=lambda s: s.file)
def test_kb_set_shape(spec: KBSet) -> None:
    data = load(spec.file)
    assert set(data) == {"in_scope", "out_of_scope"}
    scenarios = set(kb(spec.kb).scenarios)
    in_scope: dict[str, dict[str, list[str]]] = data["in_scope"]
    assert not set(in_scope) - scenarios, f"unknown scenarios: {set(in_scope) - scenarios}"
    missing = scenarios - spec.not_covered - set(in_scope)
    assert not missing, f"scenarios without lines: {sorted(missing)}"
    for sid, cats in in_scope.items():
        assert set(cats) == set(CATEGORIES), f"{sid}: categories {sorted(cats)}"
        assert all(cats[c] for c in CATEGORIES), f"{sid}: an empty category"
        assert sum(map(len, cats.values())) >= spec.per_scenario, f"{sid}: too few lines"
    assert len(in_scope_lines(data)) >= spec.in_scope
    oos = data["out_of_scope"]
    assert set(oos) == {"near_miss", "foreign"}
    assert len(oos["near_miss"]) >= spec.near_miss
    assert len(oos["foreign"]) >= spec.foreign
    for item in oos["near_miss"]:
        assert set(item) == {"text", "near"}, item
        assert item["near"] in scenarios, f"near-miss names unknown scenario: {item}"


@pytest.mark.parametrize("spec", SETS, ids=lambda s: s.file)
def test_kb_set_blind(spec: KBSet) -> None:
    data = load(spec.file)
    assert_apart(spec.file, all_lines(data), kb_phrases(spec.kb))


def test_kb_set_slot_values_exist() -> None:
    regions = {v.name for v in kb(DEMO_KB).entities["region"].values}
    lines = in_scope_lines(load("kb_eval_natural.yaml"))
    named = {line.partition("=>")[2].strip() for line in lines if "=>" in line}
    assert named <= regions, f"unknown regions: {named - regions}"


def test_natural_set_apart_from_demo_set() -> None:
    old = load("kb_eval.yaml")
    known = {plain(text_of(t)) for ts in old["in_scope"].values() for t in ts}
    known |= {plain(t) for t in old["out_of_scope"]}
    assert_apart(
        "kb_eval_natural.yaml vs kb_eval.yaml", all_lines(load("kb_eval_natural.yaml")), known
    )


def test_acts_set() -> None:
    data = load("acts_eval.yaml")
    assert set(data) == {"acts", "not_acts"}
    assert tuple(data["acts"]) == ACTS  # `yes`/`no` quoted, or YAML reads booleans
    for act, lines in data["acts"].items():
        assert len(lines) >= 12, f"{act}: {len(lines)} lines"
    assert len(data["not_acts"]) >= 20
    for item in data["not_acts"]:
        assert set(item) == {"text", "note"} and item["note"], item
    lines = [
        *(t for ts in data["acts"].values() for t in ts),
        *(n["text"] for n in data["not_acts"]),
    ]
    known = set().union(*(kb_phrases(s.kb) for s in SETS)) - CANONICAL_ACTS
    assert_apart("acts_eval.yaml", lines, known)
