"""Several gateway processes claiming from one Redis queue at once: never a double claim."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

from services.handoff.models import CallContext
from services.handoff.redis_store import RedisStore

ROOT = Path(__file__).resolve().parents[2]


async def test_processes_never_share_a_call(redis_url: str) -> None:
    prefix = f"procs-{uuid.uuid4().hex[:8]}:"
    store = RedisStore.from_url(redis_url, prefix=prefix)
    calls = 120
    for i in range(calls):
        await store.enqueue(CallContext(call_id=f"c{i}", queue="operators", priority=i % 3), "gw")
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    }
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.handoff.claimer",
            redis_url,
            prefix,
            f"gw{n}",
            "8",
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
        )
        for n in range(3)
    ]
    outputs = [await asyncio.wait_for(p.communicate(), 60) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    taken = [call for out, _ in outputs for call in json.loads(out)]
    assert len(taken) == calls and set(taken) == {f"c{i}" for i in range(calls)}
    await store.close()
