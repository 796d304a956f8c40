"""Telephone audio formats: which rates and encodings a stream may send, and G.711 decoding."""

from __future__ import annotations

from typing import Literal

import numpy as np

Encoding = Literal["pcm16", "mulaw", "alaw"]

# Narrowband and wideband telephony, and the browser's 32/48 kHz: the rates the VAD gate runs at
# (it gates the caller's audio before anything is resampled to the model's rate).
PCM_RATES = frozenset({8000, 16000, 32000, 48000})
G711_RATE = 8000


def check_format(sample_rate: float, encoding: Encoding = "pcm16") -> int:
    """The rate as an int if this stream format is supported; ValueError saying what is."""
    if sample_rate != int(sample_rate) or int(sample_rate) not in PCM_RATES:
        raise ValueError(
            f"unsupported sample_rate {sample_rate:g}; supported: "
            + ", ".join(str(r) for r in sorted(PCM_RATES))
        )
    if encoding != "pcm16" and int(sample_rate) != G711_RATE:
        raise ValueError(f"{encoding} audio must be {G711_RATE} Hz, not {sample_rate:g}")
    return int(sample_rate)


def _ulaw_table() -> np.ndarray:
    code = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent, mantissa = (code >> 4) & 0x07, code & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(code & 0x80, -magnitude, magnitude).astype("<i2")


def _alaw_table() -> np.ndarray:
    code = np.arange(256, dtype=np.int32) ^ 0x55
    exponent, mantissa = (code >> 4) & 0x07, code & 0x0F
    magnitude = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
    )
    return np.where(code & 0x80, magnitude, -magnitude).astype("<i2")


_TABLES = {"mulaw": _ulaw_table(), "alaw": _alaw_table()}


def to_pcm16(payload: bytes, encoding: Encoding) -> bytes:
    """16-bit LE PCM from a chunk in `encoding` (G.711 is one byte per sample)."""
    if encoding == "pcm16":
        return payload
    return _TABLES[encoding][np.frombuffer(payload, dtype=np.uint8)].tobytes()


def bytes_per_sample(encoding: Encoding) -> int:
    return 2 if encoding == "pcm16" else 1
