"""Rendered sentences on disk, so known answers play at once and a restart re-renders nothing.

One file of raw PCM per (normalized sentence, speaker, rate, speed, engine+model version).
The total size is bounded; the least recently used files go first. Writes are atomic (temp file
+ rename), so a crash never leaves a half clip that later plays.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MAX_BYTES = 256 * 1024 * 1024  # ≈ 4.6 h of 8 kHz speech


@dataclass(frozen=True)
class CacheKey:
    text: str  # normalized, as the engine is given it
    speaker: str
    sample_rate: int
    version: str  # engine + model version: new weights never replay old audio
    speed: float = 1.0

    def digest(self) -> str:
        raw = "\x1f".join(
            [self.text, self.speaker, str(self.sample_rate), self.version, f"{self.speed:.3f}"]
        )
        return hashlib.sha256(raw.encode()).hexdigest()


class TtsCache:
    """Thread-safe: renders finish in pool threads, lookups happen on the event loop."""

    def __init__(self, directory: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        self.hits = self.misses = self.evictions = 0
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[int, float]] = {}  # digest -> (size, last use)
        directory.mkdir(parents=True, exist_ok=True)
        for path in directory.glob("*/*.pcm"):
            stat = path.stat()
            self._entries[path.stem] = (stat.st_size, stat.st_mtime)
        for stale in directory.glob("*/*.tmp*"):  # left by a crash mid-write
            stale.unlink(missing_ok=True)
        self._bytes = sum(size for size, _ in self._entries.values())

    def _path(self, digest: str) -> Path:
        return self.directory / digest[:2] / f"{digest}.pcm"

    def get(self, key: CacheKey) -> bytes | None:
        digest = key.digest()
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                self.misses += 1
                return None
            self._entries[digest] = (entry[0], time.time())
        try:
            pcm = self._path(digest).read_bytes()
        except FileNotFoundError:  # removed behind our back: a miss, not an error
            with self._lock:
                self._forget(digest)
                self.misses += 1
            return None
        os.utime(self._path(digest))  # the file's mtime is the LRU clock across restarts
        with self._lock:
            self.hits += 1
        return pcm

    def __contains__(self, key: CacheKey) -> bool:
        return key.digest() in self._entries

    def put(self, key: CacheKey, pcm: bytes) -> None:
        if len(pcm) > self.max_bytes:
            return
        digest = key.digest()
        path = self._path(digest)
        path.parent.mkdir(exist_ok=True)
        tmp = path.with_suffix(f".tmp{threading.get_ident()}")
        tmp.write_bytes(pcm)
        os.replace(tmp, path)
        with self._lock:
            self._forget(digest)
            self._entries[digest] = (len(pcm), time.time())
            self._bytes += len(pcm)
            self._evict()

    def _forget(self, digest: str) -> None:
        old = self._entries.pop(digest, None)
        if old is not None:
            self._bytes -= old[0]

    def _evict(self) -> None:
        if self._bytes <= self.max_bytes:
            return
        for digest, _ in sorted(self._entries.items(), key=lambda item: item[1][1]):
            if self._bytes <= self.max_bytes:
                break
            self._path(digest).unlink(missing_ok=True)
            self._forget(digest)
            self.evictions += 1

    def describe(self) -> dict[str, object]:
        return {
            "dir": str(self.directory),
            "entries": len(self._entries),
            "bytes": self._bytes,
            "max_bytes": self.max_bytes,
            "hits": self.hits,
            "misses": self.misses,
            "evictions": self.evictions,
        }
