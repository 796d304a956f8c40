"""Which synthesizer the bot uses: Silero when its weights are installed, else eSpeak NG.

Never fails for lack of Silero; `describe()` says which engine runs and why.
"""

from __future__ import annotations

from services.common.config import Settings
from services.common.logging import get_logger
from services.tts.base import SpeechSynthesizer
from services.tts.cache import DEFAULT_MAX_BYTES, TtsCache
from services.tts.espeak import EspeakBackend
from services.tts.silero import SileroUnavailable, silero_weights_path
from services.tts.synthesizer import Backend, Synthesizer

log = get_logger("tts.engine")

ENGINES = ("auto", "silero", "espeak")
# Two workers for a 2-core box, one torch thread each: two calls render in parallel without the
# threads of one Silero call fighting the other's (bench/tts_speed.py measures 1 vs 2 threads).
DEFAULT_WORKERS = 2
DEFAULT_TORCH_THREADS = 1


def choose_backend(settings: Settings, engine: str | None = None) -> tuple[Backend, str, bool]:
    """(backend, why it was chosen, degraded: Silero was wanted but is not available)."""
    engine = engine or settings.tts_engine
    if engine not in ENGINES:
        raise ValueError(f"unknown TTS engine {engine!r}; use one of {', '.join(ENGINES)}")
    if engine == "espeak":
        return EspeakBackend(), "eSpeak NG chosen (VOICEBOT_TTS_ENGINE=espeak)", False
    from services.tts.silero import SileroBackend

    threads = getattr(settings, "tts_torch_threads", DEFAULT_TORCH_THREADS)
    try:
        backend = SileroBackend(silero_weights_path(settings.models_dir), torch_threads=threads)
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
    # Settings may grow these fields; until then the defaults above apply.
    cache_bytes = getattr(settings, "tts_cache_mb", DEFAULT_MAX_BYTES // 2**20) * 2**20
    synthesizer = Synthesizer(
        backend,
        speaker=settings.tts_speaker,
        cache=TtsCache(settings.data_dir / "tts-cache", max_bytes=cache_bytes),
        workers=getattr(settings, "tts_workers", DEFAULT_WORKERS),
        reason=reason,
        degraded=degraded,
    )
    log.info("tts.loaded", engine=backend.name, version=backend.version, reason=reason)
    return synthesizer
