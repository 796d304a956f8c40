"""The caller's audio on its way to the recognizer, off the call's frame loop.

Frames are queued as they arrive and fed in batches: whatever arrived while the previous feed
was in the decoder pool goes in the next one. A call thus keeps up with real time however long
a round trip through the shared pool takes; awaiting the recognizer once per 20 ms frame made
each call's throughput 1 / round-trip time, and calls fell seconds behind at 10-25 at once while
the CPU was not even busy (bench/results/call_latency.md).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from services.asr.base import Hypothesis, RecognitionStream


@dataclass
class Heard:
    """A final transcript and where its time went (ms), for the turn's latency record."""

    text: str
    speech_end: float  # monotonic: when the caller went quiet, by the VAD
    steps: dict[str, float]


@dataclass
class _Chunk:
    pcm: bytes
    received: float  # monotonic arrival of its last frame
    speech_end: float
    ended: bool  # our endpointer fired on it: finish the utterance after it


# A feed carries at least this much audio, unless it ends an utterance: each trip through the
# decoder pool has a fixed cost (a thread hand-off, Python around Kaldi), paid 50 times a second
# per call if every 20 ms frame went alone.
MIN_FEED_S = 0.1


class Listener:
    def __init__(
        self,
        stream: RecognitionStream,
        on_partial: Callable[[str], None],
        on_final: Callable[[Heard], None],
        sample_rate: int,
    ) -> None:
        self._stream = stream
        self._on_partial, self._on_final = on_partial, on_final
        self._queued: list[_Chunk] = []
        self._queued_bytes = 0
        self._min_bytes = int(MIN_FEED_S * sample_rate) * 2
        self._wake = asyncio.Event()
        self.partial = ""  # the utterance heard so far, until its final

    def push(self, pcm: bytes, received: float, speech_end: float, ended: bool = False) -> None:
        self._queued.append(_Chunk(pcm, received, speech_end, ended))
        self._queued_bytes += len(pcm)
        if ended:  # the caller waits for an answer now: decode this call's audio first
            self._stream.expedite()
        if ended or self._queued_bytes >= self._min_bytes:
            self._wake.set()

    async def run(self) -> None:
        """Feed until cancelled (the call's end); a recognizer failure propagates."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queued_bytes >= self._min_bytes or any(c.ended for c in self._queued):
                await self._feed(self._take())

    def _take(self) -> list[_Chunk]:
        """Everything queued, but never past an utterance end: the next words go after it."""
        batch = self._queued
        for n, chunk in enumerate(self._queued):
            if chunk.ended:
                batch = self._queued[: n + 1]
                break
        self._queued = self._queued[len(batch) :]
        self._queued_bytes -= sum(len(c.pcm) for c in batch)
        return batch

    async def _feed(self, batch: list[_Chunk]) -> None:
        last = batch[-1]
        processed = time.monotonic()
        hyp: Hypothesis = await self._stream.feed(b"".join(c.pcm for c in batch))
        if not hyp.final and last.ended and self.partial:
            hyp = await self._stream.finish()  # our endpointer fired before the recognizer's own
        if hyp.final:
            self.partial = ""
            if hyp.text.strip():
                steps = {
                    "endpoint": round((last.received - last.speech_end) * 1000, 1),
                    "backlog": round((processed - last.received) * 1000, 1),
                    "asr_final": round((time.monotonic() - processed) * 1000, 1),
                }
                self._on_final(Heard(hyp.text.strip(), last.speech_end, steps))
        elif hyp.text and hyp.text != self.partial:
            self.partial = hyp.text
            self._on_partial(hyp.text)
