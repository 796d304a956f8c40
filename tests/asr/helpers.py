"""Test helpers for the ASR tests: speech at telephone rates, silence."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from services.asr.engine import VoskRecognizer

SENTENCE = "안녕하세요 저는 학생입니다 오늘 날씨가 좋네요"
DIGITS = "하나 둘 셋 넷 다섯 여섯"


@dataclass
class Speech:
    """One real utterance at telephone rates."""

    pcm8k: bytes
    pcm16k: bytes

    def at(self, rate: int) -> bytes:
        return self.pcm8k if rate == 8000 else self.pcm16k


def silence(seconds: float, rate: int) -> bytes:
    return b"\0\0" * int(seconds * rate)


async def wait_streams_closed(recognizer: VoskRecognizer, timeout: float = 5.0) -> None:
    """Server sessions release their stream just after the socket closes."""
    deadline = time.monotonic() + timeout
    while recognizer.pool.streams and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert recognizer.pool.streams == 0
