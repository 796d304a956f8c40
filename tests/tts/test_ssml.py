"""The SSML subset: breaks, say-as, prosody rate; anything else is refused clearly."""

from __future__ import annotations

import pytest

from services.tts.ssml import Part, SsmlError, parse_ssml


def test_say_as_kinds_and_breaks() -> None:
    parts = parse_ssml(
        '<speak>Звоните <say-as interpret-as="telephone">8-800-200-34-11</say-as>.'
        '<break time="700ms"/>Приём до <say-as interpret-as="time">18:00</say-as>, '
        'с <say-as interpret-as="date">01.09.2024</say-as>, более '
        '<say-as interpret-as="cardinal">1500</say-as> мест.<break strength="strong"/></speak>'
    )
    assert parts == [
        Part("Звоните восемь, восемьсот, двести, тридцать четыре, одиннадцать."),
        Part(pause_ms=700),
        Part(
            "Приём до восемнадцати часов, с первое сентября две тысячи двадцать четвёртого года, "
            "более одной тысячи пятисот мест."
        ),
        Part(pause_ms=700),
    ]


def test_prosody_rate() -> None:
    parts = parse_ssml(
        '<speak>Обычно. <prosody rate="slow">Медленно.</prosody>'
        '<prosody rate="150%">Быстро.</prosody></speak>'
    )
    assert [(p.text.strip(), p.speed) for p in parts] == [
        ("Обычно.", 1.0),
        ("Медленно.", 0.8),
        ("Быстро.", 1.5),
    ]


def test_sentences_and_paragraphs_end_sentences() -> None:
    parts = parse_ssml("<speak><p><s>Первое</s><s>Второе</s></p></speak>")
    assert parts == [Part("Первое. Второе. . ")]


@pytest.mark.parametrize(
    ("ssml", "message"),
    [
        ("<speak>да", "malformed SSML"),
        ("<voice>да</voice>", "must start with <speak>"),
        ("<speak><audio src='a.wav'/></speak>", "unsupported SSML element <audio>"),
        ('<speak><break time="10s"/></speak>', "longer than 5000 ms"),
        ('<speak><break strength="huge"/></speak>', "strength"),
        ('<speak><prosody rate="500%">да</prosody></speak>', "50%..200%"),
        ('<speak><say-as interpret-as="date">31.13.2024</say-as></speak>', "no such date"),
        ('<speak><say-as interpret-as="cardinal">много</say-as></speak>', "cardinal"),
        ('<speak><say-as interpret-as="characters">РФ</say-as></speak>', "use telephone"),
    ],
)
def test_bad_ssml(ssml: str, message: str) -> None:
    with pytest.raises(SsmlError, match=message):
        parse_ssml(ssml)
