"""The waiting caller's Russian: places 1–25 and minutes 1–25."""

from __future__ import annotations

import pytest

from services.handoff.announce import announcement, minutes_phrase, place_phrase, wait_phrase
from services.handoff.models import Position


@pytest.mark.parametrize(
    ("place", "text"),
    [
        (1, "вы первый в очереди"),
        (2, "вы второй в очереди"),
        (3, "вы третий в очереди"),
        (11, "вы одиннадцатый в очереди"),
        (20, "вы двадцатый в очереди"),
        (23, "вы двадцать третий в очереди"),
    ],
)
def test_places(place: int, text: str) -> None:
    assert place_phrase(place) == text


@pytest.mark.parametrize(
    ("minutes", "text"),
    [
        (1, "одна минута"),
        (2, "две минуты"),
        (4, "четыре минуты"),
        (5, "пять минут"),
        (11, "одиннадцать минут"),
        (12, "двенадцать минут"),
        (21, "двадцать одна минута"),
        (22, "двадцать две минуты"),
        (25, "двадцать пять минут"),
    ],
)
def test_minutes(minutes: int, text: str) -> None:
    assert minutes_phrase(minutes) == text


def _expected_noun(n: int) -> str:
    """The textbook rule, written out independently of pymorphy3."""
    if n % 10 == 1 and n % 100 != 11:
        return "минута"
    if 2 <= n % 10 <= 4 and not 12 <= n % 100 <= 14:
        return "минуты"
    return "минут"


@pytest.mark.parametrize("n", range(1, 26))
def test_every_number_agrees(n: int) -> None:
    words = minutes_phrase(n).split()
    assert words[-1] == _expected_noun(n)
    if n % 10 in (1, 2) and n % 100 not in (11, 12):
        assert words[-2] in ("одна", "две")  # feminine, to agree with «минута»
    ordinal = place_phrase(n).split()[-3]
    assert ordinal.endswith(("ый", "ой", "ий"))  # masculine nominative ordinal


def test_wait_rounding_and_bounds() -> None:
    assert wait_phrase(30) == "меньше минуты"
    assert wait_phrase(130) == "примерно две минуты"
    assert wait_phrase(170) == "примерно три минуты"
    assert wait_phrase(4000) == "больше часа"


def test_whole_announcement() -> None:
    at = Position(
        call_id="c",
        queue="q",
        place=3,
        eta_seconds=120,
        eta_from_history=True,
        operators_on_shift=2,
    )
    assert announcement(at) == (
        "Вы третий в очереди. Время ожидания — примерно две минуты. Чтобы не ждать, нажмите 1 "
        "или скажите «перезвоните мне», и оператор вам перезвонит."
    )
    nobody = at.model_copy(update={"eta_seconds": None, "operators_on_shift": 0})
    assert "все операторы заняты" in announcement(nobody, callback_key=None)
    with pytest.raises(ValueError):
        place_phrase(0)
