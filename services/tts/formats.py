"""Output encodings of the TTS service: WAV, raw 16-bit PCM, and G.711 μ-law for telephony."""

from __future__ import annotations

import struct
from typing import Literal

import numpy as np

from services.common.audio import wav_bytes

AudioFormat = Literal["wav", "pcm", "ulaw"]
_ULAW_BIAS, _ULAW_CLIP = 0x84, 32635


def pcm16_to_ulaw(pcm: bytes) -> bytes:
    """ITU-T G.711 μ-law, one byte per sample (what a SIP trunk carries as PCMU)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.int32)
    sign = np.where(samples < 0, 0x80, 0)
    magnitude = np.minimum(np.abs(samples), _ULAW_CLIP) + _ULAW_BIAS
    exponent = np.floor(np.log2(magnitude)).astype(np.int32) - 7
    mantissa = (magnitude >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8).tobytes()


def media_type(fmt: AudioFormat, sample_rate: int) -> str:
    return {
        "wav": "audio/wav",
        "pcm": f"audio/L16;rate={sample_rate};channels=1",
        "ulaw": f"audio/PCMU;rate={sample_rate}",
    }[fmt]


def encode(pcm: bytes, sample_rate: int, fmt: AudioFormat) -> bytes:
    if fmt == "wav":
        return wav_bytes(pcm, sample_rate)
    return pcm16_to_ulaw(pcm) if fmt == "ulaw" else pcm


def streaming_wav_header(sample_rate: int) -> bytes:
    """A WAV header for a stream of unknown length (sizes set to the maximum, as players expect)."""
    unknown = 0xFFFFFFFF
    return (
        b"RIFF"
        + struct.pack("<I", unknown)
        + b"WAVE"
        + b"fmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", unknown)
    )
