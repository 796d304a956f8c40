"""The queue at work: offers pushed to operators, leases kept, overflow, wrap-up, callbacks.

`HandoffService` sits over a `HandoffStore`. The gateway's hold party calls `enqueue`, then
`wait_for_operator` (resolves with the operator's id when one accepts) while it plays
announcements from `position`, and `leave` when the caller hangs up or asks for a callback.
After an answer it follows `call_events` (hold, transfer, back to the bot, ended by the
operator). The operator API (api.py) subscribes operators with `operator_feed` and calls the
operator methods.

Offers go to operators connected to this process (a feed is open): on every change that may
free a call or an operator, and on every `tick` (lease expiry, overflow, end of wrap-up, gateways
that stopped). `run` ticks every `tick_s`; tests call `tick` with their own clock instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator
from enum import StrEnum
from typing import Generic, TypeVar

from pydantic import BaseModel

from services.common.logging import get_logger
from services.handoff.models import (
    Callback,
    CallContext,
    CallState,
    Disposition,
    Offer,
    OfferEnd,
    Operator,
    OperatorLogin,
    OperatorState,
    Position,
    QueueFigures,
    TalkRecord,
    WaitEnd,
)
from services.handoff.settings import HandoffSettings
from services.handoff.store import (
    HandoffError,
    HandoffStore,
    InvalidState,
    UnknownCall,
    UnknownOperator,
)

log = get_logger("handoff")


class CallGone(HandoffError):
    """`wait_for_operator` on a call that left the queue (hangup, callback, restart)."""

    def __init__(self, call_id: str) -> None:
        super().__init__(f"Звонок {call_id} покинул очередь")
        self.call_id = call_id


class OperatorEventKind(StrEnum):
    OFFER = "offer"  # a call is offered: accept before offer.expires_at
    OFFER_WITHDRAWN = "offer_withdrawn"  # expired, or the caller left
    STATE = "state"  # the operator's own state changed (wrap-up over, away after a lease)
    CALLER_LEFT = "caller_left"  # the caller hung up mid-talk: finish with a disposition


class OperatorEvent(BaseModel):
    kind: OperatorEventKind
    operator: Operator | None = None
    offer: Offer | None = None
    offer_end: OfferEnd | None = None
    call_id: str | None = None


class CallEventKind(StrEnum):
    ANSWERED = "answered"
    HOLD = "hold"  # the operator put the caller on hold: play the hold loop
    UNHOLD = "unhold"
    TRANSFERRED = "transferred"  # back in line in another queue: hold again
    RETURNED_TO_BOT = "returned_to_bot"  # the bot's conversation takes the leg again
    ENDED = "ended"  # the operator ended the conversation


class CallEvent(BaseModel):
    kind: CallEventKind
    call_id: str
    operator_id: str | None = None
    position: Position | None = None  # TRANSFERRED: the new place


T = TypeVar("T")

# Settled waits kept for late `wait_for_operator` calls (oldest dropped first).
SETTLED_KEPT = 4096


class Feed(Generic[T]):
    """One subscriber's stream of events; iterate it, close it when done."""

    def __init__(self, on_close: Callable[[Feed[T]], None]) -> None:
        self._queue: asyncio.Queue[T] = asyncio.Queue()
        self._on_close = on_close

    def put(self, event: T) -> None:
        self._queue.put_nowait(event)

    async def get(self) -> T:
        return await self._queue.get()

    def get_nowait(self) -> T | None:
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            return None

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[T]:
        while True:
            yield await self._queue.get()

    def close(self) -> None:
        self._on_close(self)


class HandoffService:
    def __init__(
        self,
        store: HandoffStore,
        settings: HandoffSettings | None = None,
        *,
        clock: Callable[[], float] = time.time,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.settings = settings or HandoffSettings()
        self.clock = clock
        self.owner = owner or uuid.uuid4().hex  # this gateway instance, for `reap`
        self._operator_feeds: dict[str, list[Feed[OperatorEvent]]] = {}
        self._call_feeds: dict[str, list[Feed[CallEvent]]] = {}
        self._answered: dict[str, asyncio.Future[str]] = {}
        # settled waits of calls that left the queue, for a `wait_for_operator` that comes late
        # (an operator accepted and finished before the gateway started waiting)
        self._settled: OrderedDict[str, asyncio.Future[str]] = OrderedDict()
        self._on_hold: set[str] = set()
        self._dispatch_lock = asyncio.Lock()
        self._dispatch_wanted = False
        self.latest_figures: dict[str, QueueFigures] = {}  # what /metrics shows
        self._figures_at = -math.inf

    # --- the caller's side (the gateway) -------------------------------------------------
    async def enqueue(self, context: CallContext) -> Position:
        # The future first: while the store call awaits, another task's dispatch may offer the
        # call and an operator accept (and finish) it, which must find the wait to resolve.
        self._answered[context.call_id] = asyncio.get_running_loop().create_future()
        try:
            position = await self.store.enqueue(context, self.owner)
        except BaseException:
            self._answered.pop(context.call_id, None)
            raise
        await self.dispatch()
        return position

    async def wait_for_operator(self, call_id: str) -> str:
        """Resolves with the operator's id when one accepts the call (cancel it to stop)."""
        future = self._answered.get(call_id) or self._settled.pop(call_id, None)
        if future is None:
            call = await self.store.call(call_id)
            if call is None:
                raise UnknownCall(call_id)
            future = asyncio.get_running_loop().create_future()
            self._answered[call_id] = future
            if call.state is CallState.TALKING and call.operator_id:
                future.set_result(call.operator_id)
        return await asyncio.shield(future)

    async def position(self, call_id: str) -> Position | None:
        return await self.store.position(call_id)

    async def leave(self, call_id: str, end: WaitEnd) -> Callback | None:
        call = await self.store.call(call_id)
        callback = await self.store.leave(call_id, end)
        self._forget_call(call_id)
        if call is not None and call.operator_id:
            kind = (
                OperatorEventKind.CALLER_LEFT
                if call.state is CallState.TALKING
                else OperatorEventKind.OFFER_WITHDRAWN
            )
            self._to_operator(
                call.operator_id,
                OperatorEvent(kind=kind, call_id=call_id, offer_end=OfferEnd.CALLER_LEFT),
            )
            await self.dispatch()
        return callback

    async def request_callback(self, call_id: str, number: str) -> Callback:
        call = await self.store.call(call_id)
        callback = await self.store.request_callback(call_id, number)
        self._forget_call(call_id)
        if call is not None and call.operator_id and call.state is CallState.OFFERED:
            self._to_operator(
                call.operator_id,
                OperatorEvent(
                    kind=OperatorEventKind.OFFER_WITHDRAWN,
                    call_id=call_id,
                    offer_end=OfferEnd.CALLER_LEFT,
                ),
            )
            await self.dispatch()
        return callback

    @contextlib.contextmanager
    def call_feed(self, call_id: str) -> Iterator[Feed[CallEvent]]:
        """What happens to an answered call: hold, transfer, back to the bot, ended."""
        feed: Feed[CallEvent] = Feed(lambda f: self._drop(self._call_feeds, call_id, f))
        self._call_feeds.setdefault(call_id, []).append(feed)
        try:
            yield feed
        finally:
            feed.close()

    def on_hold(self, call_id: str) -> bool:
        return call_id in self._on_hold

    # --- the operator's side (the API) ---------------------------------------------------
    async def login(self, login: OperatorLogin) -> Operator:
        return await self.store.login(login)

    async def logout(self, operator_id: str) -> None:
        for offer in await self.store.logout(operator_id):
            self._offer_returned(offer, OfferEnd.OPERATOR_LOST)
        await self.dispatch()

    async def set_state(self, operator_id: str, state: OperatorState) -> Operator:
        operator = await self.store.set_state(operator_id, state)
        await self.dispatch()
        return operator

    @contextlib.asynccontextmanager
    async def operator_feed(self, operator_id: str) -> AsyncIterator[Feed[OperatorEvent]]:
        """Offers and state changes for one logged-in operator, while the block runs. When the
        operator's last feed closes with an offer pending or nothing to do, they are logged
        out (the offer goes back: OfferEnd.OPERATOR_LOST); talking operators stay on the call."""
        if await self.store.operator(operator_id) is None:
            raise UnknownOperator(operator_id)
        feed: Feed[OperatorEvent] = Feed(lambda f: self._drop(self._operator_feeds, operator_id, f))
        self._operator_feeds.setdefault(operator_id, []).append(feed)
        try:
            await self.dispatch()
            yield feed
        finally:
            feed.close()
            if operator_id not in self._operator_feeds:
                await self._operator_lost(operator_id)

    async def accept(self, offer_id: str) -> CallContext:
        call = await self.store.accept(offer_id)
        assert call.operator_id is not None  # accept sets it
        future = self._answered.get(call.call_id)
        if future is not None and not future.done():
            future.set_result(call.operator_id)
        self._to_call(
            call.call_id,
            CallEvent(
                kind=CallEventKind.ANSWERED, call_id=call.call_id, operator_id=call.operator_id
            ),
        )
        return call.context

    async def decline(self, offer_id: str) -> None:
        await self.store.decline(offer_id)
        await self.dispatch()

    async def hold(self, operator_id: str, on: bool) -> None:
        call_id = await self._talking_call(operator_id)
        if on:
            self._on_hold.add(call_id)
        else:
            self._on_hold.discard(call_id)
        kind = CallEventKind.HOLD if on else CallEventKind.UNHOLD
        self._to_call(call_id, CallEvent(kind=kind, call_id=call_id, operator_id=operator_id))

    async def finish(
        self, operator_id: str, disposition: Disposition, note: str = ""
    ) -> TalkRecord:
        operator = await self.store.operator(operator_id)
        if operator is None:
            raise UnknownOperator(operator_id)
        if operator.call_id is None:
            raise InvalidState("Нет звонка, который можно завершить")
        talking = operator.state is OperatorState.TALKING
        record = await self.store.finish(operator.call_id, disposition, note)
        if talking:
            self._to_call(
                record.call_id,
                CallEvent(
                    kind=CallEventKind.ENDED, call_id=record.call_id, operator_id=operator_id
                ),
            )
        self._forget_call(record.call_id)
        return record

    async def transfer(
        self, operator_id: str, queue: str | None, note: str = ""
    ) -> Position | None:
        call_id = await self._talking_call(operator_id)
        position = await self.store.transfer(call_id, queue, note)
        self._on_hold.discard(call_id)
        if position is None:
            self._to_call(
                call_id,
                CallEvent(
                    kind=CallEventKind.RETURNED_TO_BOT, call_id=call_id, operator_id=operator_id
                ),
            )
            self._forget_call(call_id)
        else:
            self._answered[call_id] = asyncio.get_running_loop().create_future()
            self._to_call(
                call_id,
                CallEvent(
                    kind=CallEventKind.TRANSFERRED,
                    call_id=call_id,
                    operator_id=operator_id,
                    position=position,
                ),
            )
            await self.dispatch()
        return position

    async def figures(self, queue: str) -> QueueFigures:
        return await self.store.figures(
            queue,
            window_s=self.settings.history_window_s,
            service_level_s=self.settings.service_level_s,
        )

    async def queues(self) -> list[str]:
        """Every queue in use: the general one, those operators serve, those callers are in."""
        names = {self.settings.general_queue}
        names.update(q for op in await self.store.operators() for q in op.queues)
        names.update(c.context.queue for c in await self.store.waiting())
        return sorted(names)

    async def refresh_figures(self) -> dict[str, QueueFigures]:
        self.latest_figures = {q: await self.figures(q) for q in await self.queues()}
        self._figures_at = self.clock()
        return self.latest_figures

    # --- the router's heartbeat ----------------------------------------------------------
    async def dispatch(self) -> list[Offer]:
        """Offer waiting calls to this process's connected, available operators, the longest
        idle first; the offers made. Each claim is the store's atomic step.

        Requests coalesce: while a round runs, another request only makes it go round once
        more (and returns no offers itself). A round costs a claim per idle operator, and on
        Redis a burst of handoffs queued a round each behind the lock (bench/handoff_load.py)."""
        self._dispatch_wanted = True
        if self._dispatch_lock.locked():
            return []
        offers: list[Offer] = []
        async with self._dispatch_lock:
            while self._dispatch_wanted:
                self._dispatch_wanted = False
                offers += await self._dispatch_round()
        return offers

    async def _dispatch_round(self) -> list[Offer]:
        connected = [op for op in await self.store.operators() if op.id in self._operator_feeds]
        idle = sorted(
            (op for op in connected if op.state is OperatorState.AVAILABLE),
            key=lambda op: op.since,
        )
        offers = await self.store.claim_each([op.id for op in idle], self.settings.lease_s)
        for offer in offers:
            self._to_operator(
                offer.operator_id, OperatorEvent(kind=OperatorEventKind.OFFER, offer=offer)
            )
        return offers

    async def tick(self) -> None:
        """One round of the queue's housekeeping; `run` calls it every `tick_s`."""
        settings = self.settings
        await self.store.heartbeat(self.owner)
        for offer in await self.store.expire_leases():
            self._offer_returned(offer, OfferEnd.EXPIRED)
            await self._tell_state(offer.operator_id)
        await self.store.overflow(settings.overflow_after_s, settings.general_queue)
        for operator_id in await self.store.end_wrap_up(settings.wrap_up_s):
            await self._tell_state(operator_id)
        for call_id in await self.store.reap(settings.owner_ttl_s):
            self._forget_call(call_id)
        await self._notice_remote_answers()
        await self.dispatch()
        if self.clock() - self._figures_at >= settings.figures_every_s:
            await self.refresh_figures()

    async def run(self) -> None:
        """Tick until cancelled (the gateway runs it as a background task)."""
        me = asyncio.current_task()
        while True:
            try:
                await self.tick()
            except Exception as exc:  # a store gone (Redis down): say so, keep ticking
                log.error("handoff tick failed; retrying", error=repr(exc))
            # redis-py 8's Pipeline.reset returns from a `finally`, which swallows a
            # cancellation that lands in it: the task must still stop when asked to
            if me is not None and me.cancelling():
                raise asyncio.CancelledError
            await asyncio.sleep(self.settings.tick_s)

    # --- plumbing ------------------------------------------------------------------------
    async def _talking_call(self, operator_id: str) -> str:
        operator = await self.store.operator(operator_id)
        if operator is None:
            raise UnknownOperator(operator_id)
        if operator.state is not OperatorState.TALKING or operator.call_id is None:
            raise InvalidState("Оператор сейчас не разговаривает")
        return operator.call_id

    async def _operator_lost(self, operator_id: str) -> None:
        operator = await self.store.operator(operator_id)
        if operator is None or operator.state in (OperatorState.TALKING, OperatorState.LOGGED_OUT):
            return
        await self.logout(operator_id)

    async def _notice_remote_answers(self) -> None:
        """Calls of ours answered by an operator on another gateway (the Redis backend)."""
        for call_id, future in list(self._answered.items()):
            if future.done():
                continue
            call = await self.store.call(call_id)
            # (re-checked: this process's own `accept` may have settled it while the store read)
            if call and call.state is CallState.TALKING and call.operator_id and not future.done():
                future.set_result(call.operator_id)

    async def _tell_state(self, operator_id: str) -> None:
        operator = await self.store.operator(operator_id)
        if operator is not None:
            self._to_operator(
                operator_id, OperatorEvent(kind=OperatorEventKind.STATE, operator=operator)
            )

    def _offer_returned(self, offer: Offer, end: OfferEnd) -> None:
        self._to_operator(
            offer.operator_id,
            OperatorEvent(
                kind=OperatorEventKind.OFFER_WITHDRAWN,
                offer=offer,
                offer_end=end,
                call_id=offer.call_id,
            ),
        )

    def _forget_call(self, call_id: str) -> None:
        future = self._answered.pop(call_id, None)
        if future is not None:
            if not future.done():
                future.set_exception(CallGone(call_id))
                future.exception()  # retrieved: nobody may be waiting, which is fine
            self._settled[call_id] = future
            while len(self._settled) > SETTLED_KEPT:
                self._settled.popitem(last=False)
        self._on_hold.discard(call_id)

    def _to_operator(self, operator_id: str, event: OperatorEvent) -> None:
        for feed in self._operator_feeds.get(operator_id, []):
            feed.put(event)

    def _to_call(self, call_id: str, event: CallEvent) -> None:
        for feed in self._call_feeds.get(call_id, []):
            feed.put(event)

    @staticmethod
    def _drop(feeds: dict[str, list[Feed[T]]], key: str, feed: Feed[T]) -> None:
        subscribers = feeds.get(key, [])
        if feed in subscribers:
            subscribers.remove(feed)
        if not subscribers:
            feeds.pop(key, None)
