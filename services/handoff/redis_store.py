"""The Redis backend: one queue shared by several gateways.

Each call and operator is a hash: the full model as JSON (`body`) beside the fields routing reads
and the claim script writes (state, operator, offer, lease; queue, skill, declined),
which override the body when read, so the script never re-encodes JSON. The calls in line
(waiting or offered) are also in one sorted set per queue in routing order (`line_score`), so a
place is one ZRANK and the claim script stops at the first call an operator may take.

`claim_next` is one Lua script (CLAIM): it picks the call as `core.routing_key` orders them and
writes the lease in the same atomic step, so two operators — on any gateway — never get the same
call. Every other step is a WATCH/MULTI transaction over the keys it read, retried when another
client changed them meanwhile (the claim script included). Leases are plain times in the call's
hash; whichever gateway ticks first returns the expired ones, so a lease whose holder died (the
operator's browser, or the gateway it was connected to) comes back all the same. Calls whose
gateway stopped beating are `reap`ed by the others.

Keys carry their prefix in the script's arguments: one Redis server (not a cluster) per queue.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import WatchError

from services.handoff.core import IN_LINE, QueueCore, Tx, new_id, offer_of
from services.handoff.models import (
    Callback,
    CallState,
    Offer,
    Operator,
    OperatorState,
    TalkRecord,
    WaitingCall,
    WaitRecord,
)

R = TypeVar("R")

# Ended waits and talks kept per queue for the figures and the estimate.
HISTORY = 10_000

CLAIM = """
local p, op_id, now, lease, token = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local opk = p .. 'op:' .. op_id
if redis.call('HGET', opk, 'state') ~= 'available' then return false end
local skills = {}
for _, s in ipairs(cjson.decode(redis.call('HGET', opk, 'skills'))) do skills[s] = true end
local best, best_score
for _, q in ipairs(cjson.decode(redis.call('HGET', opk, 'queues'))) do
  -- the line is in routing order: the first call this operator may take is the queue's best
  local line = redis.call('ZRANGE', p .. 'line:' .. q, 0, -1, 'WITHSCORES')
  for i = 1, #line, 2 do
    local id, score = line[i], tonumber(line[i + 1])
    if best ~= nil and (score > best_score or (score == best_score and id > best)) then break end
    local f = redis.call('HMGET', p .. 'call:' .. id, 'state', 'skill', 'declined', 'transport')
    if f[1] == 'waiting' and (f[2] == '' or skills[f[2]]) and f[4] ~= 'asterisk_queue' then
      local declined = false
      for _, d in ipairs(cjson.decode(f[3])) do if d == op_id then declined = true end end
      if not declined then best, best_score = id, score; break end
    end
  end
end
if best == nil then return false end
redis.call('HSET', p .. 'call:' .. best, 'state', 'offered', 'operator_id', op_id,
  'offer_id', token .. '.' .. best, 'offered_at', ARGV[3], 'lease_until', tostring(now + lease))
redis.call('HSET', opk, 'state', 'offered', 'since', ARGV[3], 'call_id', best)
return best
"""


def line_score(call: WaitingCall) -> float:
    """`core.routing_key` as one number: priority bands 1e10 s wide, enqueue time within (wall
    time stays below 1e10 s until 2286; equal scores fall back to the call id, as the key does).
    """
    return (100 - call.context.priority) * 1e10 + call.enqueued_at


def _opt_float(raw: str) -> float | None:
    return float(raw) if raw else None


def _call_fields(call: WaitingCall) -> dict[str, str]:
    return {
        "body": call.model_dump_json(),
        "state": call.state.value,
        "queue": call.context.queue,
        "skill": call.context.skill or "",
        "transport": call.context.transport.value,
        "declined": json.dumps(call.declined_by),
        "operator_id": call.operator_id or "",
        "offer_id": call.offer_id or "",
        "offered_at": repr(call.offered_at) if call.offered_at is not None else "",
        "lease_until": repr(call.lease_until) if call.lease_until is not None else "",
    }


def _call_of(fields: dict[str, str]) -> WaitingCall | None:
    if not fields:
        return None
    call = WaitingCall.model_validate_json(fields["body"])
    call.state = CallState(fields["state"])
    call.operator_id = fields["operator_id"] or None
    call.offer_id = fields["offer_id"] or None
    call.offered_at = _opt_float(fields["offered_at"])
    call.lease_until = _opt_float(fields["lease_until"])
    return call


def _operator_fields(operator: Operator) -> dict[str, str]:
    return {
        "body": operator.model_dump_json(),
        "state": operator.state.value,
        "since": repr(operator.since),
        "call_id": operator.call_id or "",
        "queues": json.dumps(operator.queues),
        "skills": json.dumps(operator.skills),
    }


def _operator_of(fields: dict[str, str]) -> Operator | None:
    if not fields:
        return None
    operator = Operator.model_validate_json(fields["body"])
    operator.state = OperatorState(fields["state"])
    operator.since = float(fields["since"])
    operator.call_id = fields["call_id"] or None
    return operator


class _Step:
    """One transaction: reads WATCH their keys; writes are queued for MULTI/EXEC."""

    def __init__(self, store: RedisStore, pipe: Any) -> None:
        self.store, self.pipe = store, pipe
        self.read_calls: dict[str, WaitingCall | None] = {}
        self.writes: list[Callable[[Any], None]] = []
        self.calls: dict[str, WaitingCall | None] = {}
        self.operators: dict[str, Operator] = {}
        self.callbacks: dict[str, Callback] = {}

    async def call(self, call_id: str) -> WaitingCall | None:
        if call_id in self.calls:
            return self.calls[call_id]
        key = self.store._key("call", call_id)
        await self.pipe.watch(key)
        call = _call_of(await self.pipe.hgetall(key))
        self.read_calls[call_id] = call.model_copy(deep=True) if call is not None else None
        return call

    async def operator(self, operator_id: str) -> Operator | None:
        if operator_id in self.operators:
            return self.operators[operator_id]
        key = self.store._key("op", operator_id)
        await self.pipe.watch(key)
        return _operator_of(await self.pipe.hgetall(key))

    async def callback(self, callback_id: str) -> Callback | None:
        if callback_id in self.callbacks:
            return self.callbacks[callback_id]
        key = self.store._key("cb", callback_id)
        await self.pipe.watch(key)
        raw = await self.pipe.get(key)
        return Callback.model_validate_json(raw) if raw else None

    def _unindex(self, pipe: Any, call_id: str) -> None:
        for seen in (self.read_calls.get(call_id), self.calls.get(call_id)):
            if seen is not None:
                pipe.zrem(self.store._key("line", seen.context.queue), call_id)

    def put_call(self, call: WaitingCall) -> None:
        self.calls[call.call_id] = call
        snapshot = call.model_copy(deep=True)

        def write(pipe: Any) -> None:
            self._unindex(pipe, snapshot.call_id)
            pipe.hset(self.store._key("call", snapshot.call_id), mapping=_call_fields(snapshot))
            pipe.sadd(self.store._key("calls"), snapshot.call_id)
            if snapshot.state in IN_LINE:
                pipe.zadd(
                    self.store._key("line", snapshot.context.queue),
                    {snapshot.call_id: line_score(snapshot)},
                )

        self.writes.append(write)

    def drop_call(self, call_id: str) -> None:
        def write(pipe: Any) -> None:
            self._unindex(pipe, call_id)
            pipe.delete(self.store._key("call", call_id))
            pipe.srem(self.store._key("calls"), call_id)

        self.writes.append(write)
        self.calls[call_id] = None

    def put_operator(self, operator: Operator) -> None:
        self.operators[operator.id] = operator
        fields = _operator_fields(operator)

        def write(pipe: Any) -> None:
            pipe.hset(self.store._key("op", operator.id), mapping=fields)
            pipe.sadd(self.store._key("ops"), operator.id)

        self.writes.append(write)

    def put_callback(self, callback: Callback) -> None:
        self.callbacks[callback.id] = callback
        body = callback.model_dump_json()

        def write(pipe: Any) -> None:
            pipe.set(self.store._key("cb", callback.id), body)
            pipe.sadd(self.store._key("cbs"), callback.id)

        self.writes.append(write)

    def _history(self, kind: str, queue: str, body: str) -> None:
        def write(pipe: Any) -> None:
            key = self.store._key(kind, queue)
            pipe.lpush(key, body)
            pipe.ltrim(key, 0, HISTORY - 1)

        self.writes.append(write)

    def add_wait(self, record: WaitRecord) -> None:
        self._history("waits", record.queue, record.model_dump_json())

    def add_talk(self, record: TalkRecord) -> None:
        self._history("talks", record.queue, record.model_dump_json())


class RedisStore(QueueCore):
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = "voicebot:handoff:",
        clock: Callable[[], float] = time.time,
        default_handling_s: float = 180.0,
        eta_window_s: float = 3600.0,
    ) -> None:
        super().__init__(
            clock=clock, default_handling_s=default_handling_s, eta_window_s=eta_window_s
        )
        # decode_responses=True: replies are str (redis-py's types say bytes | str)
        self.redis: Any = client
        self.prefix = prefix
        self._claim = client.register_script(CLAIM)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> RedisStore:
        # A blocking pool: a burst of callers waits for a connection instead of failing with
        # MaxConnectionsError (redis-py's default pool raises once its limit is reached).
        pool = aioredis.BlockingConnectionPool.from_url(
            url, decode_responses=True, max_connections=64, timeout=10
        )
        return cls(aioredis.Redis.from_pool(pool), **kwargs)  # owns the pool: closed with it

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def _atomic(self, step: Callable[[Tx], Awaitable[R]]) -> R:
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                tx = _Step(self, pipe)
                try:
                    result = await step(tx)
                    pipe.multi()
                    for write in tx.writes:
                        write(pipe)
                    await pipe.execute()
                    return result
                except WatchError:
                    continue  # another client changed what this step read: run it again
                finally:
                    await pipe.reset()

    async def claim_next(self, operator_id: str, lease_s: float) -> Offer | None:
        offers = await self.claim_each([operator_id], lease_s)
        return offers[0] if offers else None

    async def claim_each(self, operator_ids: Sequence[str], lease_s: float) -> list[Offer]:
        # A dispatch round claims for every idle operator: one at a time that was a round trip
        # each, and a burst of handoffs saturated the event loop (bench/handoff_load.py).
        now = self.clock()
        async with self.redis.pipeline(transaction=False) as pipe:
            for op in operator_ids:
                await self._claim(args=[self.prefix, op, repr(now), lease_s, new_id()], client=pipe)
            claimed = await pipe.execute()
        pairs = [
            (op, call_id) for op, call_id in zip(operator_ids, claimed, strict=True) if call_id
        ]
        if not pairs:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for _, call_id in pairs:
                pipe.hgetall(self._key("call", call_id))
            rows = await pipe.execute()
        return [
            offer_of(call, now)
            for (op, _), row in zip(pairs, rows, strict=True)
            # the caller may have left (or the lease been swept) in between
            if (call := _call_of(row)) is not None and call.operator_id == op
        ]

    async def call(self, call_id: str) -> WaitingCall | None:
        return _call_of(await self.redis.hgetall(self._key("call", call_id)))

    async def _calls(self) -> list[WaitingCall]:
        ids = await self.redis.smembers(self._key("calls"))
        async with self.redis.pipeline(transaction=False) as pipe:
            for call_id in ids:
                pipe.hgetall(self._key("call", call_id))
            rows = await pipe.execute()
        return [call for row in rows if (call := _call_of(row)) is not None]

    async def _place(self, call_id: str) -> tuple[str, int] | None:
        queue = await self.redis.hget(self._key("call", call_id), "queue")
        if queue is None:
            return None
        rank = await self.redis.zrank(self._key("line", queue), call_id)
        return None if rank is None else (queue, rank + 1)

    async def operator(self, operator_id: str) -> Operator | None:
        return _operator_of(await self.redis.hgetall(self._key("op", operator_id)))

    async def operators(self) -> list[Operator]:
        ids = await self.redis.smembers(self._key("ops"))
        async with self.redis.pipeline(transaction=False) as pipe:
            for operator_id in ids:
                pipe.hgetall(self._key("op", operator_id))
            rows = await pipe.execute()
        return [op for row in rows if (op := _operator_of(row)) is not None]

    async def _all_callbacks(self) -> list[Callback]:
        ids = list(await self.redis.smembers(self._key("cbs")))
        if not ids:
            return []
        bodies = await self.redis.mget([self._key("cb", i) for i in ids])
        return [Callback.model_validate_json(body) for body in bodies if body]

    async def _waits(self, queue: str, since: float) -> list[WaitRecord]:
        rows = await self.redis.lrange(self._key("waits", queue), 0, -1)
        records = (WaitRecord.model_validate_json(row) for row in rows)
        return [r for r in records if r.ended_at >= since]

    async def _talks(self, queue: str, since: float, limit: int | None = None) -> list[TalkRecord]:
        rows = await self.redis.lrange(
            self._key("talks", queue), 0, -1 if limit is None else limit - 1
        )
        records = [
            r for row in rows if (r := TalkRecord.model_validate_json(row)).ended_at >= since
        ]
        return sorted(records, key=lambda r: r.ended_at, reverse=True)

    async def _owners(self) -> dict[str, float]:
        beats = await self.redis.hgetall(self._key("owners"))
        return {owner: float(at) for owner, at in beats.items()}

    async def heartbeat(self, owner: str) -> None:
        await self.redis.hset(self._key("owners"), owner, repr(self.clock()))

    async def close(self) -> None:
        await self.redis.aclose()
