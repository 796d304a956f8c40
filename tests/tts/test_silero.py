"""The Silero adapter against a small torch.package this test builds with Silero's interface.

It proves the adapter calls the documented API (load_pickle("tts_models", "model"), apply_tts
with text/ssml_text, speaker, sample_rate, put_accent, put_yo) — not how Silero sounds: the real
weights can't be fetched on these machines.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.audio import duration_s
from services.tts.silero import SileroBackend, SileroUnavailable, silero_weights_path


def test_plain_text_uses_documented_call_and_resamples(tiny_package: Path) -> None:
    backend = SileroBackend(tiny_package)
    pcm = backend.render("пр+ивет", "xenia", 16000)
    call = backend._model.calls[-1]
    assert call == dict(
        text="пр+ивет",
        ssml_text=None,
        speaker="xenia",
        sample_rate=24000,
        put_accent=True,
        put_yo=True,
    )
    assert duration_s(pcm, 16000) == pytest.approx(0.7, abs=0.01)
    assert backend.speakers == ("xenia", "aidar", "random")
    assert backend.version.startswith("silero v4_ru ")


def test_native_rates_are_asked_for_directly(tiny_package: Path) -> None:
    backend = SileroBackend(tiny_package)
    for rate in (8000, 24000, 48000):
        backend.render("да", "aidar", rate)
        assert backend._model.calls[-1]["sample_rate"] == rate


def test_speed_goes_through_the_ssml_variant(tiny_package: Path) -> None:
    backend = SileroBackend(tiny_package)
    backend.render("один & два", "xenia", 8000, speed=1.25)
    call = backend._model.calls[-1]
    assert call["text"] is None
    assert call["ssml_text"] == '<speak><prosody rate="125%">один &amp; два</prosody></speak>'


def test_unknown_speaker(tiny_package: Path) -> None:
    with pytest.raises(ValueError, match="unknown speaker 'baya'; Silero speakers: xenia"):
        SileroBackend(tiny_package).render("да", "baya", 8000)


def test_missing_weights_name_the_fix(tmp_path: Path) -> None:
    with pytest.raises(SileroUnavailable, match=r"not installed at .*voicebot models fetch"):
        SileroBackend(silero_weights_path(tmp_path))


def test_corrupt_weights_name_the_fix(tiny_package: Path) -> None:
    tiny_package.write_bytes(tiny_package.read_bytes()[:300])  # a truncated download
    with pytest.raises(SileroUnavailable, match=r"unreadable .*voicebot models fetch"):
        SileroBackend(tiny_package)
