"""TTS test helpers: the real eSpeak NG engine, watched by a counting wrapper."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.tts.cache import TtsCache
from services.tts.espeak import EspeakBackend
from services.tts.synthesizer import Synthesizer


class CountingBackend:
    """The real eSpeak NG backend, counting what it is asked to render (to see cache hits)."""

    def __init__(self, backend: EspeakBackend) -> None:
        self.backend = backend
        self.name, self.version = backend.name, backend.version
        self.speakers, self.accepts_stress_marks = backend.speakers, backend.accepts_stress_marks
        self.rendered: list[str] = []

    def render(self, text: str, speaker: str, sample_rate: int, speed: float = 1.0) -> bytes:
        self.rendered.append(text)
        return self.backend.render(text, speaker, sample_rate, speed)

    def describe(self) -> dict[str, object]:
        return self.backend.describe()


@pytest.fixture(scope="session")
def espeak_backend() -> EspeakBackend:
    return EspeakBackend()


@pytest.fixture
def counting(espeak_backend: EspeakBackend) -> CountingBackend:
    return CountingBackend(espeak_backend)


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "tts-cache"


@pytest.fixture
def synthesizer(counting: CountingBackend, cache_dir: Path) -> Synthesizer:
    synth = Synthesizer(counting, speaker="xenia", cache=TtsCache(cache_dir))
    yield synth
    synth.close()
