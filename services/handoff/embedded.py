"""The embedded backend: the queue in this process, every step persisted to SQLite.

The live state (calls in line, operators, callbacks) is held in memory and written through to
SQLite in the same step, so a restart loads it back: no callback and no record of who was
waiting is lost (those callers' media went with the old process; `reap` ends their waits as LOST
and makes them callbacks once the old instance's heartbeat is stale). The history the figures
and the estimate read (ended waits and talks) stays on disk only.

Steps run one at a time under an asyncio lock: one process, one event loop, so that alone makes
each step atomic.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel

from services.handoff.core import QueueCore, Tx, make_offer, offer_of, pick
from services.handoff.models import (
    Callback,
    Offer,
    Operator,
    OperatorState,
    TalkRecord,
    WaitingCall,
    WaitRecord,
)

R = TypeVar("R")
M = TypeVar("M", bound=BaseModel)

SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (call_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS operators (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS callbacks (id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS waits (queue TEXT NOT NULL, ended_at REAL NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS waits_by_queue ON waits (queue, ended_at);
CREATE TABLE IF NOT EXISTS talks (queue TEXT NOT NULL, ended_at REAL NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS talks_by_queue ON talks (queue, ended_at);
CREATE TABLE IF NOT EXISTS owners (owner TEXT PRIMARY KEY, seen_at REAL NOT NULL);
"""


class _Step:
    """One step's reads (copies: the live state changes only when the step commits) and
    its buffered writes."""

    def __init__(self, store: EmbeddedStore) -> None:
        self.store = store
        self.calls: dict[str, WaitingCall | None] = {}
        self.operators: dict[str, Operator] = {}
        self.callbacks: dict[str, Callback] = {}
        self.waits: list[WaitRecord] = []
        self.talks: list[TalkRecord] = []

    async def call(self, call_id: str) -> WaitingCall | None:
        if call_id in self.calls:
            return self.calls[call_id]
        live = self.store._live_calls.get(call_id)
        return live.model_copy(deep=True) if live is not None else None

    async def operator(self, operator_id: str) -> Operator | None:
        if operator_id in self.operators:
            return self.operators[operator_id]
        live = self.store._live_operators.get(operator_id)
        return live.model_copy(deep=True) if live is not None else None

    async def callback(self, callback_id: str) -> Callback | None:
        if callback_id in self.callbacks:
            return self.callbacks[callback_id]
        live = self.store._live_callbacks.get(callback_id)
        return live.model_copy(deep=True) if live is not None else None

    def put_call(self, call: WaitingCall) -> None:
        self.calls[call.call_id] = call

    def drop_call(self, call_id: str) -> None:
        self.calls[call_id] = None

    def put_operator(self, operator: Operator) -> None:
        self.operators[operator.id] = operator

    def put_callback(self, callback: Callback) -> None:
        self.callbacks[callback.id] = callback

    def add_wait(self, record: WaitRecord) -> None:
        self.waits.append(record)

    def add_talk(self, record: TalkRecord) -> None:
        self.talks.append(record)


class EmbeddedStore(QueueCore):
    def __init__(
        self,
        path: Path | str,
        *,
        clock: Callable[[], float] = time.time,
        default_handling_s: float = 180.0,
        eta_window_s: float = 3600.0,
    ) -> None:
        super().__init__(
            clock=clock, default_handling_s=default_handling_s, eta_window_s=eta_window_s
        )
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL: durable across a process crash
        self._db.executescript(SCHEMA)
        self._live_calls = self._load("calls", "call_id", WaitingCall)
        self._live_operators = self._load("operators", "id", Operator)
        self._live_callbacks = self._load("callbacks", "id", Callback)
        self._lock = asyncio.Lock()

    def _load(self, table: str, key: str, model: type[M]) -> dict[str, M]:
        rows = self._db.execute(f"SELECT {key}, body FROM {table}").fetchall()
        return {k: model.model_validate_json(body) for k, body in rows}

    async def _atomic(self, step: Callable[[Tx], Awaitable[R]]) -> R:
        async with self._lock:
            tx = _Step(self)
            result = await step(tx)
            self._commit(tx)
            return result

    def _commit(self, tx: _Step) -> None:
        db = self._db
        db.execute("BEGIN")
        try:
            for call_id, call in tx.calls.items():
                if call is None:
                    db.execute("DELETE FROM calls WHERE call_id = ?", (call_id,))
                else:
                    db.execute(
                        "INSERT OR REPLACE INTO calls VALUES (?, ?)",
                        (call_id, call.model_dump_json()),
                    )
            db.executemany(
                "INSERT OR REPLACE INTO operators VALUES (?, ?)",
                [(op.id, op.model_dump_json()) for op in tx.operators.values()],
            )
            db.executemany(
                "INSERT OR REPLACE INTO callbacks VALUES (?, ?)",
                [(cb.id, cb.model_dump_json()) for cb in tx.callbacks.values()],
            )
            db.executemany(
                "INSERT INTO waits VALUES (?, ?, ?)",
                [(w.queue, w.ended_at, w.model_dump_json()) for w in tx.waits],
            )
            db.executemany(
                "INSERT INTO talks VALUES (?, ?, ?)",
                [(t.queue, t.ended_at, t.model_dump_json()) for t in tx.talks],
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        for call_id, call in tx.calls.items():
            if call is None:
                self._live_calls.pop(call_id, None)
            else:
                self._live_calls[call_id] = call
        self._live_operators.update(tx.operators)
        self._live_callbacks.update(tx.callbacks)

    async def claim_next(self, operator_id: str, lease_s: float) -> Offer | None:
        now = self.clock()

        async def step(tx: Tx) -> Offer | None:
            operator = await tx.operator(operator_id)
            if operator is None or operator.state is not OperatorState.AVAILABLE:
                return None
            chosen = pick(operator, self._live_calls.values())
            call = await tx.call(chosen.call_id) if chosen is not None else None
            if call is None:
                return None
            make_offer(call, operator, now, lease_s)
            tx.put_call(call)
            tx.put_operator(operator)
            return offer_of(call, now)

        return await self._atomic(step)

    async def _calls(self) -> list[WaitingCall]:
        return list(self._live_calls.values())

    async def call(self, call_id: str) -> WaitingCall | None:
        return self._live_calls.get(call_id)

    async def operators(self) -> list[Operator]:
        return list(self._live_operators.values())

    async def operator(self, operator_id: str) -> Operator | None:
        return self._live_operators.get(operator_id)

    async def _all_callbacks(self) -> list[Callback]:
        return list(self._live_callbacks.values())

    async def _waits(self, queue: str, since: float) -> list[WaitRecord]:
        rows = self._db.execute(
            "SELECT body FROM waits WHERE queue = ? AND ended_at >= ?", (queue, since)
        ).fetchall()
        return [WaitRecord.model_validate_json(body) for (body,) in rows]

    async def _talks(self, queue: str, since: float, limit: int | None = None) -> list[TalkRecord]:
        rows = self._db.execute(
            "SELECT body FROM talks WHERE queue = ? AND ended_at >= ? ORDER BY ended_at DESC"
            " LIMIT ?",
            (queue, since, -1 if limit is None else limit),
        ).fetchall()
        return [TalkRecord.model_validate_json(body) for (body,) in rows]

    async def _owners(self) -> dict[str, float]:
        return dict(self._db.execute("SELECT owner, seen_at FROM owners").fetchall())

    async def heartbeat(self, owner: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO owners VALUES (?, ?)", (owner, self.clock()))

    async def close(self) -> None:
        self._db.close()
