"""The call's feeder to the recognizer: batches what queued up while the recognizer was busy,
never across an utterance end. (A stand-in stream: this tests the queueing around the engine;
the real engine's evidence is test_e2e_*.py and bench/call_latency.py.)"""

from __future__ import annotations

import asyncio

from services.asr.base import Hypothesis
from services.gateway.call.listener import Heard, Listener


class SlowStream:
    """Takes 50 ms per feed, as a busy decoder pool does; a final on finish()."""

    def __init__(self) -> None:
        self.fed: list[bytes] = []
        self.finished = 0
        self.expedited_after: list[int] = []  # feeds done when an utterance end was pushed

    async def feed(self, pcm: bytes) -> Hypothesis:
        self.fed.append(pcm)
        await asyncio.sleep(0.05)
        return Hypothesis(text="слово", final=False)

    async def finish(self) -> Hypothesis:
        self.finished += 1
        return Hypothesis(text="слово", final=True)

    def expedite(self) -> None:
        self.expedited_after.append(len(self.fed))


FRAME = 320  # 20 ms at 8 kHz


async def test_frames_queued_during_a_slow_feed_go_in_one_batch_and_finals_split_them() -> None:
    stream = SlowStream()
    partials: list[str] = []
    finals: list[Heard] = []
    listener = Listener(stream, partials.append, finals.append, 8000)  # type: ignore[arg-type]
    task = asyncio.create_task(listener.run())
    t = 0.0
    for n in range(20):  # 400 ms of audio arriving every 20 ms
        listener.push(bytes([n]) * FRAME, received=t, speech_end=t, ended=n == 9)
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    task.cancel()

    # All audio, in order, in far fewer feeds than frames; the utterance end closed a batch.
    assert b"".join(stream.fed) == b"".join(bytes([n]) * FRAME for n in range(20))
    assert len(stream.fed) < 8
    ends = [len(b"".join(stream.fed[: i + 1])) for i in range(len(stream.fed))]
    assert 10 * FRAME in ends, "frames after the utterance end were fed before its finish"
    # Nothing goes to the pool in trips shorter than MIN_FEED_S but the one ending an utterance.
    assert all(len(pcm) >= 5 * FRAME for n, pcm in enumerate(stream.fed) if ends[n] != 10 * FRAME)
    assert stream.finished == 1 and [h.text for h in finals] == ["слово"]
    assert len(stream.expedited_after) == 1, "the end was not flagged to the pool at once"
    assert stream.expedited_after[0] < ends.index(10 * FRAME) + 1
    assert partials == ["слово", "слово"]  # once per utterance, not once per feed
