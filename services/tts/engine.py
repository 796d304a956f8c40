"""Which synthesizer the bot uses: Silero when its weights are installed, else eSpeak NG.

Never fails for lack of Silero; `describe()` says which engine runs and why.
"""

from __future__ import annotations

from services.common.config import Settings
from services.common.logging import get_logger
from services.tts.base import SpeechSynthesizer
from services.tts.cache import TtsCache
from services.tts.espeak import EspeakBackend
from services.tts.silero import SileroUnavailable, silero_weights_path
from services.tts.synthesizer import Backend, Synthesizer

log = get_logger("tts.engine")

ENGINES = ("auto", "silero", "espeak")


def choose_backend(settings: Settings, engine: str | None = None) -> tuple[Backend, str, bool]:
    """(backend, why it was chosen, degraded: Silero was wanted but is not available)."""
    engine = engine or settings.tts_engine
    if engine not in ENGINES:
        raise ValueError(f"unknown TTS engine {engine!r}; use one of {', '.join(ENGINES)}")
    if engine == "espeak":
        return EspeakBackend(), "eSpeak NG chosen (VOICEBOT_TTS_ENGINE=espeak)", False
    from services.tts.silero import SileroBackend

    try:
        backend = SileroBackend(
            silero_weights_path(settings.models_dir), torch_threads=settings.tts_torch_threads
        )
    except SileroUnavailable as exc:
        log.warning("tts.fallback", engine="espeak", reason=str(exc))
        return EspeakBackend(), str(exc), True
    return backend, f"Silero weights installed at {silero_weights_path(settings.models_dir)}", False


def load_synthesizer(settings: Settings, engine: str | None = None) -> SpeechSynthesizer:
    """The synthesizer the gateway uses: over HTTP when settings.tts_url is set, else in-process."""
    if settings.tts_url:
        from services.tts.client import HttpSynthesizer

        return HttpSynthesizer(settings.tts_url, speaker=settings.tts_speaker)
    return load_local_synthesizer(settings, engine)


def load_local_synthesizer(settings: Settings, engine: str | None = None) -> Synthesizer:
    backend, reason, degraded = choose_backend(settings, engine)
    synthesizer = Synthesizer(
        backend,
        speaker=settings.tts_speaker,
        cache=TtsCache(settings.data_dir / "tts-cache", max_bytes=settings.tts_cache_mb * 2**20),
        workers=settings.tts_workers,
        reason=reason,
        degraded=degraded,
    )
    log.info("tts.loaded", engine=backend.name, version=backend.version, reason=reason)
    return synthesizer
