"""The bounded decoder pool: shedding and the queue cap (plain code, real threads)."""

from __future__ import annotations

import asyncio
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
