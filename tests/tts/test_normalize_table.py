"""Table-driven Russian normalization: `normalize_cases.tsv` holds written text from the seed
texts (../shared/seeds), the demo knowledge base and typical hotline answers, each with its
hand-reviewed reading.

Known limitation kept out of the table: a decimal after a preposition stays nominative
(«свыше 6,3 миллиона»): num2words has no case for fractions.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from services.tts.normalize import normalize

TABLE = Path(__file__).with_name("normalize_cases.tsv")
CASES = [
    tuple(line.split("\t"))
    for line in TABLE.read_text(encoding="utf-8").splitlines()
    if line and not line.startswith("#")
]
IDS = [text[:40] for text, _ in CASES]


def test_table_is_big_enough() -> None:
    assert len(CASES) >= 100


@pytest.mark.parametrize(("text", "expected"), CASES, ids=IDS)
def test_reading(text: str, expected: str) -> None:
    assert normalize(text) == expected


@pytest.mark.parametrize(("text", "expected"), CASES, ids=IDS)
def test_normalizing_twice_changes_nothing(text: str, expected: str) -> None:
    assert normalize(expected) == expected
