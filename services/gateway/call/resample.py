"""Streaming soxr between two rates of 16-bit mono PCM (identity when they match): a telephone
line and its call, a caller and an operator."""

from __future__ import annotations

import numpy as np
import soxr


class StreamResampler:
    def __init__(self, src: int, dst: int) -> None:
        self._stream = soxr.ResampleStream(src, dst, 1, dtype="int16") if src != dst else None

    def __call__(self, pcm: bytes, size: int | None = None) -> bytes:
        """`size`: exactly this many bytes out (a fixed frame), cut or padded with silence."""
        if self._stream is None:
            return pcm
        out = self._stream.resample_chunk(np.frombuffer(pcm, dtype="<i2")).astype("<i2").tobytes()
        return out if size is None else out[:size].ljust(size, b"\0")
