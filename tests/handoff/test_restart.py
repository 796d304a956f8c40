"""A restart keeps every waiting caller's record and every callback (SQLite, and Redis)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.handoff.embedded import EmbeddedStore
from services.handoff.models import CallContext, OperatorLogin, OperatorState, WaitEnd
from services.handoff.redis_store import RedisStore
from tests.handoff.conftest import Clock


@pytest.mark.parametrize("kind", ["embedded", "redis"])
async def test_restart_keeps_callers_and_callbacks(
    kind: str, tmp_path: Path, clock: Clock, request: pytest.FixtureRequest
) -> None:
    def reopen() -> EmbeddedStore | RedisStore:
        if kind == "embedded":
            return EmbeddedStore(tmp_path / "q.sqlite3", clock=clock)
        url = request.getfixturevalue("redis_url")
        return RedisStore.from_url(url, prefix=f"restart-{tmp_path.name}:", clock=clock)

    before = reopen()
    await before.enqueue(
        CallContext(call_id="waiting", queue="operators", caller_number="+7901"), "old"
    )
    clock.advance(1)
    await before.enqueue(CallContext(call_id="quiet", queue="operators"), "old")
    await before.add_callback("+7902", "operators", WaitEnd.ABANDONED, note="с прошлого дня")
    await before.login(OperatorLogin(id="o1", queues=["operators"]))
    await before.set_state("o1", OperatorState.AVAILABLE)
    await before.close()

    clock.advance(30)  # the process was down
    after = reopen()
    assert [c.call_id for c in await after.waiting()] == ["waiting", "quiet"]
    assert [cb.note for cb in await after.callbacks()] == ["с прошлого дня"]
    assert (await after.operator("o1")).state is OperatorState.AVAILABLE  # type: ignore[union-attr]
    await after.heartbeat("new")
    assert sorted(await after.reap(15)) == ["quiet", "waiting"]  # their media died with "old"
    numbers = sorted(cb.number for cb in await after.callbacks())
    assert numbers == ["+7901", "+7902"]  # the waiting caller with a number is called back
    await after.close()
