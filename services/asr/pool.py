"""The bounded decoder pool every stream shares.

Kaldi decoding is CPU-bound and releases the GIL, so a thread per core is the most that helps.
Load beyond that must not turn into a queue that makes every call lag: a new call is shed while
chunks already wait too long for a worker, and the number of chunks in the pool has a hard cap.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from services.asr import metrics
from services.asr.base import RecognizerOverloaded

T = TypeVar("T")

# The queue-wait average forgets load this long after the last chunk ran.
_WAIT_MEMORY_S = 2.0


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class DecoderPool:
    def __init__(
        self,
        workers: int | None = None,
        max_streams: int | None = None,
        max_queued: int | None = None,
        shed_wait_s: float = 0.25,
    ) -> None:
        self.workers = workers or cpu_cores()
        self.max_streams = max_streams or 50 * self.workers
        # Lockstep streams hold at most one chunk each, so this cap is only ever hit by a bug
        # or a client pipelining chunks; it keeps the queue bounded whatever happens.
        self.max_queued = max_queued or self.max_streams
        self.shed_wait_s = shed_wait_s
        self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="asr-decoder")
        self._lock = threading.Lock()
        self.streams = 0
        self._in_pool = 0
        self._wait_avg = 0.0
        self._wait_at = 0.0
        metrics.WORKERS.set(self.workers)

    def admit(self) -> None:
        """Count a new stream in, or shed it with the reason."""
        with self._lock:
            if self.streams >= self.max_streams:
                reason = f"ASR at capacity: {self.streams} streams (max {self.max_streams})"
            elif self.recent_wait_s() > self.shed_wait_s:
                reason = (
                    f"ASR saturated: chunks wait {1000 * self.recent_wait_s():.0f} ms for a "
                    f"decoder (limit {1000 * self.shed_wait_s:.0f} ms)"
                )
            else:
                self.streams += 1
                metrics.STREAMS.set(self.streams)
                return
        metrics.REJECTED.labels("stream").inc()
        raise RecognizerOverloaded(f"{reason}; try again later")

    def release(self) -> None:
        with self._lock:
            self.streams -= 1
            metrics.STREAMS.set(self.streams)

    def recent_wait_s(self) -> float:
        return self._wait_avg if time.monotonic() - self._wait_at < _WAIT_MEMORY_S else 0.0

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        with self._lock:
            if self._in_pool >= self.workers + self.max_queued:
                metrics.REJECTED.labels("chunk").inc()
                raise RecognizerOverloaded(f"ASR queue full ({self._in_pool} chunks); try later")
            self._in_pool += 1
            metrics.SATURATION.set(self._in_pool / self.workers)
        submitted = time.monotonic()
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, self._timed, submitted, fn, *args)
        finally:
            with self._lock:
                self._in_pool -= 1
                metrics.SATURATION.set(self._in_pool / self.workers)

    def _timed(self, submitted: float, fn: Callable[..., T], *args: object) -> T:
        started = time.monotonic()
        wait = started - submitted
        metrics.QUEUE_WAIT.observe(wait)
        with self._lock:
            self._wait_avg = 0.9 * self.recent_wait_s() + 0.1 * wait
            self._wait_at = started
        return fn(*args)

    def describe(self) -> dict[str, object]:
        return {
            "workers": self.workers,
            "streams": self.streams,
            "max_streams": self.max_streams,
            "queue_wait_ms": round(1000 * self.recent_wait_s(), 1),
        }

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
