"""Real-time audio out: 20 ms frames sent against a monotonic deadline.

Frame n of a run is due at `t0 + n * 20 ms`; the pacer sleeps until each deadline instead of
sleeping 20 ms after each send, so scheduling jitter never accumulates into drift. Telephone peers
(Asterisk AudioSocket) have no jitter buffer and hang up after ~2 s of nothing, so there the pacer
keeps sending silence while the bot is quiet or its next sentence is still rendering
(`idle_silence=True`); a WebSocket client gets audio only while the bot speaks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from services.common.audio import FRAME_MS, frame_bytes

FRAME_S = FRAME_MS / 1000
# Behind schedule by more than this (a stalled loop): restart the schedule instead of bursting.
MAX_LAG_S = 0.2

SendFrame = Callable[[bytes], Awaitable[None]]


def _future() -> asyncio.Future[str]:
    return asyncio.get_running_loop().create_future()


@dataclass
class Playback:
    """One utterance, fed as it renders; `done` resolves to "finished" or "interrupted"."""

    frame_size: int
    frames: list[bytes] = field(default_factory=list)
    sent: int = 0
    closed: bool = False
    first_frame_at: float | None = None
    done: asyncio.Future[str] = field(default_factory=_future)
    _rest: bytearray = field(default_factory=bytearray)
    _wake: Callable[[], None] = lambda: None

    def feed(self, pcm: bytes) -> None:
        self._rest += pcm
        cut = len(self._rest) - len(self._rest) % self.frame_size
        self.frames += [
            bytes(self._rest[i : i + self.frame_size]) for i in range(0, cut, self.frame_size)
        ]
        del self._rest[:cut]
        self._wake()

    def close(self) -> None:
        """No more audio: the last partial frame is padded with silence."""
        if self._rest:
            self.frames.append(bytes(self._rest.ljust(self.frame_size, b"\0")))
            self._rest.clear()
        self.closed = True
        self._wake()

    @property
    def duration_ms(self) -> int:
        return len(self.frames) * FRAME_MS

    @property
    def starved(self) -> bool:
        return self.sent == len(self.frames) and not self.closed

    def _finish(self, status: str) -> None:
        if not self.done.done():
            self.done.set_result(status)


@dataclass
class PacerStats:
    frames: int = 0
    max_lag_s: float = 0.0  # worst lateness of a frame against its deadline
    resyncs: int = 0  # times the schedule was restarted after a stall
    drift_s: float = 0.0  # lateness of the latest frame against its deadline


class Pacer:
    def __init__(
        self,
        sample_rate: int,
        send: SendFrame,
        *,
        idle_silence: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sample_rate = sample_rate
        self._send = send
        self._idle_silence = idle_silence
        self._clock = clock
        self._silence = b"\0" * frame_bytes(sample_rate)
        self._queue: list[Playback] = []
        self._wake = asyncio.Event()
        self.paused = False  # caller may be barging in: hold the playback where it is
        self.stats = PacerStats()

    def play(self, pcm: bytes = b"", *, more: bool = False) -> Playback:
        """Queue `pcm`; with `more=True` the caller feeds the rest and closes the playback."""
        playback = Playback(len(self._silence), _wake=self._wake.set)
        playback.feed(pcm)
        if not more:
            playback.close()
        self._queue.append(playback)
        self._wake.set()
        return playback

    @property
    def speaking(self) -> bool:
        return bool(self._queue)

    @property
    def backlog_frames(self) -> int:
        """Frames queued and not yet sent."""
        return sum(len(p.frames) - p.sent for p in self._queue)

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False
        self._wake.set()

    def interrupt(self) -> bool:
        """Barge-in: drop everything queued; True when something was playing."""
        self.paused = False
        had = bool(self._queue)
        for playback in self._queue:
            playback._finish("interrupted")
        self._queue.clear()
        return had

    async def run(self) -> None:
        """Send frames until cancelled. Cancelling interrupts whatever is queued."""
        try:
            while True:
                if not self._idle_silence and not self._ready():
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                await self._run_schedule()
        finally:
            self.interrupt()

    def _ready(self) -> bool:
        """Something to send now (drops finished playbacks from the head of the queue)."""
        while (
            self._queue
            and self._queue[0].closed
            and self._queue[0].sent == len(self._queue[0].frames)
        ):
            self._queue.pop(0)._finish("finished")
        return bool(self._queue) and not self._queue[0].starved and not self.paused

    async def _run_schedule(self) -> None:
        start = self._clock()
        n = 0
        while self._idle_silence or self._ready():
            deadline = start + n * FRAME_S
            now = self._clock()
            if deadline > now:
                await asyncio.sleep(deadline - now)
            elif now - deadline > MAX_LAG_S:
                self.stats.resyncs += 1
                start, n, deadline = now, 0, now
            frame = self._next_frame()
            if frame is None:  # interrupted while we slept
                return
            self.stats.drift_s = self._clock() - deadline
            self.stats.max_lag_s = max(self.stats.max_lag_s, self.stats.drift_s)
            await self._send(frame)
            self.stats.frames += 1
            n += 1

    def _next_frame(self) -> bytes | None:
        if not self._ready():  # quiet, or the next sentence is still rendering
            return self._silence if self._idle_silence else None
        playback = self._queue[0]
        if playback.sent == 0:
            playback.first_frame_at = self._clock()
        playback.sent += 1
        frame = playback.frames[playback.sent - 1]
        self._ready()  # resolve `done` as soon as the last frame is out
        return frame
