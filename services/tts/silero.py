"""Silero TTS (`v4_ru`) through its documented torch.package API.

    model = torch.package.PackageImporter(path).load_pickle("tts_models", "model")
    model.apply_tts(text=…, speaker=…, sample_rate=…, put_accent=…, put_yo=…)
    model.apply_tts(ssml_text=…, speaker=…, sample_rate=…)

Licence: Silero's Russian models are CC BY-NC-SA 4.0 (non-commercial); `v5_cis_base` is MIT.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from xml.sax.saxutils import escape

from services.common.audio import float_to_pcm16, resample

SILERO_RATES = (8000, 24000, 48000)
FIX = "run `voicebot models fetch` (or set VOICEBOT_MODELS_SRC to an offline copy)"


class SileroUnavailable(RuntimeError):
    """The Silero weights are missing or unreadable; the message names the fix."""


def silero_weights_path(models_dir: Path) -> Path:
    """Where the model store installs Silero `v4_ru.pt`."""
    return models_dir / "silero-v4_ru" / "v4_ru.pt"


class SileroBackend:
    """Renders Russian text with a Silero torch.package model; one synthesis at a time."""

    name = "silero"
    accepts_stress_marks = True  # Silero reads `+` before a vowel as stress

    def __init__(self, path: Path, torch_threads: int = 1) -> None:
        if not path.is_file():
            raise SileroUnavailable(f"Silero weights not installed at {path}: {FIX}")
        import torch

        torch.set_num_threads(torch_threads)
        try:
            self._model = torch.package.PackageImporter(str(path)).load_pickle(
                "tts_models", "model"
            )
            self._model.to(torch.device("cpu"))
        except Exception as exc:  # a corrupt or truncated file fails in many ways inside torch
            raise SileroUnavailable(
                f"Silero weights at {path} are unreadable ({exc}): {FIX}"
            ) from exc
        self.speakers: tuple[str, ...] = tuple(self._model.speakers)
        self.version = f"silero {path.stem} {_sha256(path)[:12]}"
        self.native_rate = max(SILERO_RATES)
        self.torch_threads = torch_threads
        self._lock = threading.Lock()  # the model object is not re-entrant

    def render(self, text: str, speaker: str, sample_rate: int, speed: float = 1.0) -> bytes:
        """Speak normalized Russian `text`; 16-bit LE mono PCM at `sample_rate`."""
        if speaker not in self.speakers:
            known = ", ".join(self.speakers)
            raise ValueError(f"unknown speaker {speaker!r}; Silero speakers: {known}")
        model_rate = min((r for r in SILERO_RATES if r >= sample_rate), default=self.native_rate)
        with self._lock:
            if speed == 1.0:
                audio = self._model.apply_tts(
                    text=text, speaker=speaker, sample_rate=model_rate, put_accent=True, put_yo=True
                )
            else:
                ssml = (
                    f'<speak><prosody rate="{round(speed * 100)}%">{escape(text)}</prosody></speak>'
                )
                audio = self._model.apply_tts(
                    ssml_text=ssml, speaker=speaker, sample_rate=model_rate
                )
        return resample(float_to_pcm16(audio.numpy()), model_rate, sample_rate)

    def describe(self) -> dict[str, object]:
        return {"engine": self.name, "version": self.version, "torch_threads": self.torch_threads}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
