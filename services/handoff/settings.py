"""The handoff service's settings, read from VOICEBOT_HANDOFF_* environment variables."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Backend(StrEnum):
    EMBEDDED = "embedded"  # in-process, persisted to SQLite: one gateway
    REDIS = "redis"  # several gateways sharing one queue


class HandoffSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VOICEBOT_HANDOFF_", env_file=".env", extra="ignore"
    )

    backend: Backend = Backend.EMBEDDED
    redis_url: str = Field("redis://127.0.0.1:6379/0", description="the Redis backend's server")
    redis_prefix: str = Field("voicebot:handoff:", description="key prefix: one queue per prefix")
    sqlite_path: Path | None = Field(
        None, description="the embedded backend's database; default <data dir>/handoff.sqlite3"
    )
    general_queue: str = Field("operators", description="where calls overflow to")
    lease_s: float = Field(15.0, gt=0, description="an offer not accepted within this goes back")
    overflow_after_s: float = Field(
        120.0, gt=0, description="a call waiting this long in another queue joins the general one"
    )
    wrap_up_s: float = Field(10.0, ge=0, description="after a call, before the next offer")
    announce_interval_s: float = Field(
        30.0, gt=0, description="a waiting caller hears the position this often"
    )
    default_handling_s: float = Field(
        180.0, gt=0, description="handling time the estimate assumes before any call was handled"
    )
    history_window_s: float = Field(
        3600.0, gt=0, description="recent history the estimate and the figures look at"
    )
    service_level_s: float = Field(20.0, gt=0, description="service level: answered within this")
    tick_s: float = Field(0.5, gt=0, description="how often leases, overflow, wrap-up are checked")
    figures_every_s: float = Field(5.0, gt=0, description="how often /metrics' figures refresh")
    owner_ttl_s: float = Field(
        15.0, gt=0, description="a gateway silent this long has lost its waiting callers"
    )

    def sqlite_file(self, data_dir: Path) -> Path:
        return self.sqlite_path or data_dir / "handoff.sqlite3"
