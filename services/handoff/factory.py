"""Build the configured store and service (what the gateway calls at startup)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from services.handoff.core import QueueCore
from services.handoff.embedded import EmbeddedStore
from services.handoff.redis_store import RedisStore
from services.handoff.service import HandoffService
from services.handoff.settings import Backend, HandoffSettings


def open_store(
    settings: HandoffSettings, data_dir: Path, *, clock: Callable[[], float] = time.time
) -> QueueCore:
    common = {
        "clock": clock,
        "default_handling_s": settings.default_handling_s,
        "eta_window_s": settings.history_window_s,
    }
    if settings.backend is Backend.REDIS:
        return RedisStore.from_url(settings.redis_url, prefix=settings.redis_prefix, **common)
    return EmbeddedStore(settings.sqlite_file(data_dir), **common)  # type: ignore[arg-type]


def open_service(
    settings: HandoffSettings, data_dir: Path, *, clock: Callable[[], float] = time.time
) -> HandoffService:
    return HandoffService(open_store(settings, data_dir, clock=clock), settings, clock=clock)
