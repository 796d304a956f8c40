"""Optional stereo recording of a call for quality control: caller left, bot right.

Each side's 20 ms frames are placed at the time they passed the gateway, so the two channels
line up as the caller heard them (gaps become silence).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from services.common.audio import write_wav


class _Track:
    def __init__(self) -> None:
        self.pcm = bytearray()

    def put(self, offset: int, frame: bytes) -> None:
        at = max(offset - offset % 2, len(self.pcm))  # never overwrite: a burst goes after
        self.pcm += b"\0" * (at - len(self.pcm)) + frame


class Recorder:
    def __init__(self, sample_rate: int) -> None:
        self.sample_rate = sample_rate
        self._start = time.monotonic()
        self.caller, self.bot = _Track(), _Track()

    def _offset(self) -> int:
        return int((time.monotonic() - self._start) * self.sample_rate) * 2

    def heard(self, frame: bytes) -> None:
        self.caller.put(self._offset(), frame)

    def said(self, frame: bytes) -> None:
        self.bot.put(self._offset(), frame)

    def save(self, path: Path) -> Path:
        left = np.frombuffer(bytes(self.caller.pcm), dtype="<i2")
        right = np.frombuffer(bytes(self.bot.pcm), dtype="<i2")
        stereo = np.zeros((max(left.size, right.size), 2), dtype="<i2")
        stereo[: left.size, 0], stereo[: right.size, 1] = left, right
        path.parent.mkdir(parents=True, exist_ok=True)
        write_wav(path, stereo.tobytes(), self.sample_rate, channels=2)
        return path
