"""Test helpers for the ASR tests: speech at telephone rates, silence."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from difflib import SequenceMatcher

from services.asr.base import Endpointing, Hypothesis
from services.asr.engine import VoskRecognizer
from services.common.audio import split_frames

SENTENCE = "안녕하세요 저는 학생입니다 오늘 날씨가 좋네요"
DIGITS = "하나 둘 셋 넷 다섯 여섯"


@dataclass
class Speech:
    """One real utterance at telephone rates."""

    pcm8k: bytes
    pcm16k: bytes

    def at(self, rate: int) -> bytes:
        return self.pcm8k if rate == 8000 else self.pcm16k


def env_without_kernel_override() -> dict[str, str]:
    """This environment minus OPENBLAS_CORETYPE: a process started with it picks OpenBLAS's
    kernels from the CPU's flags (these machines export one; an admin's value wins)."""
    return {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}


def silence(seconds: float, rate: int) -> bytes:
    return b"\0\0" * int(seconds * rate)


async def wait_streams_closed(recognizer: VoskRecognizer, timeout: float = 5.0) -> None:
    """Server sessions release their stream just after the socket closes."""
    deadline = time.monotonic() + timeout
    while recognizer.pool.streams and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert recognizer.pool.streams == 0


async def run_stream(
    recognizer: VoskRecognizer,
    pcm: bytes,
    rate: int,
    chunk_ms: int = 100,
    endpointing: Endpointing | None = None,
    phrases: list[str] | None = None,
) -> list[Hypothesis]:
    """Every reply of one stream, the flush's final last."""
    stream = await recognizer.open_stream(rate, phrases=phrases, endpointing=endpointing)
    try:
        replies = [await stream.feed(chunk) for chunk in split_frames(pcm, rate, chunk_ms)]
        replies.append(await stream.finish())
    finally:
        await stream.close()
    return replies


def finals(replies: list[Hypothesis]) -> list[Hypothesis]:
    return [r for r in replies if r.final and r.text]


def similarity(a: str, b: str) -> float:
    """Character-level: Korean words differ by a syllable where Vosk wavers."""
    return SequenceMatcher(None, a.replace(" ", ""), b.replace(" ", "")).ratio()
