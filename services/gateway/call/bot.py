"""The bot's side of a call: a small explicit state machine driving the call's media leg.

    GREETING ─► LISTENING ─► THINKING ─► SPEAKING ─► LISTENING ─► …
                    │  ▲          │          │  (barge-in: back to LISTENING at once)
                    ▼  │          ▼          ▼
                 SPEAKING      TRANSFER   GOODBYE  ─► ENDED   (caller hangup: ENDED from anywhere)
                (reprompt)

TRANSFER hands the leg on to an operator queue (`ToQueue`); every other way out ends the call.
The leg (call/leg.py) brings the caller's input and carries the bot's voice and events.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from enum import StrEnum
from typing import Any, Literal

from services.asr.base import (
    ENDPOINT_DEFAULT,
    ENDPOINT_DICTATION,
    ENDPOINT_SHORT,
    RecognitionStream,
)
from services.common.audio import FRAME_MS, resample
from services.common.logging import get_logger
from services.dialog.base import DialogSession, Expect, Reason, Reply
from services.gateway.call import events as ev
from services.gateway.call.leg import Audio, Digit, HangUp, MediaLeg, Text
from services.gateway.call.listener import Heard, Listener
from services.gateway.call.party import End, Ending, EndReason, Next, ToQueue
from services.gateway.call.policy import CallPolicy
from services.gateway.call.record import CallRecord, TurnRecord
from services.gateway.call.vad import SpeechTracker, rms_dbfs
from services.gateway.engines import Engines

log = get_logger("gateway.call")
Source = Literal["voice", "text", "dtmf"]
ENDPOINTING = {
    "short": ENDPOINT_SHORT,
    "default": ENDPOINT_DEFAULT,
    "dictation": ENDPOINT_DICTATION,
}


class State(StrEnum):
    GREETING = "greeting"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    TRANSFER = "transfer"
    GOODBYE = "goodbye"
    ENDED = "ended"


LIVE = {State.GREETING, State.LISTENING, State.THINKING, State.SPEAKING}
# Every legal move between live states; any live state may also go to TRANSFER or GOODBYE, and
# every state to ENDED (the caller can hang up at any moment).
TRANSITIONS: dict[State, set[State]] = {
    State.GREETING: {State.LISTENING, State.THINKING},
    State.LISTENING: {State.THINKING, State.SPEAKING},
    State.THINKING: {State.SPEAKING, State.LISTENING, State.THINKING},
    State.SPEAKING: {State.LISTENING, State.THINKING},
}


Enqueue = Callable[[MediaLeg, str], Awaitable[bool]]


def _ms(since: float) -> float:
    return round((time.monotonic() - since) * 1000, 1)


class BotParty:
    def __init__(
        self,
        engines: Engines,
        policy: CallPolicy,
        *,
        session: DialogSession | None = None,
        opening: str | None = None,
        enqueue: Enqueue | None = None,
    ) -> None:
        """`session`/`opening`: an operator hands the caller back to the bot, which carries on
        the same conversation and says `opening` instead of the greeting. `enqueue`: puts the
        caller in a queue at the handoff decision (True when done), before the notice."""
        self.state = State.GREETING
        self.policy = policy
        self._engines = engines
        self.session = session or engines.dialog.new_session()
        self._opening = opening
        self._enqueue = enqueue
        self._asr: RecognitionStream | None = None
        self._listener: Listener | None = None
        self._vad = None
        self._tracker = SpeechTracker(
            threshold=policy.vad_threshold,
            threshold_speaking=policy.vad_threshold_speaking,
            min_speech_ms=policy.barge_in_min_speech_ms,
            endpoint_ms=policy.endpoint_silence_ms,
            echo_ratio=policy.echo_ratio,
        )
        self._preroll: deque[bytes] = deque(
            maxlen=15
        )  # 300 ms of caller audio kept during playback
        self._turn_no = 0
        self._turn_task: asyncio.Task[None] | None = None
        self._done: asyncio.Future[Next] | None = None
        self._last_activity = time.monotonic()
        self._nomatch = self._reprompts = 0
        self._digits, self._digit_at = "", 0.0
        # What the dialog expects of the caller's next turn, and the recognizer's bias for it.
        self._expect: Expect | None = None
        self._bias: tuple[list[str] | None, str] = (None, "default")
        self._grammar = False  # the recognizer takes runtime grammars
        self._leg: MediaLeg | None = None
        self._log = log
        self._tts_rate = 0

    @property
    def leg(self) -> MediaLeg:
        assert self._leg is not None, "the bot drives no leg yet"
        return self._leg

    @property
    def record(self) -> CallRecord:
        return self.leg.record

    # ---- lifecycle -------------------------------------------------------------------------

    async def run(self, leg: MediaLeg) -> Next:
        """Greet, then converse until the caller hangs up, the bot ends the call or hands it on;
        always cleans up everything of its own (the leg carries on)."""
        self._leg, self._done = leg, asyncio.get_running_loop().create_future()
        self._log = log.bind(call_id=leg.call_id)
        self._tts_rate = self._engines.tts_rate(leg.sample_rate)
        self._turn_no = self.record.turns[-1].turn if self.record.turns else 0
        tasks = [asyncio.create_task(self._watch())]
        try:
            await self._open_engines()
            if self._listener is not None:
                tasks.append(asyncio.create_task(self._listen(self._listener)))
            if self._opening is None:
                leg.post(
                    ev.Started(
                        call_id=leg.call_id,
                        sample_rate=leg.sample_rate,
                        frame_ms=FRAME_MS,
                        degraded=self._asr is None,
                        inputs=self.inputs,
                    )
                )
            turn = self._new_turn("bot", "")
            await self._listen_for(self.session.expecting())
            if self._asr is None and leg.idle_silence and self._engines.recognizer:
                # A phone caller can only speak and press keys: without recognition (overload,
                # failure) an operator serves them better than a bot that cannot hear.
                queue, notice = self.policy.operator_queue, self.policy.transfer_text
                self._begin(self._transfer(turn, queue, "asr_unavailable", notice))
            else:
                opening = self._opening or self.session.greeting()
                self._begin(self._say_then_listen(turn, opening, State.GREETING))
            tasks.append(asyncio.create_task(self._consume()))
            return await self._done
        finally:
            if self._turn_task:
                tasks.append(self._turn_task)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._asr is not None:
                await self._asr.close()
            self.state = State.ENDED

    @property
    def inputs(self) -> list[str]:
        return ["audio", "text", "dtmf"] if self._asr is not None else ["text", "dtmf"]

    async def _open_engines(self) -> None:
        if self._engines.recognizer is not None:
            try:
                self._asr = await self._engines.recognizer.open_stream(self.leg.sample_rate)
                self._listener = Listener(
                    self._asr, self._heard_partial, self._heard, self.leg.sample_rate
                )
                self._grammar = self._engines.recognizer.describe().get("grammar") is not False
            except Exception as exc:  # one call degrades, the gateway stays up
                self._log.error("asr_stream_failed", error=str(exc))
                self.leg.post(
                    ev.Error(code="asr_unavailable", message=f"speech recognition failed: {exc}")
                )
        self._vad = await self._engines.new_vad(self.leg.sample_rate)

    def _finish(self, handed: Next) -> None:
        """The bot is done with the caller: the first way out wins."""
        self.state = State.ENDED
        if self._done is not None and not self._done.done():
            self._done.set_result(handed)

    def _end(self, reason: EndReason, detail: str = "") -> None:
        self._finish(End(Ending(reason, detail)))

    def _set(self, state: State) -> None:
        if state is self.state or self.state is State.ENDED:
            return
        legal = state in (State.TRANSFER, State.GOODBYE, State.ENDED) and self.state in LIVE
        if not legal and state not in TRANSITIONS.get(self.state, set()):
            raise RuntimeError(f"illegal call transition {self.state} -> {state}")
        self.state = state
        self.leg.post(ev.StateChanged(state=state.value))
        if state is State.LISTENING:
            self._last_activity = time.monotonic()

    # ---- caller input ----------------------------------------------------------------------

    async def _consume(self) -> None:
        """Caller input in the order it arrived; audio for the recognizer queues in the
        Listener, and a backlog there shows in the turn's latencies."""
        try:
            while self._done is not None and not self._done.done():
                received, item = await self.leg.receive()
                match item:
                    case Audio(pcm):
                        await self._on_frame(pcm, received)
                    case Text(text):
                        await self._on_text(text)
                    case Digit(digit):
                        await self._on_digit(digit)
                    case HangUp(ending):
                        self._finish(End(ending))
        except Exception as exc:
            self._log.exception("call_failed")
            self._end(EndReason.ERROR, f"error: {exc}")

    async def _on_frame(self, frame: bytes, received: float) -> None:
        prob = await self._vad.feed(frame) if self._vad else 0.0
        edges = self._tracker.update(prob, rms_dbfs(frame), self.leg.echo_db())
        if edges.started:
            self._activity()
        if self.leg.pacer.speaking or self.state in (State.TRANSFER, State.GOODBYE):
            self._preroll.append(frame)
            if self.policy.barge_in and self.state in (State.GREETING, State.SPEAKING):
                await self._maybe_barge_in(edges.started)
            return
        if self._listener is not None:
            speech_end = received - self._tracker.silence_ms / 1000  # when the caller went quiet
            self._listener.push(frame, received, speech_end, edges.ended)

    async def _listen(self, listener: Listener) -> None:
        try:
            await listener.run()
        except Exception as exc:  # the recognizer failed: this call ends, the gateway goes on
            self._log.exception("asr_failed")
            self._end(EndReason.ERROR, f"error: {exc}")

    def _heard_partial(self, text: str) -> None:
        self.leg.post(ev.Transcript(turn=self._turn_no + 1, text=text, final=False))

    def _heard(self, heard: Heard) -> None:
        self._caller_turn(heard.text, "voice", heard.speech_end, heard.steps)

    async def _maybe_barge_in(self, speech_started: bool) -> None:
        """Caller speech over the bot: pause at once (within the VAD's 120 ms); once it lasts
        `barge_in_confirm_ms` it is a barge-in, but a short "угу" or a cough falls silent first,
        and the bot carries on where it paused."""
        tracker = self._tracker
        if speech_started:
            self.leg.pacer.pause()
        elif not self.leg.pacer.paused:
            return
        elif tracker.speech_ms >= self.policy.barge_in_confirm_ms:
            await self._barge_in()
        elif tracker.silence_ms >= self.policy.barge_in_resume_ms:
            tracker.reset()
            self.leg.pacer.resume()
            self.record.note({"type": "barge_in_ignored", "turn": self._turn_no})

    async def _barge_in(self) -> None:
        if not self.leg.pacer.interrupt():
            return
        self.record.turns[-1].barged_in = True
        self.leg.post(ev.BargeIn(turn=self._turn_no))
        self._set(State.LISTENING)
        preroll = b"".join(self._preroll)
        self._preroll.clear()
        if self._listener is not None and preroll:
            now = time.monotonic()
            self._listener.push(preroll, now, now)

    async def _on_text(self, text: str) -> None:
        if not text.strip():
            self.leg.post(ev.Error(code="empty_text", message="text message has no text"))
            return
        self._activity()
        self._caller_turn(text.strip(), "text", time.monotonic())

    async def _on_digit(self, digit: str) -> None:
        self._activity()
        self.leg.post(ev.Dtmf(digit=digit))
        expect = self._expect
        keying_number = expect is not None and expect.kind == "digits"  # "0" is a digit then
        if digit in self.policy.transfer_digits and not (keying_number and digit.isdigit()):
            turn = self._new_turn("dtmf", digit)
            self._begin(
                self._transfer(turn, self.policy.operator_queue, "dtmf", self.policy.transfer_text)
            )
        elif digit == "#":
            self._flush_digits()
        else:
            self.leg.pacer.interrupt()  # a keypress stops the prompt, as on any IVR
            self._digits += digit
            self._digit_at = time.monotonic()
            limit = expect.dtmf_max_length if expect else None
            if limit and len(self._digits) >= limit:  # a menu key or a full code: no waiting
                self._flush_digits()

    def _flush_digits(self) -> None:
        digits, self._digits = self._digits, ""
        if digits:
            self._caller_turn(digits, "dtmf", time.monotonic())

    def _activity(self) -> None:
        self._last_activity = time.monotonic()
        self._reprompts = 0

    def _caller_turn(
        self, text: str, source: Source, turn_end: float, steps: dict[str, float] | None = None
    ) -> None:
        """`steps`: ms spent on endpointing and the ASR final, for voice turns."""
        if self.state not in LIVE:
            return
        turn = self._new_turn(source, text)
        turn.expect, self._expect = self._expect, None  # it applied to this turn only
        turn.latency_ms.update(steps or {})
        self.leg.post(ev.Transcript(turn=turn.turn, text=text, final=True, source=source))
        self._begin(self._respond(turn, turn_end))

    async def _listen_for(self, expect: Expect | None) -> None:
        """Prepare for the caller's next turn only: when a key entry is complete, and the
        recognizer's grammar and endpointing (back to the full model and defaults after)."""
        self._expect = expect
        phrases = expect.phrases if expect else None
        preset = expect.endpointing if expect else "default"
        endpointing = ENDPOINTING[preset]
        # Our VAD also ends turns: its silence scales with the preset (the policy's is default).
        self._tracker.endpoint_ms = round(
            self.policy.endpoint_silence_ms * endpointing.silence_ms / ENDPOINT_DEFAULT.silence_ms
        )
        if self._asr is None or (phrases, preset) == self._bias:
            return
        try:
            if self._grammar and phrases != self._bias[0]:
                await self._asr.set_phrases(phrases)
            if preset != self._bias[1]:
                await self._asr.set_endpointing(endpointing)
        except Exception as exc:  # a recognizer that cannot be biased still hears the caller
            self._log.warning("asr_bias_failed", error=str(exc))
        self._bias = (phrases, preset)

    # ---- the bot's side of a turn ----------------------------------------------------------

    def _new_turn(self, source: Source | Literal["bot"], transcript: str) -> TurnRecord:
        self._turn_no += 1 if self.record.turns else 0
        turn = TurnRecord(turn=self._turn_no, source=source, transcript=transcript)
        self.record.turns.append(turn)
        return turn

    def _begin(self, work: Coroutine[Any, Any, None]) -> None:
        """Start the bot's answer; a newer caller turn supersedes one still thinking or speaking."""
        if self.state not in LIVE:
            work.close()
            return
        if self._turn_task and not self._turn_task.done():
            self.leg.pacer.interrupt()
            self._turn_task.cancel()
        self._turn_task = asyncio.create_task(work)

    async def _respond(self, turn: TurnRecord, turn_end: float) -> None:
        self._set(State.THINKING)
        try:
            reply: Reply = await asyncio.to_thread(self.session.respond, turn.transcript)
        except Exception as exc:
            self._log.exception("dialog_failed")
            self.leg.post(ev.Error(code="dialog_failed", message=str(exc)))
            await self._listen_for(None)
            self._set(State.LISTENING)
            return
        turn.latency_ms["matched"] = _ms(turn_end)
        # The dialog asks to rephrase what it did not understand; the policy's limit of such
        # turns in a row is kept here, and the last of them goes to an operator instead.
        self._nomatch = self._nomatch + 1 if reply.reason is Reason.NOT_UNDERSTOOD else 0
        handoff_reason: str = reply.reason or "dialog"
        if self._nomatch >= self.policy.max_nomatch:
            reply = reply.model_copy(
                update={
                    "decision": "handoff",
                    "handoff_queue": self.policy.operator_queue,
                    "answer": self.policy.transfer_text,
                }
            )
            handoff_reason = "no_match"
        speech = reply.answer
        turn.intent, turn.score, turn.decision, turn.reply, turn.slots = (
            reply.intent,
            reply.score,
            reply.decision,
            reply.answer,
            reply.slots,
        )
        self.leg.post(
            ev.Intent(
                turn=turn.turn,
                intent=reply.intent,
                score=reply.score,
                decision=reply.decision,
                alternatives=reply.alternatives,
                slots=reply.slots,
                expect=reply.expect,
            )
        )
        await self._listen_for(reply.expect)  # set while the bot speaks, ready when it stops
        self.leg.post(ev.ReplyText(turn=turn.turn, text=reply.answer))
        if reply.decision == "handoff":
            queue = reply.handoff_queue or self.policy.operator_queue
            self.record.handoff_skill = reply.handoff_skill
            await self._transfer(turn, queue, handoff_reason, speech, turn_end)
        elif reply.end_call:
            await self._say(turn, speech, State.GOODBYE, turn_end)
            self._end(EndReason.BOT_GOODBYE)
        else:
            await self._say_then_listen(turn, speech, State.SPEAKING, turn_end)

    async def _transfer(
        self, turn: TurnRecord, queue: str, reason: str, text: str, turn_end: float | None = None
    ) -> None:
        self._set(State.TRANSFER)
        turn.decision = turn.decision or "handoff"
        self.record.outcome = "transferred"
        self.record.handoff_queue, self.record.handoff_reason = queue, reason
        self.leg.post(ev.Handoff(queue=queue, reason=reason))
        enqueued = False
        if self._enqueue is not None:  # in line now: an operator is offered it during the notice
            try:
                enqueued = await self._enqueue(self.leg, queue)
            except Exception as exc:  # the hold party tries again
                self._log.warning("enqueue_failed", error=str(exc))
        await self._say(turn, text or self.policy.transfer_text, State.TRANSFER, turn_end)
        self._finish(ToQueue(queue, reason, enqueued=enqueued))

    async def _say_then_listen(
        self, turn: TurnRecord, text: str, state: State, turn_end: float | None = None
    ) -> None:
        if await self._say(turn, text, state, turn_end) == "finished":
            self._set(State.LISTENING)

    async def _say(self, turn: TurnRecord, text: str, state: State, turn_end: float | None) -> str:
        """Speak `text` sentence by sentence as it renders; wait until it was played ("finished")
        or cut off ("interrupted")."""
        if not turn.reply:  # the bot speaks on its own: greeting, reprompt, transfer notice
            turn.reply = text
            self.leg.post(ev.ReplyText(turn=turn.turn, text=text))
        self._set(state)
        self.leg.post(ev.Playback(turn=turn.turn, status="started"))
        playback = self.leg.pacer.play(more=True)
        status = "interrupted"  # also when a newer turn cancels this one
        try:
            try:
                async for pcm in self._engines.speech.stream(text, self._tts_rate):
                    if turn_end is not None and "tts" not in turn.latency_ms:
                        turn.latency_ms["tts"] = _ms(turn_end)
                    playback.feed(resample(pcm, self._tts_rate, self.leg.sample_rate))
            except Exception as exc:
                self._log.exception("tts_failed")
                self.leg.post(ev.Error(code="tts_failed", message=str(exc)))
            playback.close()
            status = await asyncio.shield(playback.done)
        finally:
            if playback.first_frame_at is not None and turn_end is not None:
                latency = (playback.first_frame_at - turn_end) * 1000
                turn.latency_ms["first_frame"] = round(latency, 1)
            self.leg.post(
                ev.Playback(turn=turn.turn, status=status, duration_ms=playback.duration_ms)  # type: ignore[arg-type]
            )
        return status

    # ---- timers: silence, DTMF entry -------------------------------------------------------

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            if self._digits and now - self._digit_at >= self.policy.dtmf_interdigit_s:
                self._flush_digits()
            quiet = now - self._last_activity >= self.policy.silence_timeout_s
            if (
                self.state is State.LISTENING
                and quiet
                and not self._tracker.in_speech
                and not (self._listener and self._listener.partial)
            ):
                self._reprompts += 1
                self._last_activity = now
                turn = self._new_turn("bot", "")
                if self._reprompts <= self.policy.max_reprompts:
                    self._begin(
                        self._say_then_listen(turn, self.policy.reprompt_text, State.SPEAKING)
                    )
                elif self.policy.silence_action == "transfer":
                    self._begin(
                        self._transfer(
                            turn, self.policy.operator_queue, "silence", self.policy.transfer_text
                        )
                    )
                else:
                    self._begin(self._goodbye(turn))

    async def _goodbye(self, turn: TurnRecord) -> None:
        await self._say(turn, self.policy.goodbye_text, State.GOODBYE, None)
        self._end(EndReason.SILENCE)
