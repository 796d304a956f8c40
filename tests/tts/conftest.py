"""TTS test helpers: the real eSpeak NG engine, watched by a counting wrapper."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from services.tts.cache import TtsCache
from services.tts.espeak import EspeakBackend
from services.tts.silero import silero_weights_path
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


TINY_MODEL = textwrap.dedent(
    '''
    import torch

    class TinySilero:
        """Speaks 0.1 s of a tone per character; records how it was called."""

        speakers = ["xenia", "aidar", "random"]

        def __init__(self):
            self.calls = []

        def to(self, device):
            return self

        def apply_tts(self, text=None, ssml_text=None, speaker="xenia", sample_rate=48000,
                      put_accent=True, put_yo=True):
            if sample_rate not in (8000, 24000, 48000):
                raise ValueError("unsupported rate")
            if (text is None) == (ssml_text is None):
                raise ValueError("give text or ssml_text")
            self.calls.append(dict(text=text, ssml_text=ssml_text, speaker=speaker,
                                   sample_rate=sample_rate, put_accent=put_accent, put_yo=put_yo))
            n = int(0.1 * sample_rate * len(text or ssml_text))
            t = torch.arange(n, dtype=torch.float32) / sample_rate
            return 0.5 * torch.sin(2 * torch.pi * 220 * t)
    '''
)


@pytest.fixture
def tiny_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A torch.package laid out like Silero's v4_ru.pt, at the path the model store uses."""
    from torch.package import PackageExporter

    src = tmp_path / "src"
    src.mkdir()
    (src / "tiny_silero.py").write_text(TINY_MODEL)
    monkeypatch.syspath_prepend(str(src))
    import tiny_silero

    path = silero_weights_path(tmp_path / "models")
    path.parent.mkdir(parents=True)
    with PackageExporter(str(path)) as exporter:
        exporter.extern("torch.**")
        exporter.intern("tiny_silero")
        exporter.save_pickle("tts_models", "model", tiny_silero.TinySilero())
    del sys.modules["tiny_silero"]  # the adapter must load the class from the package
    return path
