"""One call, as a small explicit state machine, free of any transport.

    GREETING ─► LISTENING ─► THINKING ─► SPEAKING ─► LISTENING ─► …
                    │  ▲          │          │  (barge-in: back to LISTENING at once)
                    ▼  │          ▼          ▼
                 SPEAKING      TRANSFER   GOODBYE  ─► ENDED   (caller hangup: ENDED from anywhere)
                (reprompt)

A transport (WebSocket, AudioSocket) is a thin adapter: it turns its wire format into
`CallerInput` items and gives the call a `CallOutput` for events and 20 ms audio frames.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, Protocol

from services.asr.base import (
    ENDPOINT_DEFAULT,
    ENDPOINT_DICTATION,
    ENDPOINT_SHORT,
    RecognitionStream,
)
from services.common.audio import FRAME_MS, frame_bytes, resample
from services.common.logging import get_logger
from services.dialog.base import Expect, Reply
from services.gateway.call import events as ev
from services.gateway.call.listener import Heard, Listener
from services.gateway.call.pacer import Pacer
from services.gateway.call.policy import CallPolicy
from services.gateway.call.record import CallRecord, TurnRecord
from services.gateway.call.recording import Recorder
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


@dataclass(frozen=True)
class Audio:
    pcm: bytes


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Digit:
    digit: str


@dataclass(frozen=True)
class HangUp:
    reason: str = "caller_hangup"


CallerInput = Audio | Text | Digit | HangUp


class CallOutput(Protocol):
    idle_silence: bool  # keep sending silence frames while the bot is quiet (telephone peers)

    async def event(self, event: ev.Event) -> None: ...

    async def audio(self, frame: bytes) -> None: ...


def _ms(since: float) -> float:
    return round((time.monotonic() - since) * 1000, 1)


class Call:
    def __init__(
        self,
        *,
        call_id: str,
        caller_id: str,
        sample_rate: int,
        transport: str,
        engines: Engines,
        output: CallOutput,
        policy: CallPolicy,
    ) -> None:
        self.call_id, self.sample_rate = call_id, sample_rate
        self.record = CallRecord.begin(call_id, caller_id, transport, sample_rate)
        self.state = State.GREETING
        self.policy = policy
        self._engines, self._output = engines, output
        self._session = engines.dialog.new_session()
        self.pacer = Pacer(sample_rate, self._send_audio, idle_silence=output.idle_silence)
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
        self._echo: deque[float] = deque(maxlen=max(1, policy.echo_tail_ms // FRAME_MS))
        self._preroll: deque[bytes] = deque(
            maxlen=15
        )  # 300 ms of caller audio kept during playback
        self._inbuf = bytearray()
        self._turn_no = 0
        self._turn_task: asyncio.Task[None] | None = None
        self._ended = asyncio.Event()
        self._outq: asyncio.Queue[ev.Event | bytes] = asyncio.Queue()
        self._last_activity = time.monotonic()
        self._nomatch = self._reprompts = 0
        self._digits, self._digit_at = "", 0.0
        # What the dialog expects of the caller's next turn, and the recognizer's bias for it.
        self._expect: Expect | None = None
        self._bias: tuple[list[str] | None, str] = (None, "default")
        self._grammar = False  # the recognizer takes runtime grammars
        self._log = log.bind(call_id=call_id)
        self._recorder = Recorder(sample_rate) if policy.recordings_dir else None
        self._tts_rate = engines.tts_rate(sample_rate)

    # ---- lifecycle -------------------------------------------------------------------------

    async def run(self, inputs: AsyncIterator[CallerInput]) -> CallRecord:
        """Greet, then converse until either side hangs up; always cleans up everything."""
        writer = asyncio.create_task(self._write())
        tasks = [asyncio.create_task(self.pacer.run()), asyncio.create_task(self._watch())]
        try:
            await self._open_engines()
            if self._listener is not None:
                tasks.append(asyncio.create_task(self._listen(self._listener)))
            self._post(
                ev.Started(
                    call_id=self.call_id,
                    sample_rate=self.sample_rate,
                    frame_ms=FRAME_MS,
                    degraded=self._asr is None,
                    inputs=self.inputs,
                )
            )
            turn = self._new_turn("bot", "")
            await self._listen_for(self._session.expecting())
            if self._asr is None and self._output.idle_silence and self._engines.recognizer:
                # A phone caller can only speak and press keys: without recognition (overload,
                # failure) an operator serves them better than a bot that cannot hear.
                queue, notice = self.policy.operator_queue, self.policy.transfer_text
                self._begin(self._transfer(turn, queue, "asr_unavailable", notice))
            else:
                self._begin(self._say_then_listen(turn, self._session.greeting(), State.GREETING))
            tasks.append(asyncio.create_task(self._consume(inputs)))
            await self._ended.wait()
        finally:
            if self._turn_task:
                tasks.append(self._turn_task)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._asr is not None:
                await self._asr.close()
            if self._recorder is not None and self.policy.recordings_dir is not None:
                path = self.policy.recordings_dir / f"{self.call_id}.wav"
                self.record.recording = str(await asyncio.to_thread(self._recorder.save, path))
            stats = self.pacer.stats
            self.record.pacing = {
                "frames": stats.frames,
                "max_lag_ms": round(stats.max_lag_s * 1000, 2),
                "drift_ms": round(stats.drift_s * 1000, 2),
                "resyncs": stats.resyncs,
            }
            self._end(self.record.end_reason or "closed")
            self._post(ev.Hangup(outcome=self.record.outcome, reason=self.record.end_reason))
            if not writer.done():  # let the caller hear the verdict, but never wait on a dead peer
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._outq.join(), timeout=1.0)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        return self.record

    @property
    def inputs(self) -> list[str]:
        return ["audio", "text", "dtmf"] if self._asr is not None else ["text", "dtmf"]

    async def _open_engines(self) -> None:
        if self._engines.recognizer is not None:
            try:
                self._asr = await self._engines.recognizer.open_stream(self.sample_rate)
                self._listener = Listener(
                    self._asr, self._heard_partial, self._heard, self.sample_rate
                )
                self._grammar = self._engines.recognizer.describe().get("grammar") is not False
            except Exception as exc:  # one call degrades, the gateway stays up
                self._log.error("asr_stream_failed", error=str(exc))
                self._post(
                    ev.Error(code="asr_unavailable", message=f"speech recognition failed: {exc}")
                )
        self._vad = await self._engines.new_vad(self.sample_rate)

    def _end(self, reason: str) -> None:
        if self.state is not State.ENDED:
            self.state = State.ENDED
            self.record.end_reason = self.record.end_reason or reason
            self.record.ended_at = time.time()
            if self.record.outcome == "in_progress":
                answered = any(t.decision == "answer" for t in self.record.turns)
                self.record.outcome = "answered" if answered else "abandoned"
            self._log.info("call_ended", reason=self.record.end_reason, outcome=self.record.outcome)
        self._ended.set()

    def _set(self, state: State) -> None:
        if state is self.state or self.state is State.ENDED:
            return
        legal = state in (State.TRANSFER, State.GOODBYE, State.ENDED) and self.state in LIVE
        if not legal and state not in TRANSITIONS.get(self.state, set()):
            raise RuntimeError(f"illegal call transition {self.state} -> {state}")
        self.state = state
        self._post(ev.StateChanged(state=state.value))
        if state is State.LISTENING:
            self._last_activity = time.monotonic()

    # ---- caller input ----------------------------------------------------------------------

    async def _consume(self, inputs: AsyncIterator[CallerInput]) -> None:
        """Caller input is read as it arrives (timestamped) and handled in order; audio for the
        recognizer queues in the Listener, and a backlog there shows in the turn's latencies."""
        arrived: asyncio.Queue[tuple[float, CallerInput]] = asyncio.Queue()

        async def receive() -> None:
            try:
                async for item in inputs:
                    arrived.put_nowait((time.monotonic(), item))
                arrived.put_nowait((time.monotonic(), HangUp("caller_hangup")))
            except Exception as exc:
                self._log.warning("transport_failed", error=str(exc))
                arrived.put_nowait((time.monotonic(), HangUp(f"transport error: {exc}")))

        receiver = asyncio.create_task(receive())
        try:
            while True:
                received, item = await arrived.get()
                match item:
                    case Audio(pcm):
                        await self._on_audio(pcm, received)
                    case Text(text):
                        await self._on_text(text)
                    case Digit(digit):
                        await self._on_digit(digit)
                    case HangUp(reason):
                        self._end(reason)
                if self.state is State.ENDED:
                    return
        except Exception as exc:
            self._log.exception("call_failed")
            self._end(f"error: {exc}")
        finally:
            receiver.cancel()
            await asyncio.gather(receiver, return_exceptions=True)

    async def _on_audio(self, pcm: bytes, received: float) -> None:
        self._inbuf += pcm
        size = frame_bytes(self.sample_rate)
        while len(self._inbuf) >= size:
            frame = bytes(self._inbuf[:size])
            del self._inbuf[:size]
            await self._on_frame(frame, received)

    async def _on_frame(self, frame: bytes, received: float) -> None:
        if self._recorder is not None:
            self._recorder.heard(frame)
        prob = await self._vad.feed(frame) if self._vad else 0.0
        edges = self._tracker.update(prob, rms_dbfs(frame), self._echo_db())
        if edges.started:
            self._activity()
        if self.pacer.speaking or self.state in (State.TRANSFER, State.GOODBYE):
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
            self._end(f"error: {exc}")

    def _heard_partial(self, text: str) -> None:
        self._post(ev.Transcript(turn=self._turn_no + 1, text=text, final=False))

    def _heard(self, heard: Heard) -> None:
        self._caller_turn(heard.text, "voice", heard.speech_end, heard.steps)

    async def _maybe_barge_in(self, speech_started: bool) -> None:
        """Caller speech over the bot: pause at once (within the VAD's 120 ms); once it lasts
        `barge_in_confirm_ms` it is a barge-in, but a short "угу" or a cough falls silent first,
        and the bot carries on where it paused."""
        tracker = self._tracker
        if speech_started:
            self.pacer.pause()
        elif not self.pacer.paused:
            return
        elif tracker.speech_ms >= self.policy.barge_in_confirm_ms:
            await self._barge_in()
        elif tracker.silence_ms >= self.policy.barge_in_resume_ms:
            tracker.reset()
            self.pacer.resume()
            self.record.note({"type": "barge_in_ignored", "turn": self._turn_no})

    async def _barge_in(self) -> None:
        if not self.pacer.interrupt():
            return
        self.record.turns[-1].barged_in = True
        self._post(ev.BargeIn(turn=self._turn_no))
        self._set(State.LISTENING)
        preroll = b"".join(self._preroll)
        self._preroll.clear()
        if self._listener is not None and preroll:
            now = time.monotonic()
            self._listener.push(preroll, now, now)

    async def _on_text(self, text: str) -> None:
        if not text.strip():
            self._post(ev.Error(code="empty_text", message="text message has no text"))
            return
        self._activity()
        self._caller_turn(text.strip(), "text", time.monotonic())

    async def _on_digit(self, digit: str) -> None:
        self._activity()
        self._post(ev.Dtmf(digit=digit))
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
            self.pacer.interrupt()  # a keypress stops the prompt, as on any IVR
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
        self._post(ev.Transcript(turn=turn.turn, text=text, final=True, source=source))
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
            self.pacer.interrupt()
            self._turn_task.cancel()
        self._turn_task = asyncio.create_task(work)

    async def _respond(self, turn: TurnRecord, turn_end: float) -> None:
        self._set(State.THINKING)
        try:
            reply: Reply = await asyncio.to_thread(self._session.respond, turn.transcript)
        except Exception as exc:
            self._log.exception("dialog_failed")
            self._post(ev.Error(code="dialog_failed", message=str(exc)))
            await self._listen_for(None)
            self._set(State.LISTENING)
            return
        turn.latency_ms["matched"] = _ms(turn_end)
        self._nomatch = (
            self._nomatch + 1 if reply.intent is None and reply.decision != "handoff" else 0
        )
        if self._nomatch >= self.policy.max_nomatch:
            reply = reply.model_copy(
                update={
                    "decision": "handoff",
                    "handoff_queue": self.policy.operator_queue,
                    "handoff_reason": "no_match",
                    "answer": self.policy.transfer_text,
                }
            )
        speech = reply.answer
        turn.intent, turn.score, turn.decision, turn.reply, turn.slots = (
            reply.intent,
            reply.score,
            reply.decision,
            reply.answer,
            reply.slots,
        )
        self._post(
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
        self._post(ev.ReplyText(turn=turn.turn, text=reply.answer))
        if reply.decision == "handoff":
            queue = reply.handoff_queue or self.policy.operator_queue
            await self._transfer(turn, queue, reply.handoff_reason or "dialog", speech, turn_end)
        elif reply.end_call:
            await self._say(turn, speech, State.GOODBYE, turn_end)
            self._end("bot_goodbye")
        else:
            await self._say_then_listen(turn, speech, State.SPEAKING, turn_end)

    async def _transfer(
        self, turn: TurnRecord, queue: str, reason: str, text: str, turn_end: float | None = None
    ) -> None:
        self._set(State.TRANSFER)
        turn.decision = turn.decision or "handoff"
        self.record.outcome = "transferred"
        self.record.handoff_queue, self.record.handoff_reason = queue, reason
        self._post(ev.Handoff(queue=queue, reason=reason))
        await self._say(turn, text or self.policy.transfer_text, State.TRANSFER, turn_end)
        self._end("transfer")

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
            self._post(ev.ReplyText(turn=turn.turn, text=text))
        self._set(state)
        self._post(ev.Playback(turn=turn.turn, status="started"))
        playback = self.pacer.play(more=True)
        status = "interrupted"  # also when a newer turn cancels this one
        try:
            try:
                async for pcm in self._engines.speech.stream(text, self._tts_rate):
                    if turn_end is not None and "tts" not in turn.latency_ms:
                        turn.latency_ms["tts"] = _ms(turn_end)
                    playback.feed(resample(pcm, self._tts_rate, self.sample_rate))
            except Exception as exc:
                self._log.exception("tts_failed")
                self._post(ev.Error(code="tts_failed", message=str(exc)))
            playback.close()
            status = await asyncio.shield(playback.done)
        finally:
            if playback.first_frame_at is not None and turn_end is not None:
                latency = (playback.first_frame_at - turn_end) * 1000
                turn.latency_ms["first_frame"] = round(latency, 1)
            self._post(
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
        self._end("silence")

    def report_error(self, code: str, message: str) -> None:
        """A transport saw bad input: tell the caller's client and log it; the call goes on."""
        self._log.warning("bad_input", code=code, message=message)
        self._post(ev.Error(code=code, message=message))

    # ---- output ----------------------------------------------------------------------------

    def _echo_db(self) -> float | None:
        loud = [db for db in self._echo if db > -60]
        return max(loud) if loud else None

    async def _send_audio(self, frame: bytes) -> None:
        self._echo.append(rms_dbfs(frame) if self.pacer.speaking else -120.0)
        if self._recorder is not None:
            self._recorder.said(frame)
        self._outq.put_nowait(frame)

    def _post(self, event: ev.Event) -> None:
        self.record.note(event.model_dump(mode="json"))
        self._outq.put_nowait(event)

    async def _write(self) -> None:
        """The one writer: events and audio leave in the order they were produced."""
        while True:
            item = await self._outq.get()
            try:
                if isinstance(item, bytes):
                    await self._output.audio(item)
                else:
                    await self._output.event(item)
            except Exception:
                self._end("disconnect")
                return
            finally:
                self._outq.task_done()
