"""The SSML subset the TTS service accepts, turned into plain parts the synthesizer renders.

Supported: <speak>, <p>, <s>, <break time="500ms"|strength>, <prosody rate="slow|fast|120%">,
<say-as interpret-as="telephone|cardinal|date|time">. Anything else is a clear error.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from services.tts.normalize import CASE_AFTER, cardinal, date_words, telephone, time_words

MAX_BREAK_MS = 5000
BREAK_STRENGTH_MS = {
    "none": 0,
    "x-weak": 100,
    "weak": 200,
    "medium": 400,
    "strong": 700,
    "x-strong": 1000,
}
RATE_WORDS = {
    "x-slow": 0.6,
    "slow": 0.8,
    "medium": 1.0,
    "default": 1.0,
    "fast": 1.25,
    "x-fast": 1.5,
}


class SsmlError(ValueError):
    """The SSML is malformed or uses something outside the supported subset."""


@dataclass(frozen=True)
class Part:
    """Text to speak at `speed`, or (text empty) a pause of `pause_ms`."""

    text: str = ""
    pause_ms: int = 0
    speed: float = 1.0


def parse_ssml(ssml: str) -> list[Part]:
    try:
        root = ET.fromstring(ssml.strip())
    except ET.ParseError as exc:
        raise SsmlError(f"malformed SSML: {exc}") from exc
    if root.tag != "speak":
        raise SsmlError(f"SSML must start with <speak>, not <{root.tag}>")
    parts: list[Part] = []
    _walk(root, 1.0, parts)
    return _merge(parts)


def _walk(element: ET.Element, speed: float, parts: list[Part]) -> None:
    if element.text:
        parts.append(Part(element.text, speed=speed))
    for child in element:
        if child.tag == "break":
            parts.append(Part(pause_ms=_break_ms(child)))
        elif child.tag == "say-as":
            before = "".join(p.text for p in parts[-2:])
            parts.append(Part(_say_as(child, before), speed=speed))
        elif child.tag == "prosody":
            _walk(child, _rate(child.get("rate", "medium")), parts)
        elif child.tag in ("p", "s"):
            _walk(child, speed, parts)
            parts.append(Part(". ", speed=speed))
        else:
            raise SsmlError(f"unsupported SSML element <{child.tag}>")
        if child.tail:
            parts.append(Part(child.tail, speed=speed))


def _break_ms(element: ET.Element) -> int:
    if (time := element.get("time")) is not None:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*", time)
        if not match:
            raise SsmlError(f'<break time="{time}">: use milliseconds or seconds, e.g. "500ms"')
        ms = float(match.group(1)) * (1000 if match.group(2) == "s" else 1)
        if ms > MAX_BREAK_MS:
            raise SsmlError(f"<break> longer than {MAX_BREAK_MS} ms")
        return round(ms)
    strength = element.get("strength", "medium")
    if strength not in BREAK_STRENGTH_MS:
        raise SsmlError(f'<break strength="{strength}">: one of {", ".join(BREAK_STRENGTH_MS)}')
    return BREAK_STRENGTH_MS[strength]


def _rate(rate: str) -> float:
    if rate in RATE_WORDS:
        return RATE_WORDS[rate]
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*%\s*", rate)
    value = float(match.group(1)) / 100 if match else None
    if value is None or not 0.5 <= value <= 2.0:
        raise SsmlError(f'<prosody rate="{rate}">: use 50%..200% or x-slow..x-fast')
    return value


def _say_as(element: ET.Element, before: str) -> str:
    """The words for one <say-as>; numbers take the case the preposition before them asks for."""
    kind, text = element.get("interpret-as", ""), "".join(element.itertext()).strip()
    words = re.findall(r"[а-яё]+", before.lower())
    case = CASE_AFTER.get(words[-1], "n") if words else "n"
    try:
        if kind == "telephone":
            return telephone(text)
        if kind == "cardinal":
            return cardinal(int(re.sub(r"[\s\u00a0]", "", text)), case)
        if kind == "time":
            return time_words(text.replace(".", ":"), case)
        if kind == "date":
            return _date(text)
    except ValueError as exc:
        raise SsmlError(f'<say-as interpret-as="{kind}">{text}</say-as>: {exc}') from exc
    raise SsmlError(f'<say-as interpret-as="{kind}">: use telephone, cardinal, date or time')


def _date(text: str) -> str:
    """«01.09.2024», «1.9», «2024-09-01»."""
    if match := re.fullmatch(r"(\d{4})-(\d{1,2})-(\d{1,2})", text):
        year, month, day = (int(g) for g in match.groups())
    elif match := re.fullmatch(r"(\d{1,2})\.(\d{1,2})(?:\.(\d{4}))?", text):
        day, month = int(match.group(1)), int(match.group(2))
        year = int(match.group(3)) if match.group(3) else 0
    else:
        raise ValueError("write dates as DD.MM.YYYY, DD.MM or YYYY-MM-DD")
    if not (1 <= day <= 31 and 1 <= month <= 12):
        raise ValueError("no such date")
    return date_words(day, month, year or None)


def _merge(parts: list[Part]) -> list[Part]:
    """Join neighbouring text at the same speed, so a sentence with a say-as stays one sentence."""
    merged: list[Part] = []
    for part in parts:
        if merged and part.text and merged[-1].text and merged[-1].speed == part.speed:
            merged[-1] = Part(merged[-1].text + part.text, speed=part.speed)
        elif part.text.strip() or part.pause_ms:
            merged.append(part)
    return merged
