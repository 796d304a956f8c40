"""The queue's rules, written once for both backends.

`QueueCore` implements the `HandoffStore` Protocol over a few primitives a backend supplies: an
atomic step (`_atomic`: a function over a `Tx` that reads the call and operator it touches and
buffers its writes; the embedded store runs it under a lock, the Redis store in a WATCH/MULTI
transaction it retries on a conflict) and read-only views of the whole state. Routing order and
the figures are plain functions here too; the Redis claim script mirrors `routing_key`.
"""

from __future__ import annotations

import secrets
import statistics
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Protocol, TypeVar

from services.handoff.models import (
    CALLER_ENDS,
    OPEN_CALLBACK,
    OPERATOR_DISPOSITIONS,
    SETTABLE_STATES,
    Callback,
    CallbackOutcome,
    CallContext,
    CallState,
    Disposition,
    HandoffReason,
    Offer,
    OfferEnd,
    Operator,
    OperatorLogin,
    OperatorState,
    Position,
    QueueFigures,
    TalkRecord,
    Transport,
    WaitEnd,
    WaitingCall,
    WaitRecord,
)
from services.handoff.store import (
    AlreadyQueued,
    InvalidState,
    OfferGone,
    UnknownCall,
    UnknownCallback,
    UnknownOperator,
)

R = TypeVar("R")

# Handling times the estimate averages: the queue's most recent talks.
RECENT_TALKS = 50


class Tx(Protocol):
    """One atomic step's view: reads what it touches, buffers writes until the step ends."""

    async def call(self, call_id: str) -> WaitingCall | None: ...
    async def operator(self, operator_id: str) -> Operator | None: ...
    async def callback(self, callback_id: str) -> Callback | None: ...
    def put_call(self, call: WaitingCall) -> None: ...
    def drop_call(self, call_id: str) -> None: ...
    def put_operator(self, operator: Operator) -> None: ...
    def put_callback(self, callback: Callback) -> None: ...
    def add_wait(self, record: WaitRecord) -> None: ...
    def add_talk(self, record: TalkRecord) -> None: ...


# States in which a call is in line: the caller still waits for a person.
IN_LINE = frozenset({CallState.WAITING, CallState.OFFERED})


def new_id() -> str:
    return secrets.token_hex(8)


def offer_id_for(call_id: str) -> str:
    """Offer ids carry their call's id, so an accept finds the call without an index."""
    return f"{new_id()}.{call_id}"


def call_of_offer(offer_id: str) -> str:
    return offer_id.partition(".")[2]


def routing_key(call: WaitingCall) -> tuple[int, float, str]:
    """Served first: the highest priority, then the longest waiting."""
    return (-call.context.priority, call.enqueued_at, call.call_id)


def can_take(operator: Operator, call: WaitingCall) -> bool:
    # A caller in Asterisk's own Queue() has no audio here: the gateway only follows that call,
    # Asterisk's members answer it; no operator of ours may be offered it.
    return (
        call.state is CallState.WAITING
        and call.context.transport is not Transport.ASTERISK_QUEUE
        and call.context.queue in operator.queues
        and (call.context.skill is None or call.context.skill in operator.skills)
        and operator.id not in call.declined_by
    )


def pick(operator: Operator, calls: Iterable[WaitingCall]) -> WaitingCall | None:
    fitting = [call for call in calls if can_take(operator, call)]
    return min(fitting, key=routing_key) if fitting else None


def on_shift(operators: Iterable[Operator], queue: str) -> int:
    """Operators who will take the queue's calls: logged in, not away."""
    return sum(
        1
        for op in operators
        if queue in op.queues and op.state not in (OperatorState.LOGGED_OUT, OperatorState.AWAY)
    )


def offer_of(call: WaitingCall, now: float) -> Offer:
    assert call.offer_id and call.operator_id and call.offered_at and call.lease_until
    return Offer(
        id=call.offer_id,
        call_id=call.call_id,
        operator_id=call.operator_id,
        offered_at=call.offered_at,
        expires_at=call.lease_until,
        context=call.context,
        waited_s=call.offered_at - call.enqueued_at,
    )


def make_offer(call: WaitingCall, operator: Operator, now: float, lease_s: float) -> None:
    call.state = CallState.OFFERED
    call.operator_id, call.offer_id = operator.id, offer_id_for(call.call_id)
    call.offered_at, call.lease_until = now, now + lease_s
    operator.state, operator.since, operator.call_id = OperatorState.OFFERED, now, call.call_id


def figures_of(
    queue: str,
    *,
    now: float,
    waits: list[WaitRecord],
    talks: list[TalkRecord],
    in_line: list[WaitingCall],
    callbacks: list[Callback],
    operators: list[Operator],
    service_level_s: float,
) -> QueueFigures:
    answered = [w.waited_s for w in waits if w.end is WaitEnd.ANSWERED]
    abandoned = sum(1 for w in waits if w.end in (WaitEnd.ABANDONED, WaitEnd.LOST))
    offered = len(answered) + abandoned
    handled = [t.ended_at - t.answered_at for t in talks]
    return QueueFigures(
        queue=queue,
        waiting_now=len(in_line),
        longest_wait_s=max((now - c.enqueued_at for c in in_line), default=0.0),
        answered=len(answered),
        abandoned=abandoned,
        asa_s=statistics.fmean(answered) if answered else None,
        abandonment_rate=abandoned / offered if offered else None,
        service_level=(
            sum(1 for w in answered if w <= service_level_s) / offered if offered else None
        ),
        service_level_s=service_level_s,
        aht_s=statistics.fmean(handled) if handled else None,
        callbacks_due=sum(
            1 for cb in callbacks if cb.queue == queue and cb.outcome in OPEN_CALLBACK
        ),
        callbacks_done=sum(
            1 for cb in callbacks if cb.queue == queue and cb.outcome is CallbackOutcome.DONE
        ),
        operators_on_shift=on_shift(operators, queue),
    )


class QueueCore(ABC):
    """The HandoffStore Protocol over a backend's primitives."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        default_handling_s: float = 180.0,
        eta_window_s: float = 3600.0,
    ) -> None:
        self.clock = clock
        self.default_handling_s = default_handling_s
        self.eta_window_s = eta_window_s

    # --- what a backend supplies ---------------------------------------------------------
    @abstractmethod
    async def _atomic(self, step: Callable[[Tx], Awaitable[R]]) -> R:
        """Run `step` atomically (it may run more than once: no side effects but on `tx`)."""

    @abstractmethod
    async def _calls(self) -> list[WaitingCall]: ...

    @abstractmethod
    async def call(self, call_id: str) -> WaitingCall | None: ...

    @abstractmethod
    async def operators(self) -> list[Operator]: ...

    @abstractmethod
    async def operator(self, operator_id: str) -> Operator | None: ...

    @abstractmethod
    async def _all_callbacks(self) -> list[Callback]: ...

    @abstractmethod
    async def _waits(self, queue: str, since: float) -> list[WaitRecord]: ...

    @abstractmethod
    async def _talks(self, queue: str, since: float, limit: int | None = None) -> list[TalkRecord]:
        """The queue's talks that ended after `since`, the most recent first."""

    @abstractmethod
    async def _owners(self) -> dict[str, float]:
        """Gateway instance → its last heartbeat."""

    @abstractmethod
    async def heartbeat(self, owner: str) -> None: ...

    @abstractmethod
    async def claim_next(self, operator_id: str, lease_s: float) -> Offer | None: ...

    async def claim_each(self, operator_ids: Sequence[str], lease_s: float) -> list[Offer]:
        return [offer for op in operator_ids if (offer := await self.claim_next(op, lease_s))]

    @abstractmethod
    async def close(self) -> None: ...

    # --- callers -------------------------------------------------------------------------
    async def enqueue(self, context: CallContext, owner: str) -> Position:
        now = self.clock()

        async def step(tx: Tx) -> None:
            if await tx.call(context.call_id) is not None:
                raise AlreadyQueued(context.call_id)
            tx.put_call(
                WaitingCall(
                    context=context, enqueued_at=now, origin_queue=context.queue, owner=owner
                )
            )

        await self._atomic(step)
        await self.heartbeat(owner)
        position = await self.position(context.call_id)
        assert position is not None
        return position

    async def waiting(self, queue: str | None = None) -> list[WaitingCall]:
        calls = [
            c
            for c in await self._calls()
            if c.state in IN_LINE and (queue is None or c.context.queue == queue)
        ]
        return sorted(calls, key=routing_key)

    async def _place(self, call_id: str) -> tuple[str, int] | None:
        """The queue a call is in line in and its 1-based place; None when not in line."""
        calls = await self._calls()
        mine = next((c for c in calls if c.call_id == call_id), None)
        if mine is None or mine.state not in IN_LINE:
            return None
        queue, key = mine.context.queue, routing_key(mine)
        ahead = sum(
            1
            for c in calls
            if c.context.queue == queue and c.state in IN_LINE and routing_key(c) < key
        )
        return queue, ahead + 1

    async def position(self, call_id: str) -> Position | None:
        found = await self._place(call_id)
        if found is None:
            return None
        queue, place = found
        staffed = on_shift(await self.operators(), queue)
        handling = await self.recent_handling_s(queue, window_s=self.eta_window_s)
        eta = (place * (handling or self.default_handling_s) / staffed) if staffed else None
        return Position(
            call_id=call_id,
            queue=queue,
            place=place,
            eta_seconds=eta,
            eta_from_history=handling is not None,
            operators_on_shift=staffed,
        )

    async def leave(self, call_id: str, end: WaitEnd) -> Callback | None:
        if end not in CALLER_ENDS:
            raise InvalidState(f"Недопустимое завершение ожидания: {end}")
        return await self._leave(call_id, end, None)

    async def request_callback(self, call_id: str, number: str) -> Callback:
        callback = await self._leave(call_id, WaitEnd.CALLBACK_REQUESTED, number)
        if callback is None:
            raise UnknownCall(call_id)
        return callback

    async def _leave(self, call_id: str, end: WaitEnd, number: str | None) -> Callback | None:
        now = self.clock()

        async def step(tx: Tx) -> Callback | None:
            call = await tx.call(call_id)
            if call is None:
                return None
            return await self._end_wait(tx, call, end, number or call.context.caller_number, now)

        return await self._atomic(step)

    async def _end_wait(
        self, tx: Tx, call: WaitingCall, end: WaitEnd, number: str | None, now: float
    ) -> Callback | None:
        """The caller's side of a call ends (or, ANSWERED, an agent outside took it)."""
        operator = await tx.operator(call.operator_id) if call.operator_id else None
        if call.state in (CallState.TALKING, CallState.WRAP_UP):
            if call.state is CallState.TALKING:  # hung up mid-talk: the operator writes notes
                call.state, call.ended_at = CallState.WRAP_UP, now
                tx.put_call(call)
                if operator is not None:
                    operator.state, operator.since = OperatorState.WRAP_UP, now
                    tx.put_operator(operator)
                elif call.operator_id is None:  # nobody of ours to close it
                    self._close_talk(tx, call, Disposition.CALLER_HUNG_UP, "", now)
            return None
        if end is WaitEnd.CALLBACK_REQUESTED and not number:
            raise InvalidState("Номер для обратного звонка неизвестен")
        tx.add_wait(
            WaitRecord(
                call_id=call.call_id,
                queue=call.context.queue,
                enqueued_at=call.enqueued_at,
                ended_at=now,
                end=end,
            )
        )
        if operator is not None:  # an offer was pending
            self._free(tx, operator, OperatorState.AVAILABLE, now)
        if end is WaitEnd.ANSWERED:  # an Asterisk Queue() agent took it: the talk goes on
            call.state, call.answered_at = CallState.TALKING, now
            call.operator_id = call.offer_id = call.offered_at = call.lease_until = None
            tx.put_call(call)
            return None
        tx.drop_call(call.call_id)
        if not number or end is WaitEnd.RETURNED_TO_BOT:
            return None
        callback = Callback(
            id=new_id(),
            call_id=call.call_id,
            number=number,
            queue=call.context.queue,
            due_at=now,
            created_at=now,
            waited_since=call.enqueued_at,
            reason=end,
        )
        tx.put_callback(callback)
        return callback

    async def add_callback(
        self,
        number: str,
        queue: str,
        reason: WaitEnd | Disposition,
        *,
        call_id: str | None = None,
        note: str = "",
        waited_since: float | None = None,
    ) -> Callback:
        now = self.clock()
        callback = Callback(
            id=new_id(),
            call_id=call_id,
            number=number,
            queue=queue,
            due_at=now,
            created_at=now,
            waited_since=waited_since,
            note=note,
            reason=reason,
        )

        async def step(tx: Tx) -> None:
            tx.put_callback(callback)

        await self._atomic(step)
        return callback

    # --- operators -----------------------------------------------------------------------
    async def login(self, login: OperatorLogin) -> Operator:
        now = self.clock()

        async def step(tx: Tx) -> Operator:
            known = await tx.operator(login.id)
            if known is not None and known.state is not OperatorState.LOGGED_OUT:
                operator = known.model_copy(update=login.model_dump())
            else:
                operator = Operator(**login.model_dump(), state=OperatorState.AWAY, since=now)
            tx.put_operator(operator)
            return operator

        return await self._atomic(step)

    async def logout(self, operator_id: str) -> list[Offer]:
        now = self.clock()

        async def step(tx: Tx) -> list[Offer]:
            operator = await self._operator(tx, operator_id)
            if operator.state is OperatorState.TALKING:
                raise InvalidState("Сначала завершите или переведите разговор")
            returned = await self._release(tx, operator, OfferEnd.OPERATOR_LOST, now)
            self._free(tx, operator, OperatorState.LOGGED_OUT, now)
            return returned

        return await self._atomic(step)

    async def set_state(self, operator_id: str, state: OperatorState) -> Operator:
        if state not in SETTABLE_STATES:
            raise InvalidState(f"Состояние «{state}» выставляет очередь, а не оператор")
        now = self.clock()

        async def step(tx: Tx) -> Operator:
            operator = await self._operator(tx, operator_id)
            if operator.state is OperatorState.LOGGED_OUT:
                raise InvalidState("Сначала войдите в систему")
            if operator.state in (OperatorState.OFFERED, OperatorState.TALKING):
                raise InvalidState("Сначала примите, отклоните или завершите звонок")
            if operator.state is not state:
                await self._release(tx, operator, OfferEnd.OPERATOR_LOST, now)
                self._free(tx, operator, state, now)
            return operator

        return await self._atomic(step)

    async def _operator(self, tx: Tx, operator_id: str) -> Operator:
        operator = await tx.operator(operator_id)
        if operator is None:
            raise UnknownOperator(operator_id)
        return operator

    async def _release(self, tx: Tx, operator: Operator, end: OfferEnd, now: float) -> list[Offer]:
        """What the operator holds goes: a pending offer back in line, a hung-up call closed."""
        if operator.call_id is None:
            return []
        call = await tx.call(operator.call_id)
        if call is None:
            return []
        if call.state is CallState.OFFERED and call.operator_id == operator.id:
            offer = offer_of(call, now)
            self._return_offer(tx, call, operator, end)
            return [offer]
        if call.state is CallState.WRAP_UP:
            self._close_talk(tx, call, Disposition.CALLER_HUNG_UP, "", call.ended_at or now)
        return []

    @staticmethod
    def _free(tx: Tx, operator: Operator, state: OperatorState, now: float) -> None:
        operator.state, operator.since, operator.call_id = state, now, None
        tx.put_operator(operator)

    @staticmethod
    def _return_offer(tx: Tx, call: WaitingCall, operator: Operator, end: OfferEnd) -> None:
        """The call goes back to its place in line (its enqueued_at is untouched)."""
        if end is OfferEnd.DECLINED:
            call.declined_by = [*call.declined_by, operator.id]
        call.state = CallState.WAITING
        call.operator_id = call.offer_id = call.offered_at = call.lease_until = None
        tx.put_call(call)

    # --- the lease -----------------------------------------------------------------------
    async def _offered(self, tx: Tx, offer_id: str) -> tuple[WaitingCall, Operator]:
        call = await tx.call(call_of_offer(offer_id))
        if call is None or call.offer_id != offer_id or call.state is not CallState.OFFERED:
            raise OfferGone(offer_id)
        assert call.operator_id is not None
        return call, await self._operator(tx, call.operator_id)

    async def accept(self, offer_id: str) -> WaitingCall:
        now = self.clock()

        async def step(tx: Tx) -> WaitingCall:
            call, operator = await self._offered(tx, offer_id)
            if call.lease_until is not None and call.lease_until < now:
                raise OfferGone(offer_id)  # expire_leases puts it back
            tx.add_wait(
                WaitRecord(
                    call_id=call.call_id,
                    queue=call.context.queue,
                    enqueued_at=call.enqueued_at,
                    ended_at=now,
                    end=WaitEnd.ANSWERED,
                )
            )
            call.state, call.answered_at, call.lease_until = CallState.TALKING, now, None
            operator.state, operator.since = OperatorState.TALKING, now
            tx.put_call(call)
            tx.put_operator(operator)
            return call

        return await self._atomic(step)

    async def decline(self, offer_id: str) -> None:
        now = self.clock()

        async def step(tx: Tx) -> None:
            call, operator = await self._offered(tx, offer_id)
            self._return_offer(tx, call, operator, OfferEnd.DECLINED)
            self._free(tx, operator, OperatorState.AVAILABLE, now)

        await self._atomic(step)

    async def expire_leases(self) -> list[Offer]:
        now = self.clock()
        expired: list[Offer] = []
        for stale in await self._calls():
            if stale.state is not CallState.OFFERED or (stale.lease_until or 0) > now:
                continue

            async def step(tx: Tx, offer_id: str = stale.offer_id or "") -> Offer | None:
                try:
                    call, operator = await self._offered(tx, offer_id)
                except OfferGone:
                    return None  # accepted or declined meanwhile
                if (call.lease_until or 0) > now:
                    return None
                offer = offer_of(call, now)
                self._return_offer(tx, call, operator, OfferEnd.EXPIRED)
                self._free(tx, operator, OperatorState.AWAY, now)
                return offer

            if (offer := await self._atomic(step)) is not None:
                expired.append(offer)
        return expired

    async def overflow(self, after_s: float, to_queue: str) -> list[str]:
        now = self.clock()
        moved: list[str] = []
        for due in await self._calls():
            if due.context.queue == to_queue or now - due.enqueued_at < after_s:
                continue

            async def step(tx: Tx, call_id: str = due.call_id) -> bool:
                call = await tx.call(call_id)
                if call is None or call.state is not CallState.WAITING:
                    return False
                if call.context.queue == to_queue:
                    return False
                call.context = call.context.model_copy(update={"queue": to_queue, "skill": None})
                tx.put_call(call)
                return True

            if due.state is CallState.WAITING and await self._atomic(step):
                moved.append(due.call_id)
        return moved

    async def end_wrap_up(self, wrap_up_s: float) -> list[str]:
        now = self.clock()
        done: list[str] = []
        for resting in await self.operators():
            if resting.state is not OperatorState.WRAP_UP or now - resting.since < wrap_up_s:
                continue

            async def step(tx: Tx, operator_id: str = resting.id) -> bool:
                operator = await tx.operator(operator_id)
                if operator is None or operator.state is not OperatorState.WRAP_UP:
                    return False
                await self._release(tx, operator, OfferEnd.OPERATOR_LOST, now)
                self._free(tx, operator, OperatorState.AVAILABLE, now)
                return True

            if await self._atomic(step):
                done.append(resting.id)
        return done

    # --- ending a conversation ------------------------------------------------------------
    @staticmethod
    def _close_talk(
        tx: Tx, call: WaitingCall, disposition: Disposition, note: str, ended_at: float
    ) -> TalkRecord:
        record = TalkRecord(
            call_id=call.call_id,
            queue=call.context.queue,
            operator_id=call.operator_id,
            answered_at=call.answered_at or ended_at,
            ended_at=ended_at,
            disposition=disposition,
            note=note,
        )
        tx.add_talk(record)
        tx.drop_call(call.call_id)
        return record

    async def finish(self, call_id: str, disposition: Disposition, note: str = "") -> TalkRecord:
        if disposition not in OPERATOR_DISPOSITIONS:
            raise InvalidState(f"Недопустимый итог разговора: {disposition}")
        now = self.clock()

        async def step(tx: Tx) -> TalkRecord:
            call = await tx.call(call_id)
            if call is None:
                raise UnknownCall(call_id)
            if call.state not in (CallState.TALKING, CallState.WRAP_UP):
                raise InvalidState("Разговор ещё не начат")
            record = self._close_talk(tx, call, disposition, note, call.ended_at or now)
            number = call.context.caller_number
            if disposition is Disposition.CALLBACK and number:
                tx.put_callback(
                    Callback(
                        id=new_id(),
                        call_id=call_id,
                        number=number,
                        queue=call.context.queue,
                        due_at=now,
                        created_at=now,
                        note=note,
                        reason=disposition,
                    )
                )
            if call.operator_id is not None:
                operator = await tx.operator(call.operator_id)
                if operator is not None and operator.call_id == call_id:
                    since = operator.since if operator.state is OperatorState.WRAP_UP else now
                    operator.state, operator.since = OperatorState.WRAP_UP, since
                    operator.call_id = None
                    tx.put_operator(operator)
            return record

        return await self._atomic(step)

    async def transfer(self, call_id: str, queue: str | None, note: str = "") -> Position | None:
        now = self.clock()

        async def step(tx: Tx) -> None:
            call = await tx.call(call_id)
            if call is None:
                raise UnknownCall(call_id)
            if call.state is not CallState.TALKING:
                raise InvalidState("Перевести можно только идущий разговор")
            disposition = Disposition.TRANSFERRED if queue else Disposition.RETURNED_TO_BOT
            self._close_talk(tx, call, disposition, note, now)
            if call.operator_id is not None:
                operator = await tx.operator(call.operator_id)
                if operator is not None:
                    self._free(tx, operator, OperatorState.WRAP_UP, now)
            if queue is not None:
                context = call.context.model_copy(
                    update={"queue": queue, "skill": None, "reason": HandoffReason.TRANSFER}
                )
                tx.put_call(
                    WaitingCall(
                        context=context, enqueued_at=now, origin_queue=queue, owner=call.owner
                    )
                )

        await self._atomic(step)
        return await self.position(call_id) if queue is not None else None

    # --- callbacks -----------------------------------------------------------------------
    async def callbacks(
        self, *, due_before: float | None = None, open_only: bool = False
    ) -> list[Callback]:
        chosen = [
            cb
            for cb in await self._all_callbacks()
            if (due_before is None or cb.due_at <= due_before)
            and (not open_only or cb.outcome in OPEN_CALLBACK)
        ]
        return sorted(chosen, key=lambda cb: (cb.due_at, cb.waited_since or cb.created_at))

    async def record_callback_attempt(
        self,
        callback_id: str,
        outcome: CallbackOutcome,
        *,
        retry_at: float | None = None,
        note: str | None = None,
    ) -> Callback:
        if outcome is CallbackOutcome.PENDING:
            raise InvalidState("Исход попытки не указан")
        now = self.clock()

        async def step(tx: Tx) -> Callback:
            callback = await tx.callback(callback_id)
            if callback is None:
                raise UnknownCallback(callback_id)
            if callback.outcome not in OPEN_CALLBACK:
                raise InvalidState("Обратный звонок уже закрыт")
            if outcome is not CallbackOutcome.CANCELLED:
                callback.attempts += 1
                callback.last_attempt_at = now
            callback.outcome = outcome
            if outcome in OPEN_CALLBACK:
                callback.due_at = retry_at if retry_at is not None else now
            if note:
                callback.note = f"{callback.note}\n{note}".strip()
            tx.put_callback(callback)
            return callback

        return await self._atomic(step)

    # --- gateways and figures ------------------------------------------------------------
    async def reap(self, owner_ttl_s: float) -> list[str]:
        now = self.clock()
        beats = await self._owners()
        lost: list[str] = []
        for orphan in await self._calls():
            if now - beats.get(orphan.owner, orphan.enqueued_at) < owner_ttl_s:
                continue

            async def step(tx: Tx, call_id: str = orphan.call_id) -> bool:
                call = await tx.call(call_id)
                if call is None:
                    return False
                await self._end_wait(tx, call, WaitEnd.LOST, call.context.caller_number, now)
                return True

            if orphan.state is not CallState.WRAP_UP and await self._atomic(step):
                lost.append(orphan.call_id)
        return lost

    async def figures(self, queue: str, *, window_s: float, service_level_s: float) -> QueueFigures:
        now = self.clock()
        since = now - window_s
        return figures_of(
            queue,
            now=now,
            waits=await self._waits(queue, since),
            talks=await self._talks(queue, since),
            in_line=await self.waiting(queue),
            callbacks=await self._all_callbacks(),
            operators=await self.operators(),
            service_level_s=service_level_s,
        )

    async def recent_handling_s(self, queue: str, *, window_s: float) -> float | None:
        talks = await self._talks(queue, self.clock() - window_s, RECENT_TALKS)
        handled = [t.ended_at - t.answered_at for t in talks]
        return statistics.fmean(handled) if handled else None
