"""The say-as readings, sentence splitting and stress marking around the normalization table."""

from __future__ import annotations

import pytest

from services.tts.normalize import (
    add_stress,
    date_words,
    normalize,
    spell,
    split_sentences,
    telephone,
    time_words,
)


@pytest.mark.parametrize(
    ("number", "spoken"),
    [
        ("8-800-234-11", "восемь, восемьсот, двести тридцать четыре, одиннадцать"),
        (
            "+7 495 777-77-77",
            "плюс семь, четыреста девяносто пять, семьсот семьдесят семь, "
            "семьдесят семь, семьдесят семь",
        ),
        ("3210", "тридцать два, десять"),
        ("122", "сто двадцать два"),
        ("083", "ноль восемьдесят три"),
        ("88005553535", "восемь, восемьсот, пятьсот пятьдесят пять, тридцать пять, тридцать пять"),
    ],
)
def test_telephone_groups(number: str, spoken: str) -> None:
    assert telephone(number) == spoken


def test_time_and_date_words() -> None:
    assert time_words("9:00") == "девять часов"
    assert time_words("21:00", "g") == "двадцати одного часа"
    assert time_words("9:05") == "девять ноль пять"
    assert date_words(1, 9, 2024) == "первое сентября две тысячи двадцать четвёртого года"
    assert date_words(15, 12, None, "g") == "пятнадцатого декабря"


def test_abbreviations_are_spelled_with_final_stress() -> None:
    assert spell("РФ") == "эр+эф"
    assert spell("ОМС") == "оэм+эс"
    assert spell("SMS") == "эс эм +эс"


def test_sentences_split_for_streaming() -> None:
    text = normalize("Здравствуйте! Мы работаем с 9:00 до 18:00. Звоните: 8-800-200-34-11.")
    assert split_sentences(text) == [
        "Здравствуйте!",
        "Мы работаем с девяти до восемнадцати часов.",
        "Звоните: восемь, восемьсот, двести, тридцать четыре, одиннадцать.",
    ]


def test_very_long_sentence_is_cut_at_commas() -> None:
    text = ", ".join(["горячая линия работает"] * 40) + "."
    chunks = split_sentences(text)
    assert len(chunks) > 1
    assert all(len(c) <= 300 for c in chunks)
    assert " ".join(chunks) == text


def test_stress_marks_and_yo_for_silero() -> None:
    stressed = add_stress("позвоните по телефону горячей линии, мы ответим на все вопросы")
    assert "позвон+ите" in stressed
    assert "телеф+ону" in stressed
    assert "+эр" not in add_stress("эр+эф")  # a mark already given is kept, not doubled
    assert add_stress("эр+эф") == "эр+эф"
