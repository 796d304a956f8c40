"""G.711 decoding and the supported stream formats."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from services.asr.telephony import check_format, to_pcm16

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # the stdlib's reference G.711 (removed in 3.13; a test oracle only)


@pytest.mark.parametrize(
    ("encoding", "reference"), [("mulaw", audioop.ulaw2lin), ("alaw", audioop.alaw2lin)]
)
def test_g711_tables_match_the_reference_decoder(encoding, reference) -> None:
    every_code = bytes(range(256))
    assert to_pcm16(every_code, encoding) == reference(every_code, 2)


def test_mulaw_round_trip_keeps_speech_shape() -> None:
    t = np.arange(8000) / 8000
    pcm = (np.sin(2 * np.pi * 440 * t) * 12000).astype("<i2").tobytes()
    decoded = np.frombuffer(to_pcm16(audioop.lin2ulaw(pcm, 2), "mulaw"), dtype="<i2")
    original = np.frombuffer(pcm, dtype="<i2")
    assert np.max(np.abs(decoded.astype(int) - original)) < 12000 * 0.05


@pytest.mark.parametrize(
    ("rate", "encoding", "problem"),
    [
        (44100, "pcm16", "unsupported sample_rate"),
        (16000, "mulaw", "must be 8000"),
        (8000.5, "pcm16", "unsupported"),
    ],
)
def test_unsupported_formats_are_named(rate, encoding, problem) -> None:
    with pytest.raises(ValueError, match=problem):
        check_format(rate, encoding)


def test_telephone_formats_are_supported() -> None:
    assert check_format(8000.0, "alaw") == 8000
    assert check_format(16000) == 16000
