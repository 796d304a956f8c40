"""Real-time audio out: 20 ms frames sent against a monotonic deadline.

Frame n of a run is due at `t0 + n * 20 ms`; the pacer sleeps until each deadline instead of
sleeping 20 ms after each send, so scheduling jitter never accumulates into drift. Telephone peers
(Asterisk AudioSocket) have no jitter buffer and hang up after ~2 s of nothing, so there the pacer
keeps sending silence while the bot is quiet (`idle_silence=True`); a WebSocket client gets audio
only while the bot speaks.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from services.common.audio import FRAME_MS, frame_bytes, split_frames

FRAME_S = FRAME_MS / 1000
# Behind schedule by more than this (a stalled loop): restart the schedule instead of bursting.
MAX_LAG_S = 0.2

SendFrame = Callable[[bytes], Awaitable[None]]


@dataclass
class Playback:
    """One utterance queued for playing; `done` resolves to "finished" or "interrupted"."""

    frames: list[bytes]
    sent: int = 0
    first_frame_at: float | None = None
    done: asyncio.Future[str] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    @property
    def duration_ms(self) -> int:
        return len(self.frames) * FRAME_MS

    def _finish(self, status: str) -> None:
        if not self.done.done():
            self.done.set_result(status)


@dataclass
class PacerStats:
    frames: int = 0
    max_lag_s: float = 0.0  # worst lateness of a frame against its deadline
    resyncs: int = 0  # times the schedule was restarted after a stall
    drift_s: float = 0.0  # (send time of last frame) - (its deadline), over the current run


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
        self.stats = PacerStats()
        self.last_frame: bytes = (
            self._silence
        )  # what the caller's line carries now (echo reference)

    def play(self, pcm: bytes) -> Playback:
        playback = Playback(list(split_frames(pcm, self.sample_rate)))
        if not playback.frames:
            playback._finish("finished")
            return playback
        self._queue.append(playback)
        self._wake.set()
        return playback

    @property
    def speaking(self) -> bool:
        return bool(self._queue)

    def interrupt(self) -> bool:
        """Barge-in: drop everything queued; True when something was playing."""
        had = bool(self._queue)
        for playback in self._queue:
            playback._finish("interrupted")
        self._queue.clear()
        return had

    async def run(self) -> None:
        """Send frames until cancelled. Cancelling interrupts whatever is queued."""
        try:
            while True:
                if not self._queue and not self._idle_silence:
                    self._wake.clear()
                    await self._wake.wait()
                await self._run_schedule()
        finally:
            self.interrupt()

    async def _run_schedule(self) -> None:
        start = self._clock()
        n = 0
        while self._queue or self._idle_silence:
            deadline = start + n * FRAME_S
            now = self._clock()
            if deadline > now:
                await asyncio.sleep(deadline - now)
            elif now - deadline > MAX_LAG_S:
                self.stats.resyncs += 1
                start, n, deadline = now, 0, now
            lag = self._clock() - deadline
            self.stats.max_lag_s = max(self.stats.max_lag_s, lag)
            self.stats.drift_s = lag
            await self._send(self._next_frame())
            self.stats.frames += 1
            n += 1

    def _next_frame(self) -> bytes:
        if not self._queue:
            self.last_frame = self._silence
            return self._silence
        playback = self._queue[0]
        frame = playback.frames[playback.sent]
        if playback.sent == 0:
            playback.first_frame_at = self._clock()
        playback.sent += 1
        if playback.sent == len(playback.frames):
            self._queue.pop(0)
            playback._finish("finished")
        self.last_frame = frame
        return frame
