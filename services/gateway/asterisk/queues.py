"""Asterisk's own Queue(), followed over AMI: waits and outcomes in the handoff store, callbacks.

After the bot hands an AudioSocket caller to the dialplan's `Queue()`, Asterisk's queue events
carry the call's UUID in the `CALL_UUID` channel variable (manager.conf `channelvars=CALL_UUID`):

- `QueueCallerJoin`: the caller is in line — a waiting call (transport asterisk_queue) with the
  bot's context from the call record, so the figures and consoles see it;
- `AgentConnect`: an agent answered — the wait ends ANSWERED;
- `QueueCallerAbandon`: the caller hung up waiting — ABANDONED, which the store makes a callback
  task (keeping the place in line) when the number is known.

After every login (a restart of either side) the queues as Asterisk holds them (`QueueStatus`,
`Getvar CALL_UUID`) stand for the events missed meanwhile.

Due callbacks are placed with `Originate` (async; its `OriginateResponse` says how it went) and
each try is recorded: answered → done; no answer, busy → tried again after a while; after the
last try, cancelled with a note.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
import time
from collections.abc import Awaitable, Callable

from services.common.logging import get_logger
from services.gateway.asterisk.ami import AmiClient, AmiError, AmiSettings, Message
from services.gateway.asterisk.callers import NUMBER_PATTERN
from services.gateway.call.hold import call_context
from services.gateway.call.record import CallRecord
from services.handoff.models import (
    OPEN_CALLBACK,
    Callback,
    CallbackOutcome,
    CallContext,
    Transport,
    WaitEnd,
)
from services.handoff.store import AlreadyQueued, HandoffStore

log = get_logger("gateway.asterisk")
CALL_VARIABLE = "CALL_UUID"
# OriginateResponse `Reason` (enum ast_control_frame_type): 3 ringing timed out, 5 busy,
# 8 congestion — nobody picked up; 4 is answered; 0/1 the call could not be placed.
NO_ANSWER_REASONS = frozenset({"3", "5", "8"})
_NUMBER = re.compile(NUMBER_PATTERN)

RecordLookup = Callable[[str], Awaitable[CallRecord | None]]


def call_id_of(message: Message) -> str:
    """The gateway's UUID for the call; a caller the bot never had gets Asterisk's own id."""
    return message.variables.get(CALL_VARIABLE) or f"asterisk-{message.get('Uniqueid')}"


def valid_number(raw: str | None) -> str | None:
    return raw if raw and _NUMBER.match(raw) else None


class QueueFollower:
    """Queue events → the store. One event at a time, in AMI's order."""

    def __init__(self, store: HandoffStore, owner: str, records: RecordLookup) -> None:
        self._store, self._owner, self._records = store, owner, records

    async def on_event(self, message: Message) -> None:
        match message.event:
            case "QueueCallerJoin":
                await self._joined(message)
            case "AgentConnect":
                await self._left(message, WaitEnd.ANSWERED)
            case "QueueCallerAbandon":
                await self._left(message, WaitEnd.ABANDONED)

    async def reconcile(self, ami: AmiClient) -> None:
        """After every login: Asterisk's queues as they are now stand for the events missed
        while the link was down. A caller waiting there and unknown here joins; a followed
        caller no longer there left unseen — answered or not, nobody knows: abandoned, so a
        callback rather than a caller lost without a trace."""
        status = await ami.action_list("QueueStatus")
        present = set()
        for entry in (m for m in status if m.event == "QueueEntry"):
            with contextlib.suppress(AmiError):  # gone meanwhile: no CALL_UUID to read
                reply = await ami.action("Getvar", Channel=entry["Channel"], Variable=CALL_VARIABLE)
                if reply.get("Value"):
                    entry.variables[CALL_VARIABLE] = reply["Value"]
            present.add(call_id_of(entry))
            await self._joined(entry)
        for call in await self._store.waiting():
            if call.context.transport is Transport.ASTERISK_QUEUE and call.call_id not in present:
                log.warning("asterisk_queue_left_unseen", call_id=call.call_id)
                await self._store.leave(call.call_id, WaitEnd.ABANDONED)

    async def _joined(self, message: Message) -> None:
        call_id = call_id_of(message)
        record = await self._records(call_id)
        queue = message["Queue"]
        context = (
            call_context(record, queue) if record else CallContext(call_id=call_id, queue=queue)
        )
        number = valid_number(message.get("CallerIDNum")) or context.caller_number
        context = context.model_copy(
            update={"caller_number": number, "transport": Transport.ASTERISK_QUEUE}
        )
        try:
            position = await self._store.enqueue(context, self._owner)
        except AlreadyQueued:  # a repeated event, or the queue moved it: its place stays
            return
        log.info("asterisk_queue_join", call_id=call_id, queue=context.queue, place=position.place)

    async def _left(self, message: Message, end: WaitEnd) -> None:
        call_id = call_id_of(message)
        callback = await self._store.leave(call_id, end)
        log.info(
            "asterisk_queue_left",
            call_id=call_id,
            end=end.value,
            hold_s=message.get("HoldTime"),
            callback=callback.id if callback else None,
        )


class CallbackPlacer:
    """Places due callbacks through Asterisk and records every try."""

    def __init__(
        self,
        ami: AmiClient,
        store: HandoffStore,
        settings: AmiSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ami, self._store, self._settings, self._clock = ami, store, settings, clock
        self._responses: dict[str, asyncio.Future[Message]] = {}
        self.in_flight: dict[str, asyncio.Task[CallbackOutcome]] = {}

    async def on_event(self, message: Message) -> None:
        if message.event == "OriginateResponse":
            waiter = self._responses.get(message.get("ActionID"))
            if waiter is not None and not waiter.done():
                waiter.set_result(message)

    async def place_due(self) -> list[asyncio.Task[CallbackOutcome]]:
        """Start a try for every open callback that is due and not being tried already."""
        started = []
        for callback in await self._store.callbacks(due_before=self._clock(), open_only=True):
            if callback.id not in self.in_flight:
                task = asyncio.create_task(self.place(callback))
                self.in_flight[callback.id] = task
                task.add_done_callback(functools.partial(self._done, callback.id))
                started.append(task)
        return started

    def _done(self, callback_id: str, task: asyncio.Task[CallbackOutcome]) -> None:
        self.in_flight.pop(callback_id, None)
        if not task.cancelled() and (error := task.exception()) is not None:
            # E.g. closed meanwhile by an operator (InvalidState): the store keeps its state.
            log.warning("callback_not_recorded", callback_id=callback_id, error=repr(error))

    async def place(self, callback: Callback) -> CallbackOutcome:
        number = valid_number(callback.number)
        if number is None:  # never dial what could be a channel string
            return await self._record(callback, CallbackOutcome.CANCELLED, "номер недопустим")
        action_id = f"callback-{callback.id}-{callback.attempts + 1}"
        response = asyncio.get_running_loop().create_future()
        self._responses[action_id] = response
        fields = (
            {"CallerID": self._settings.callback_caller_id}
            if self._settings.callback_caller_id
            else {}
        )
        try:
            await self._ami.action(
                "Originate",
                {"CALLBACK_ID": callback.id, "CALLBACK_NUMBER": number},
                ActionID=action_id,
                Channel=self._settings.callback_channel.format(number=number),
                Context=self._settings.callback_context,
                Exten=self._settings.callback_exten.format(queue=callback.queue),
                Priority="1",
                Timeout=str(int(self._settings.callback_ring_s * 1000)),
                Async="true",
                **fields,
            )
            async with asyncio.timeout(self._settings.callback_ring_s + 10):
                reply = await response
        except (AmiError, TimeoutError) as exc:
            return await self._record(
                callback, CallbackOutcome.FAILED, f"не удалось позвонить: {exc}"
            )
        finally:
            self._responses.pop(action_id, None)
        if reply.get("Response") == "Success":
            return await self._record(callback, CallbackOutcome.DONE, "")
        reason = reply.get("Reason")
        if reason in NO_ANSWER_REASONS:
            return await self._record(
                callback, CallbackOutcome.NO_ANSWER, f"не ответили ({reason})"
            )
        return await self._record(callback, CallbackOutcome.FAILED, f"звонок не прошёл ({reason})")

    async def _record(
        self, callback: Callback, outcome: CallbackOutcome, note: str
    ) -> CallbackOutcome:
        """The try as it went; after the last one that reached nobody, cancelled on top."""
        done = await self._store.record_callback_attempt(
            callback.id,
            outcome,
            retry_at=self._clock() + self._settings.callback_retry_s,
            note=note or None,
        )
        log.info("callback_tried", callback_id=callback.id, outcome=outcome.value, note=note)
        if outcome in OPEN_CALLBACK and done.attempts >= self._settings.callback_max_attempts:
            note = f"попыток: {done.attempts}, больше не звоним"
            await self._store.record_callback_attempt(
                callback.id, CallbackOutcome.CANCELLED, note=note
            )
            log.info("callback_given_up", callback_id=callback.id, attempts=done.attempts)
            return CallbackOutcome.CANCELLED
        return outcome


class AsteriskQueues:
    """The AMI connection, the follower and the placer, run together; `status` for /readyz."""

    def __init__(
        self,
        settings: AmiSettings,
        store: HandoffStore,
        owner: str,
        records: RecordLookup,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings, self._store, self._owner = settings, store, owner
        self.follower = QueueFollower(store, owner, records)
        self.ami = AmiClient(settings, self._on_event, self._on_connect)
        self.placer = CallbackPlacer(self.ami, store, settings, clock=clock)
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def status(self) -> dict[str, object]:
        return {
            "ami": self.ami.status,
            "callbacks_in_flight": len(self.placer.in_flight),
        }

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self.ami.run()), asyncio.create_task(self._poll())]

    async def close(self) -> None:
        tasks = [*self._tasks, *self.placer.in_flight.values()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _on_connect(self) -> None:
        await self.follower.reconcile(self.ami)

    async def _on_event(self, message: Message) -> None:
        await self.placer.on_event(message)
        await self.follower.on_event(message)

    async def _poll(self) -> None:
        """Keep this gateway's followed calls alive in the store; place callbacks when due."""
        while True:
            try:
                await self._store.heartbeat(self._owner)
                if self.settings.callbacks and self.ami.connected.is_set():
                    await self.placer.place_due()
            except Exception:  # a store hiccup: logged, tried again next round
                log.exception("asterisk_poll_failed")
            await asyncio.sleep(self.settings.poll_s)
