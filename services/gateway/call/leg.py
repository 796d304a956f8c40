"""A call's media leg: the transport's input and output and the 20 ms pacer, for the whole call.

The transport adapter (WebSocket, AudioSocket) makes one leg per connection and runs it; the
leg hands itself to the parties in turn (bot, hold, operator bridge: call/party.py) and outlives
each of them. It reads the transport from the start, timestamps every input and cuts caller
audio into 20 ms frames; a party reads them with `receive()` and speaks through `pacer`. Events
and audio leave through one writer in the order they were produced, and the leg keeps the call
record, the recording and the echo estimate whoever talks.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from services.common.audio import FRAME_MS, frame_bytes
from services.common.logging import get_logger
from services.gateway.call import events as ev
from services.gateway.call.pacer import Pacer
from services.gateway.call.party import End, Ending, EndReason, Party, Switchboard
from services.gateway.call.policy import CallPolicy
from services.gateway.call.record import CallRecord
from services.gateway.call.recording import Recorder
from services.gateway.call.vad import rms_dbfs

log = get_logger("gateway.call")


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
    ending: Ending = field(default_factory=lambda: Ending(EndReason.CALLER_HANGUP))


CallerInput = Audio | Text | Digit | HangUp


class CallOutput(Protocol):
    idle_silence: bool  # keep sending silence frames while nobody speaks (telephone peers)

    async def event(self, event: ev.Event) -> None: ...

    async def audio(self, frame: bytes) -> None: ...


class MediaLeg:
    def __init__(
        self,
        *,
        call_id: str,
        caller_id: str,
        sample_rate: int,
        transport: str,
        output: CallOutput,
        policy: CallPolicy,
    ) -> None:
        self.call_id, self.sample_rate, self.transport = call_id, sample_rate, transport
        self.record = CallRecord.begin(call_id, caller_id, transport, sample_rate)
        self.idle_silence = output.idle_silence
        self.pacer = Pacer(sample_rate, self._send_audio, idle_silence=output.idle_silence)
        self.party: Party | None = None  # who drives the leg now
        self.ending: Ending | None = None
        self._output, self._policy = output, policy
        self._arrived: asyncio.Queue[tuple[float, CallerInput]] = asyncio.Queue()
        self._frames: deque[tuple[float, CallerInput]] = deque()
        self._inbuf = bytearray()
        self._gone: HangUp | None = None
        self._outq: asyncio.Queue[ev.Event | bytes] = asyncio.Queue()
        self._echo: deque[float] = deque(maxlen=max(1, policy.echo_tail_ms // FRAME_MS))
        self._recorder = Recorder(sample_rate) if policy.recordings_dir else None

    async def run(
        self, inputs: AsyncIterator[CallerInput], first: Party, switchboard: Switchboard
    ) -> CallRecord:
        """Hand the leg from party to party until the call ends; always cleans up everything."""
        writer = asyncio.create_task(self._write())
        tasks = [asyncio.create_task(self.pacer.run()), asyncio.create_task(self._read(inputs))]
        ending = Ending(EndReason.CLOSED)
        try:
            party: Party | End = first
            while not isinstance(party, End):
                self.party = party
                handed = await party.run(self)
                party = handed if isinstance(handed, End) else switchboard.next_party(self, handed)
            ending = party.ending
        except Exception as exc:
            log.exception("call_failed", call_id=self.call_id)
            ending = Ending(EndReason.ERROR, f"error: {exc}")
        finally:
            self.party = None
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            if self._recorder is not None and self._policy.recordings_dir is not None:
                path = self._policy.recordings_dir / f"{self.call_id}.wav"
                self.record.recording = str(await asyncio.to_thread(self._recorder.save, path))
            stats = self.pacer.stats
            self.record.pacing = {
                "frames": stats.frames,
                "max_lag_ms": round(stats.max_lag_s * 1000, 2),
                "drift_ms": round(stats.drift_s * 1000, 2),
                "resyncs": stats.resyncs,
            }
            self._finish(ending)
            self.post(ev.Hangup(outcome=self.record.outcome, reason=self.record.end_reason))
            if not writer.done():  # let the caller hear the verdict, but never wait on a dead peer
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._outq.join(), timeout=1.0)
            writer.cancel()
            await asyncio.gather(writer, return_exceptions=True)
        return self.record

    def _finish(self, ending: Ending) -> None:
        self.ending = ending
        self.record.end_reason = self.record.end_reason or ending.text
        self.record.ended_at = time.time()
        if self.record.outcome == "in_progress":
            answered = any(t.decision == "answer" for t in self.record.turns)
            self.record.outcome = "answered" if answered else "abandoned"
        log.info(
            "call_ended",
            call_id=self.call_id,
            reason=self.record.end_reason,
            outcome=self.record.outcome,
        )

    # ---- caller input ----------------------------------------------------------------------

    async def _read(self, inputs: AsyncIterator[CallerInput]) -> None:
        """The transport is read as it arrives (timestamped) whoever drives the leg; a backlog
        in a party shows in its latencies, not as a stalled transport."""
        try:
            async for item in inputs:
                self._arrived.put_nowait((time.monotonic(), item))
            self._arrived.put_nowait((time.monotonic(), HangUp()))
        except Exception as exc:
            log.warning("transport_failed", call_id=self.call_id, error=str(exc))
            ending = Ending(EndReason.PEER_GONE, f"transport error: {exc}")
            self._arrived.put_nowait((time.monotonic(), HangUp(ending)))

    async def receive(self) -> tuple[float, CallerInput]:
        """The next caller input and when it arrived; audio in 20 ms frames. After a hangup,
        the hangup again."""
        while not self._frames:
            if self._gone is not None:
                return time.monotonic(), self._gone
            received, item = await self._arrived.get()
            if isinstance(item, Audio):
                self._cut(item.pcm, received)
                continue
            if isinstance(item, HangUp):
                self._gone = self._gone or item
                return received, self._gone
            return received, item
        received, item = self._frames.popleft()
        if self._recorder is not None and isinstance(item, Audio):
            self._recorder.heard(item.pcm)
        return received, item

    def _cut(self, pcm: bytes, received: float) -> None:
        self._inbuf += pcm
        size = frame_bytes(self.sample_rate)
        while len(self._inbuf) >= size:
            self._frames.append((received, Audio(bytes(self._inbuf[:size]))))
            del self._inbuf[:size]

    def report_error(self, code: str, message: str) -> None:
        """A transport saw bad input: tell the caller's client and log it; the call goes on."""
        log.warning("bad_input", call_id=self.call_id, code=code, message=message)
        self.post(ev.Error(code=code, message=message))

    # ---- output ----------------------------------------------------------------------------

    def echo_db(self) -> float | None:
        """The loudest of our own recent frames: caller audio well below it is their echo."""
        loud = [db for db in self._echo if db > -60]
        return max(loud) if loud else None

    async def _send_audio(self, frame: bytes) -> None:
        self._echo.append(rms_dbfs(frame) if self.pacer.speaking else -120.0)
        if self._recorder is not None:
            self._recorder.said(frame)
        self._outq.put_nowait(frame)

    def post(self, event: ev.Event) -> None:
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
                self._lost(Ending(EndReason.DISCONNECT))
                return
            finally:
                self._outq.task_done()

    def _lost(self, ending: Ending) -> None:
        if self._gone is None:
            self._gone = HangUp(ending)
            self._arrived.put_nowait((time.monotonic(), self._gone))  # wake a waiting party
