"""The bounded decoder pool: shedding and the queue cap (plain code, real threads)."""

from __future__ import annotations

import asyncio
import os
import threading
import time

import pytest

from services.asr.base import RecognizerOverloaded
from services.asr.pool import DecoderPool


def busy(seconds: float) -> float:
    time.sleep(seconds)  # a decode that holds its worker
    return seconds


async def test_new_calls_are_shed_while_chunks_wait_too_long() -> None:
    pool = DecoderPool(workers=1, max_streams=50, shed_wait_s=0.1)
    pool.admit()  # an idle service takes calls
    await asyncio.gather(*(pool.run(busy, 0.06) for _ in range(10)))  # queued up to 0.54 s
    with pytest.raises(RecognizerOverloaded, match="saturated"):
        pool.admit()
    assert pool.streams == 1  # the call already in is still served
    assert await pool.run(busy, 0.0) == 0.0
    await asyncio.sleep(2.1)  # the backlog is gone: calls are welcome again
    pool.admit()
    assert pool.streams == 2


async def test_the_pool_queue_has_a_hard_cap() -> None:
    pool = DecoderPool(workers=1, max_streams=2, max_queued=1)
    jobs = [asyncio.ensure_future(pool.run(busy, 0.2)) for _ in range(3)]
    results = await asyncio.gather(*jobs, return_exceptions=True)
    refused = [r for r in results if isinstance(r, RecognizerOverloaded)]
    assert len(refused) == 1 and "queue full" in str(refused[0])
    assert sorted(r for r in results if isinstance(r, float)) == [0.2, 0.2]


async def test_a_stream_whose_caller_stopped_speaking_goes_before_ordinary_chunks() -> None:
    """One worker, busy; chunks of five speaking callers queue, then a sixth caller's utterance
    ends: its queued chunk and its final run next, the others after."""
    pool = DecoderPool(workers=1, max_streams=10)
    order: list[str] = []

    def decode(name: str) -> str:
        time.sleep(0.02)
        order.append(name)
        return name

    speaking, stopped = object(), object()
    busy_job = asyncio.ensure_future(pool.run(busy, 0.1))
    await asyncio.sleep(0.02)  # the worker holds it
    queued = [
        asyncio.ensure_future(pool.run(decode, f"partial {n}", owner=speaking)) for n in range(5)
    ]
    last_chunk = asyncio.ensure_future(pool.run(decode, "last chunk", owner=stopped))
    await asyncio.sleep(0)
    pool.expedite(stopped)
    final = asyncio.ensure_future(pool.run(decode, "final", owner=stopped))
    await asyncio.gather(busy_job, *queued, last_chunk, final)
    assert order[:2] == ["last chunk", "final"], order
    pool.settle(stopped)
    assert await pool.run(decode, "next", owner=stopped) == "next"
    pool.shutdown()


async def test_decoder_threads_yield_the_cpu_to_the_event_loop() -> None:
    pool = DecoderPool(workers=1, nice=7)
    native_id = await pool.run(threading.get_native_id)
    assert os.getpriority(os.PRIO_PROCESS, native_id) == os.getpriority(os.PRIO_PROCESS, 0) + 7
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == os.getpriority(
        os.PRIO_PROCESS, 0
    ), "the event loop's thread kept its priority"
    pool.shutdown()
