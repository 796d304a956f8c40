"""What a waiting caller hears: the place in line and the estimated wait, in Russian.

Numbers are spelled by num2words (ordinals for the place, feminine cardinals to agree with
«минута») and the noun agrees with its number through pymorphy3's `make_agree_with_number`,
so «одна минута», «две минуты», «пять минут», «двадцать одна минута» come out right.
"""

from __future__ import annotations

import math
from functools import lru_cache

import pymorphy3
from num2words import num2words

from services.handoff.models import Position

# Past this the caller hears «больше часа» rather than a number of minutes.
LONGEST_ESTIMATE_MIN = 60


@lru_cache(maxsize=1)
def _morph() -> pymorphy3.MorphAnalyzer:
    return pymorphy3.MorphAnalyzer()


def agree(noun: str, number: int) -> str:
    """`noun` in the form that goes with `number` (минута: минута / минуты / минут)."""
    return str(_morph().parse(noun)[0].make_agree_with_number(number).word)


def place_phrase(place: int) -> str:
    """«вы третий в очереди» (the caller addressed as «вы»: masculine ordinal)."""
    if place < 1:
        raise ValueError(f"a place in line starts at 1, not {place}")
    return f"вы {num2words(place, lang='ru', to='ordinal')} в очереди"


def minutes_phrase(minutes: int) -> str:
    """«две минуты», «двадцать одна минута»."""
    return f"{num2words(minutes, lang='ru', gender='f')} {agree('минута', minutes)}"


def wait_phrase(eta_seconds: float) -> str:
    """«примерно две минуты»; under a minute: «меньше минуты»."""
    if eta_seconds < 60:
        return "меньше минуты"
    minutes = math.ceil(eta_seconds / 60 - 0.25)  # 2 min 10 s is «две», 2 min 50 s is «три»
    if minutes > LONGEST_ESTIMATE_MIN:
        return "больше часа"
    return f"примерно {minutes_phrase(minutes)}"


def announcement(position: Position, *, callback_key: str | None = "1") -> str:
    """The whole sentence the hold loop speaks between stretches of music."""
    parts = [place_phrase(position.place).capitalize() + "."]
    if position.eta_seconds is None:
        parts.append("Сейчас все операторы заняты, мы соединим вас, как только кто-то освободится.")
    else:
        parts.append(f"Время ожидания — {wait_phrase(position.eta_seconds)}.")
    if callback_key:
        parts.append(
            f"Чтобы не ждать, нажмите {callback_key} или скажите «перезвоните мне», "
            "и оператор вам перезвонит."
        )
    return " ".join(parts)
