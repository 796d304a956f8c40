"""The engines a gateway process loads once and every call shares.

ASR may be missing (no model installed): the gateway then runs degraded — typed and DTMF input
still work — and says why in /readyz. TTS never fails for lack of Silero (eSpeak NG fallback).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Protocol

from services.asr.base import SpeechRecognizer
from services.common.config import Settings
from services.common.logging import get_logger
from services.dialog.base import DialogSession
from services.tts.base import SpeechSynthesizer

log = get_logger("gateway.engines")


class Dialog(Protocol):
    def new_session(self) -> DialogSession: ...

    def describe(self) -> dict[str, object]: ...


@dataclass
class Engines:
    speech: SpeechSynthesizer
    dialog: Dialog
    recognizer: SpeechRecognizer | None
    degraded: list[str] = field(default_factory=list)  # why the bot works with less than it should
    vad: bool = True  # silero-vad available for barge-in and endpointing
    # One Silero model for every call, run on batches of their windows (see call/vad.py);
    # loaded with the engines, or on the first call's need.
    vad_batch: Any = None

    async def new_vad(self, sample_rate: int) -> Any:
        """A VAD for one call (a VoiceActivity); None when silero-vad is unavailable."""
        if not self.vad:
            return None
        from services.gateway.call.vad import SileroBatch, VoiceActivity

        if self.vad_batch is None:
            self.vad_batch = await asyncio.to_thread(SileroBatch)
        return VoiceActivity(sample_rate, self.vad_batch)

    def tts_rate(self, rate: int) -> int:
        """The rate to synthesize at for a call at `rate`: its own when the TTS engine renders
        it, else the nearest higher one (or the highest); the call resamples."""
        rates = self.speech.describe().get("sample_rates")
        if not isinstance(rates, list) or not rates or rate in rates:
            return rate
        return min((r for r in rates if r >= rate), default=max(rates))

    def describe(self) -> dict[str, object]:
        return {
            "asr": self.recognizer.describe() if self.recognizer else {"loaded": False},
            "tts": self.speech.describe(),
            "dialog": self.dialog.describe(),
            "vad": {"engine": "silero-vad", "loaded": self.vad},
        }


def tts_fallback_reason(synthesizer: SpeechSynthesizer, settings: Settings) -> str | None:
    """Running on eSpeak NG although Silero was wanted: say so (the bot sounds worse)."""
    info = synthesizer.describe()
    if info.get("engine") == "silero" or settings.tts_engine == "espeak":
        return None
    why = info.get("reason") or "Silero weights are not installed"
    return f"TTS fell back to eSpeak NG because {why}"


def load_engines(settings: Settings) -> Engines:
    """Load every engine once; slow (models), so the app runs it off the event loop."""
    from services.asr.engine import ModelUnavailable, load_recognizer
    from services.dialog.engine import DialogEngine
    from services.tts.engine import load_synthesizer

    degraded: list[str] = []
    recognizer: SpeechRecognizer | None
    try:
        recognizer = load_recognizer(settings)
    except ModelUnavailable as exc:
        recognizer = None
        degraded.append(f"speech recognition unavailable ({exc.reason}); typed and DTMF input only")
    synthesizer = load_synthesizer(settings)
    if reason := tts_fallback_reason(synthesizer, settings):
        degraded.append(reason)
    dialog = DialogEngine.load(settings.kb_dir)
    try:
        from services.gateway.call.vad import SileroBatch

        vad_batch = SileroBatch()
    except ImportError:
        vad_batch = None
        degraded.append("silero-vad not installed: no barge-in, endpointing by the recognizer only")
    for reason in degraded:
        log.warning("degraded", reason=reason)
    return Engines(synthesizer, dialog, recognizer, degraded, vad_batch is not None, vad_batch)
