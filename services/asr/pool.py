"""The bounded decoder pool every stream shares.

Kaldi decoding is CPU-bound and releases the GIL, so a thread per core is the most that helps.
Load beyond that must not turn into a queue that makes every call lag: a new call is shed while
chunks already wait too long for a worker, and the number of chunks in the pool has a hard cap.

Two scheduling rules keep a loaded machine answering callers on time:
- A caller who has just stopped speaking waits for the final transcript; one still speaking
  only waits for a partial. Urgent work goes before everyone's ordinary chunks, so a burst of
  speech delays partials, not answers: a stream's flush, a chunk that arrives while its caller
  is quiet (likely the end of an utterance, or silence the gate drops for nothing), and all
  the work of a stream `expedite`d because its caller's turn ended.
- The decoder threads run at a lower OS priority (`nice`) than the rest of the process: the
  event loop that paces the bot's audio and hears barge-ins gets a core when it needs one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

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


@dataclass(eq=False)
class _Job:
    fn: Callable[..., Any]
    args: tuple[object, ...]
    owner: object | None
    submitted: float = field(default_factory=time.monotonic)
    future: Future[Any] = field(default_factory=Future)


class DecoderPool:
    def __init__(
        self,
        workers: int | None = None,
        max_streams: int | None = None,
        max_queued: int | None = None,
        shed_wait_s: float = 0.25,
        nice: int = 5,
    ) -> None:
        self.workers = workers or cpu_cores()
        self.max_streams = max_streams or 50 * self.workers
        # Lockstep streams hold at most one chunk each, so this cap is only ever hit by a bug
        # or a client pipelining chunks; it keeps the queue bounded whatever happens.
        self.max_queued = max_queued or self.max_streams
        self.shed_wait_s = shed_wait_s
        self.nice = nice
        self._lock = threading.Lock()
        self._ready = threading.Condition(self._lock)
        self._urgent: deque[_Job] = deque()
        self._ordinary: deque[_Job] = deque()
        self._expedited: set[object] = set()  # streams whose utterance ended
        self._stopped = False
        self.streams = 0
        self._in_pool = 0
        self._wait_avg = 0.0
        self._wait_at = 0.0
        for n in range(self.workers):
            threading.Thread(target=self._work, name=f"asr-decoder-{n}", daemon=True).start()
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

    async def run(
        self, fn: Callable[..., T], *args: object, owner: object | None = None, urgent: bool = False
    ) -> T:
        """`fn(*args)` on a decoder thread. `owner` (a stream) can later `expedite` it;
        `urgent` work, and an expedited owner's, runs before ordinary work."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("the decoder pool is shut down")
            if self._in_pool >= self.workers + self.max_queued:
                metrics.REJECTED.labels("chunk").inc()
                raise RecognizerOverloaded(f"ASR queue full ({self._in_pool} chunks); try later")
            self._in_pool += 1
            metrics.SATURATION.set(self._in_pool / self.workers)
            job = _Job(fn, args, owner)
            if urgent or (owner is not None and owner in self._expedited):
                self._urgent.append(job)
            else:
                self._ordinary.append(job)
            self._ready.notify()
        try:
            return await asyncio.wrap_future(job.future)
        finally:
            with self._lock:
                self._in_pool -= 1
                metrics.SATURATION.set(self._in_pool / self.workers)

    def expedite(self, owner: object) -> None:
        """`owner`'s utterance ended: its queued and coming work goes first until `settle`."""
        with self._lock:
            self._expedited.add(owner)
            mine = [job for job in self._ordinary if job.owner is owner]
            for job in mine:
                self._ordinary.remove(job)
            self._urgent.extend(mine)

    def settle(self, owner: object) -> None:
        """`owner` has its final: back to ordinary turns."""
        with self._lock:
            self._expedited.discard(owner)

    def _next(self) -> _Job | None:
        with self._ready:
            while not (self._urgent or self._ordinary or self._stopped):
                self._ready.wait()
            if self._stopped:
                return None
            job = (self._urgent or self._ordinary).popleft()
            now = time.monotonic()
            wait = now - job.submitted
            self._wait_avg = 0.9 * self.recent_wait_s() + 0.1 * wait
            self._wait_at = now
        metrics.QUEUE_WAIT.observe(wait)
        return job

    def _work(self) -> None:
        # Linux: a thread id is a process id here, so this lowers this thread alone. Elsewhere
        # every thread keeps the process's priority: slower under load, still correct.
        with contextlib.suppress(AttributeError, OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self.nice)
        while (job := self._next()) is not None:
            if not job.future.set_running_or_notify_cancel():
                continue  # its caller gave up (a call hung up) while it waited
            try:
                job.future.set_result(job.fn(*job.args))
            except BaseException as exc:
                job.future.set_exception(exc)
            job = None  # let go of its arguments (a call's decoder) while idle

    def describe(self) -> dict[str, object]:
        return {
            "workers": self.workers,
            "streams": self.streams,
            "max_streams": self.max_streams,
            "queue_wait_ms": round(1000 * self.recent_wait_s(), 1),
        }

    def shutdown(self) -> None:
        with self._ready:
            self._stopped = True
            for job in (*self._urgent, *self._ordinary):
                job.future.cancel()
            self._urgent.clear()
            self._ordinary.clear()
            self._ready.notify_all()
