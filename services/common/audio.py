"""PCM helpers: 16-bit little-endian mono is the one format audio travels in between services."""

from __future__ import annotations

import io
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soxr

SAMPLE_WIDTH = 2
FRAME_MS = 20


def frame_bytes(sample_rate: int, ms: int = FRAME_MS) -> int:
    """Bytes in one `ms` frame of 16-bit mono PCM."""
    return sample_rate * ms // 1000 * SAMPLE_WIDTH


def resample(pcm: bytes, src_rate: int, dst_rate: int) -> bytes:
    """Band-limited resampling (soxr); never naive decimation, which aliases phone audio."""
    if src_rate == dst_rate or not pcm:
        return pcm
    samples = np.frombuffer(pcm, dtype="<i2")
    out = soxr.resample(samples, src_rate, dst_rate, quality="HQ")
    return np.asarray(out, dtype="<i2").tobytes()


class StreamResampler:
    """`resample` for a live stream: soxr keeps its filter state from chunk to chunk (resampling
    each chunk alone would click at every boundary). soxr works in blocks, so output trails
    input by up to ~100 ms until `flush()`."""

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        self._soxr = soxr.ResampleStream(src_rate, dst_rate, 1, dtype="int16", quality="HQ")

    def push(self, pcm: bytes) -> bytes:
        return self._soxr.resample_chunk(np.frombuffer(pcm, dtype="<i2")).astype("<i2").tobytes()

    def flush(self) -> bytes:
        """The tail still in the filter; afterwards the resampler starts a fresh stream."""
        tail = self._soxr.resample_chunk(np.zeros(0, dtype="<i2"), last=True)
        self._soxr.clear()
        return tail.astype("<i2").tobytes()


def float_to_pcm16(samples: np.ndarray) -> bytes:
    clipped = np.clip(samples, -1.0, 1.0)
    return (clipped * 32767.0).astype("<i2").tobytes()


def pcm16_to_float(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0


def split_frames(pcm: bytes, sample_rate: int, ms: int = FRAME_MS) -> Iterator[bytes]:
    """Fixed-size frames; the last one is padded with silence so every frame has full length."""
    size = frame_bytes(sample_rate, ms)
    for start in range(0, len(pcm), size):
        chunk = pcm[start : start + size]
        yield chunk.ljust(size, b"\0")


def duration_s(pcm: bytes, sample_rate: int) -> float:
    return len(pcm) / SAMPLE_WIDTH / sample_rate


def read_wav(path: str | Path, rate: int | None = None) -> tuple[bytes, int]:
    """Read a PCM WAV as 16-bit mono (channels mixed down), optionally resampled to `rate`."""
    with wave.open(str(path), "rb") as wav:
        channels, width, src_rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
        raw = wav.readframes(wav.getnframes())
    if width != SAMPLE_WIDTH:
        raise ValueError(f"{path}: {8 * width}-bit WAV; only 16-bit PCM WAV is supported")
    samples = np.frombuffer(raw, dtype="<i2")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype("<i2")
    pcm = samples.tobytes()
    if rate is not None:
        return resample(pcm, src_rate, rate), rate
    return pcm, src_rate


def wav_bytes(pcm: bytes, sample_rate: int, channels: int = 1) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(SAMPLE_WIDTH)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return buf.getvalue()


def write_wav(path: str | Path, pcm: bytes, sample_rate: int, channels: int = 1) -> None:
    Path(path).write_bytes(wav_bytes(pcm, sample_rate, channels))
