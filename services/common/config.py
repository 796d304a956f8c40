"""Settings for every service, read from VOICEBOT_* environment variables.

The embedded defaults run the whole bot in one process with nothing configured; each field
documents the variable that overrides it.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parents[2]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOICEBOT_", env_file=".env", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8080

    models_dir: Path = Field(ROOT / "models", description="where fetched models are installed")
    models_src: Path | None = Field(
        None, description="offline copy of the model files to install from"
    )
    kb_dir: Path = ROOT / "knowledge_base"
    data_dir: Path = Field(ROOT / "var", description="call records, TTS cache")

    asr_model: Path | None = Field(
        None, description="Vosk model folder; default: the installed vosk-model-small-ru-0.22"
    )
    asr_graph: Path | None = Field(
        None,
        description="static decoding graph from `voicebot models compile-graph`; "
        "default: <models_dir>/<model folder>-hclg, used when present",
    )
    asr_url: str | None = Field(
        None, description="ws:// URL of a standalone ASR service; none: in-process"
    )
    tts_engine: str = Field(
        "auto", description="auto (Silero if installed, else eSpeak NG) | silero | espeak"
    )
    tts_url: str | None = Field(
        None, description="http:// URL of a standalone TTS service; none: in-process"
    )
    tts_speaker: str = "xenia"
    # Two workers with one torch thread each on a 2-core box: two calls render in parallel
    # without one Silero call's threads fighting the other's (bench/tts_speed.py measures it).
    tts_workers: int = 2
    tts_torch_threads: int = 1
    tts_cache_mb: int = Field(256, description="on-disk cache of rendered sentences, LRU-evicted")

    allocator: str = Field(
        "mimalloc",
        description="mimalloc (preloaded by `voicebot serve`: the recognizer's CPU) | system",
    )

    log_json: bool = False
    log_level: str = "INFO"

    @property
    def vosk_model_path(self) -> Path:
        return self.asr_model or self.models_dir / "vosk-model-small-ru-0.22"

    @property
    def vosk_graph_path(self) -> Path:
        return self.vosk_graph_for(self.vosk_model_path)

    def vosk_graph_for(self, model: Path) -> Path:
        return self.asr_graph or self.models_dir / f"{model.name}-hclg"


@lru_cache
def get_settings() -> Settings:
    return Settings()
