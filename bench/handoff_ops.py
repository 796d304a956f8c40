"""Queue operations per second on both backends (embedded SQLite, a real local redis-server).

Writes bench/results/handoff_ops.md. One client, one event loop: the figures are per-step
costs, not a capacity under concurrency (bench/handoff_load.py is that).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

from bench.local import free_port, machine_note
from services.handoff.core import QueueCore
from services.handoff.embedded import EmbeddedStore
from services.handoff.models import (
    CallContext,
    Disposition,
    OperatorLogin,
    OperatorState,
    Turn,
    WaitEnd,
)
from services.handoff.redis_store import RedisStore

RESULTS = Path(__file__).parent / "results" / "handoff_ops.md"
CALLS = 1000


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway redis-server on a free loopback port (Debian package redis-server)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server is not installed (apt-get install redis-server)")
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                folder,
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            for _ in range(200):
                with contextlib.suppress(OSError):
                    socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                    break
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(10)


def context(i: int) -> CallContext:
    """A call as the bot hands it on: a few turns of transcript, slots, a number."""
    turns = [
        Turn(who="caller" if t % 2 == 0 else "bot", text="когда вывезут мусор во дворе", score=0.4)
        for t in range(6)
    ]
    return CallContext(
        call_id=f"call-{i}",
        queue="operators",
        caller_number=f"+7900{i:07d}",
        turns=turns,
        slots={"district": "центральный"},
    )


async def rate(n: int, fn: Callable[[int], Awaitable[object]]) -> float:
    start = time.perf_counter()
    for i in range(n):
        await fn(i)
    return n / (time.perf_counter() - start)


async def measure(store: QueueCore) -> dict[str, float]:
    figures: dict[str, float] = {}
    figures["enqueue"] = await rate(CALLS, lambda i: store.enqueue(context(i), "gw"))
    figures[f"position (with {CALLS} in line)"] = await rate(
        200, lambda i: store.position(f"call-{i * 5}")
    )
    for op in range(20):
        await store.login(OperatorLogin(id=f"op{op}", queues=["operators"]))
        await store.set_state(f"op{op}", OperatorState.AVAILABLE)

    async def cycle(i: int) -> None:
        op = f"op{i % 20}"
        offer = await store.claim_next(op, 15)
        assert offer is not None
        await store.accept(offer.id)
        await store.finish(offer.call_id, Disposition.RESOLVED)
        await store.set_state(op, OperatorState.AVAILABLE)

    figures["claim + accept + finish + available (one call through)"] = await rate(
        CALLS // 2, cycle
    )
    figures["leave (abandon -> callback)"] = await rate(
        CALLS // 2, lambda i: store.leave(f"call-{CALLS // 2 + i}", WaitEnd.ABANDONED)
    )
    figures["figures (one queue)"] = await rate(
        20, lambda i: store.figures("operators", window_s=3600, service_level_s=20)
    )
    return figures


async def main() -> None:
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as folder:
        store: QueueCore = EmbeddedStore(Path(folder) / "q.sqlite3")
        results["embedded (SQLite)"] = await measure(store)
        await store.close()
    with redis_server() as url:
        store = RedisStore.from_url(url)
        results["redis"] = await measure(store)
        await store.close()
    names = list(next(iter(results.values())))
    lines = [
        "# Handoff queue: operations per second (bench/handoff_ops.py)",
        "",
        f"{CALLS} calls with 6 transcript turns each, 20 operators, one client on one event loop; "
        "Redis: a local redis-server 7 over loopback TCP.",
        "",
        "| operation | " + " | ".join(results) + " |",
        "|---|" + "---:|" * len(results),
    ]
    for name in names:
        lines.append(
            f"| {name} | " + " | ".join(f"{r[name]:,.0f}/s" for r in results.values()) + " |"
        )
    lines += ["", machine_note() + " The machine is shared with other helpers' jobs."]
    RESULTS.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    asyncio.run(main())
