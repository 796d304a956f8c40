"""The queue's side of a call: the caller waits in line, hears where they are, may ask for a
callback instead.

    WAITING ──key 1 / «перезвоните мне»──► CONFIRMING ──1──► callback request, goodbye (End)
       │  ▲                                  │   ▲ digits + #: the number read back
       │  └──────────────── * ───────────────┘   │
       │                     (no caller number) NUMBER ─┘
       ├── an operator accepts ──► ToOperator
       └── caller hangs up ──► leave(ABANDONED): the queue makes it a callback (End)

Announcements (position and estimate, the queue's own text) every `interval_s`, hold music
between them; the caller's number is confirmed before a callback is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any

from services.common.audio import resample
from services.common.logging import get_logger
from services.dialog.normalize import lemma, numbers_to_digits, words
from services.dialog.session import DIGIT_WORDS
from services.gateway.call import events as ev
from services.gateway.call.leg import Audio, Digit, HangUp, MediaLeg, Text
from services.gateway.call.listener import Heard, Listener
from services.gateway.call.music import play_music
from services.gateway.call.party import End, Ending, EndReason, Next, ToOperator, ToQueue
from services.gateway.call.policy import CallPolicy
from services.gateway.call.record import CallRecord
from services.gateway.engines import Engines
from services.handoff.models import CallContext, HandoffReason, Position, Transport, Turn, WaitEnd
from services.handoff.service import CallGone, HandoffService
from services.handoff.store import AlreadyQueued

log = get_logger("gateway.hold")
PHONE = re.compile(r"\+?\d{5,15}")
CALLBACK_WORDS = ("перезвон", "обратн")  # «перезвоните мне», «обратный звонок»
YES_WORDS = ("да", "верно", "правильно", "подтверждаю")
# What the recognizer listens for while the caller waits: the callback request, a dictated
# number, a spoken yes.
CALLBACK_PHRASES = [
    "перезвоните мне",
    "перезвоните",
    "обратный звонок",
    *DIGIT_WORDS,
    *YES_WORDS,
    "[unk]",
]


class HoldState(StrEnum):
    WAITING = "waiting"
    CONFIRMING = "confirming"  # the number read back: 1 confirms, digits + # give another
    NUMBER = "number"  # no number known: the caller keys one in


Announce = Callable[[Position], str]


def caller_number(caller_id: str) -> str | None:
    """A caller id that is a phone number (an AudioSocket peer address is not)."""
    digits = caller_id.replace(" ", "").replace("-", "")
    return digits if PHONE.fullmatch(digits) else None


def call_context(record: CallRecord, queue: str) -> CallContext:
    """What the operator sees: the conversation so far, the slots, why the bot handed on."""
    turns: list[Turn] = []
    slots: dict[str, str] = {}
    for turn in record.turns:
        if turn.source != "bot" and turn.transcript:
            turns.append(
                Turn(
                    who="caller",
                    text=turn.transcript,
                    intent=turn.intent,
                    score=turn.score,
                    decision=turn.decision,
                )
            )
        if turn.reply:
            turns.append(Turn(who="bot", text=turn.reply))
        slots.update(turn.slots)
    transport = Transport.AUDIOSOCKET if record.transport == "audiosocket" else Transport.WEBSOCKET
    return CallContext(
        call_id=record.call_id,
        queue=queue,
        caller_number=caller_number(record.caller_id),
        skill=record.handoff_skill,
        reason=HandoffReason.parse(record.handoff_reason),
        reason_detail=record.handoff_reason,
        turns=turns,
        slots=slots,
        transport=transport,
    )


def spoken_number(number: str) -> str:
    """Digits read back in the groups a Russian number is said in: «7, 9 9 9, 0 0 0, 5 5, 6 6»
    (+7 999 000-55-66); other lengths in pairs."""
    digits = number.lstrip("+")
    sizes = {11: [1, 3, 3, 2, 2], 10: [3, 3, 2, 2]}.get(len(digits))
    if sizes is None:
        sizes = [len(digits) % 2, *[2] * (len(digits) // 2)]
    groups, at = [], 0
    for size in filter(None, sizes):
        groups.append(" ".join(digits[at : at + size]))
        at += size
    return ", ".join(groups)


class HoldParty:
    def __init__(
        self,
        service: HandoffService,
        engines: Engines,
        policy: CallPolicy,
        *,
        queue: str,
        announce: Announce,
        interval_s: float,
        enqueued: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`enqueued`: already in line (an operator transferred the call), not to be queued."""
        self.state = HoldState.WAITING
        self.queue = queue
        self._service, self._engines, self._policy = service, engines, policy
        self._announce, self._interval_s, self._clock = announce, interval_s, clock
        self._enqueued = enqueued
        self._number: str | None = None
        self._digits = ""
        self._music: asyncio.Task[None] | None = None  # plays while nobody speaks
        self._speaking: asyncio.Task[None] | None = None
        self._heard: asyncio.Queue[str] = asyncio.Queue()

    async def run(self, leg: MediaLeg) -> Next:
        call_id = leg.call_id
        if not self._enqueued:
            context = call_context(leg.record, self.queue)
            self._number = context.caller_number
            with contextlib.suppress(AlreadyQueued):  # still in line: the place stays
                await self._service.enqueue(context)
        else:
            waiting = await self._service.store.call(call_id)
            self._number = waiting.context.caller_number if waiting else None
        leg.post(ev.StateChanged(state="waiting"))
        answered = asyncio.create_task(self._service.wait_for_operator(call_id))
        tasks: list[asyncio.Task[Any]] = [answered]
        listener = await self._open_listener(leg, tasks)
        next_at = self._clock()  # the first announcement at once
        try:
            while True:
                got = asyncio.create_task(leg.receive())
                heard = asyncio.create_task(self._heard.get())
                timeout = max(0.0, next_at - self._clock())
                done, _ = await asyncio.wait(
                    {got, heard, answered}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                for task in (got, heard):
                    if task not in done:
                        task.cancel()
                if answered in done:
                    return self._answered(answered, leg)
                if got in done:
                    handed = await self._on_input(leg, got.result()[1], listener)
                    if handed is not None:
                        return handed
                if heard in done and (handed := await self._on_words(leg, heard.result())):
                    return handed
                if not done and self.state is HoldState.WAITING:
                    await self._announce_place(leg)
                    next_at = self._clock() + self._interval_s
        finally:
            tasks += [task for task in (self._speaking, self._music) if task is not None]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if listener is not None:
                await listener[1]()
            leg.pacer.interrupt()

    def _answered(self, answered: asyncio.Task[str], leg: MediaLeg) -> Next:
        try:
            return ToOperator(operator_id=answered.result(), queue=self.queue)
        except CallGone:  # the queue dropped the call (this gateway was taken for dead)
            log.warning("requeued", call_id=leg.call_id, queue=self.queue)
            return ToQueue(self.queue, "requeued")  # in line again: never dropped

    async def _on_input(
        self,
        leg: MediaLeg,
        item: Audio | Text | Digit | HangUp,
        listener: tuple[Listener, Callable[[], Awaitable[None]]] | None,
    ) -> Next | None:
        match item:
            case HangUp(ending):
                # The caller gave up waiting: the queue keeps the place as a callback task.
                await self._service.leave(leg.call_id, WaitEnd.ABANDONED)
                return End(ending)
            case Audio(pcm):
                if listener is not None:
                    now = time.monotonic()
                    listener[0].push(pcm, now, now)
            case Text(text):
                return await self._on_words(leg, text)
            case Digit(digit):
                return await self._on_digit(leg, digit)
        return None

    async def _on_digit(self, leg: MediaLeg, digit: str) -> Next | None:
        leg.post(ev.Dtmf(digit=digit))
        if self.state is HoldState.WAITING:
            if digit == "1":
                await self._offer_callback(leg)
        elif digit == "*":
            self.state, self._digits = HoldState.WAITING, ""
            await self._say(leg, self._policy.hold_resume_text)
        elif self.state is HoldState.CONFIRMING and digit == "1" and not self._digits:
            return await self._leave_callback(leg)
        elif digit == "#":
            if PHONE.fullmatch(self._digits):
                self._number, self._digits = self._digits, ""
                await self._confirm(leg)
            else:
                self._digits = ""
                await self._say(leg, self._policy.callback_number_text)
        elif digit.isdigit():
            self._digits += digit
        return None

    async def _on_words(self, leg: MediaLeg, text: str) -> Next | None:
        """What the caller said (or typed): the callback request, a dictated number, «да»."""
        said = words(text)
        if self.state is HoldState.WAITING:
            if any(word.startswith(CALLBACK_WORDS) for word in said):
                await self._offer_callback(leg)
            return None
        if self.state is HoldState.CONFIRMING and any(word in YES_WORDS for word in said):
            return await self._leave_callback(leg)
        digits = "".join(t for t in numbers_to_digits([lemma(w)[0] for w in said]) if t.isdigit())
        if PHONE.fullmatch(digits):
            self._number, self._digits = digits, ""
            await self._confirm(leg)
        return None

    async def _offer_callback(self, leg: MediaLeg) -> None:
        if self._number is None:
            self.state = HoldState.NUMBER
            await self._say(leg, self._policy.callback_number_text)
        else:
            await self._confirm(leg)

    async def _confirm(self, leg: MediaLeg) -> None:
        self.state = HoldState.CONFIRMING
        assert self._number is not None
        text = self._policy.callback_confirm_text.format(number=spoken_number(self._number))
        await self._say(leg, text)

    async def _leave_callback(self, leg: MediaLeg) -> Next:
        assert self._number is not None
        callback = await self._service.request_callback(leg.call_id, self._number)
        leg.post(ev.CallbackRequested(number=callback.number, queue=callback.queue))
        await self._say(leg, self._policy.callback_done_text, wait=True)
        return End(Ending(EndReason.CALLBACK))

    async def _announce_place(self, leg: MediaLeg) -> None:
        position = await self._service.position(leg.call_id)
        if position is None:
            return
        text = self._announce(position)
        leg.post(
            ev.QueuePlace(
                queue=position.queue,
                place=position.place,
                eta_seconds=position.eta_seconds,
                text=text,
            )
        )
        await self._say(leg, text)

    # ---- audio: announcements over the music ----------------------------------------------

    async def _say(self, leg: MediaLeg, text: str, *, wait: bool = False) -> None:
        """Speak `text` instead of the music, which comes back after it; `wait`: until it was
        heard, else only until it starts (the caller may press keys meanwhile)."""
        leg.post(ev.ReplyText(turn=len(leg.record.turns), text=text))
        for task in (self._speaking, self._music):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        leg.pacer.interrupt()  # what the cancelled speech had queued
        self._speaking = asyncio.create_task(self._speak(leg, text))
        if wait:
            await self._speaking

    async def _speak(self, leg: MediaLeg, text: str) -> None:
        rate = self._engines.tts_rate(leg.sample_rate)
        playback = leg.pacer.play(more=True)
        try:
            async for pcm in self._engines.speech.stream(text, rate):
                playback.feed(resample(pcm, rate, leg.sample_rate))
        except Exception as exc:  # the caller still hears the music and can press keys
            log.warning("hold_tts_failed", call_id=leg.call_id, error=str(exc))
        finally:
            playback.close()
        if await asyncio.shield(playback.done) == "finished":
            self._music = asyncio.create_task(play_music(leg.pacer))

    async def _open_listener(
        self, leg: MediaLeg, tasks: list[asyncio.Task[Any]]
    ) -> tuple[Listener, Callable[[], Awaitable[None]]] | None:
        """The recognizer hears «перезвоните мне» while the caller waits (when there is one)."""
        recognizer = self._engines.recognizer
        if recognizer is None:
            return None
        try:
            stream = await recognizer.open_stream(leg.sample_rate)
            if recognizer.describe().get("grammar") is not False:
                await stream.set_phrases(CALLBACK_PHRASES)
        except Exception as exc:  # keys still work
            log.warning("hold_asr_failed", call_id=leg.call_id, error=str(exc))
            return None

        def final(heard: Heard) -> None:
            self._heard.put_nowait(heard.text.lower())

        listener = Listener(stream, lambda _: None, final, leg.sample_rate)
        tasks.append(asyncio.create_task(listener.run()))
        return listener, stream.close
