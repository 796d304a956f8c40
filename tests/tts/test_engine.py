"""load_synthesizer: Silero when its weights are installed, else eSpeak NG, saying why."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.config import Settings
from services.tts.engine import load_synthesizer
from services.tts.synthesizer import Synthesizer


def _settings(tmp_path: Path, **kw: object) -> Settings:
    return Settings(models_dir=tmp_path / "models", data_dir=tmp_path / "var", **kw)


async def test_falls_back_to_espeak_and_says_why(tmp_path: Path) -> None:
    synth = load_synthesizer(_settings(tmp_path))
    assert isinstance(synth, Synthesizer)
    info = synth.describe()
    assert info["engine"] == "espeak" and info["degraded"] is True
    assert "Silero weights not installed" in str(info["reason"])
    assert "voicebot models fetch" in str(info["reason"])
    assert len(await synth.synthesize("Проверка связи.", 8000)) > 8000
    assert (tmp_path / "var" / "tts-cache").is_dir()
    synth.close()


def test_espeak_by_choice_is_not_degraded(tmp_path: Path) -> None:
    synth = load_synthesizer(_settings(tmp_path, tts_engine="espeak"))
    assert synth.describe()["engine"] == "espeak"
    assert synth.describe()["degraded"] is False


async def test_silero_when_weights_are_installed(tmp_path: Path, tiny_package: Path) -> None:
    # tiny_package sits where the model store installs v4_ru.pt under tmp_path/models.
    synth = load_synthesizer(_settings(tmp_path))
    assert isinstance(synth, Synthesizer)
    assert synth.describe()["engine"] == "silero" and synth.describe()["degraded"] is False
    await synth.synthesize("Позвоните по телефону 122.", 8000)
    call = synth.backend._model.calls[-1]  # type: ignore[attr-defined]
    # Silero is given normalized text with stress marks from silero-stress.
    assert call["text"] == "Позвон+ите по телеф+ону сто дв+адцать два."
    assert call["speaker"] == "xenia" and call["sample_rate"] == 8000
    synth.close()


def test_corrupt_silero_weights_fall_back(tmp_path: Path, tiny_package: Path) -> None:
    tiny_package.write_bytes(b"not a zip")
    info = load_synthesizer(_settings(tmp_path)).describe()
    assert info["engine"] == "espeak"
    assert "unreadable" in str(info["reason"]) and "voicebot models fetch" in str(info["reason"])


def test_unknown_engine_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown TTS engine 'festival'"):
        load_synthesizer(_settings(tmp_path, tts_engine="festival"))
