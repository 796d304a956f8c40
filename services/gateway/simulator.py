"""The caller simulator behind `voicebot call`: plays caller turns into the bot in real time.

A caller's line carries audio all the time, so while a call is up the simulator sends 20 ms
frames against a monotonic clock: the caller's WAV when it speaks, silence otherwise (the bot's
endpointer needs the trailing silence, as on a real phone). Per turn it reports what the bot
heard, the intent and decision, the reply, and the latency from the end of the caller's turn to
the first reply audio frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import httpx
import websockets

from services.common.audio import FRAME_MS, frame_bytes, read_wav, split_frames
from services.gateway.audiosocket.protocol import (
    AUDIO_KINDS,
    FrameDecoder,
    Kind,
    audio_frame,
    dtmf_frame,
    uuid_frame,
)

TurnKind = Literal["wav", "text", "dtmf", "silence"]
BARGE_IN_AFTER_S = 0.6  # a barging caller starts this long after the bot began its reply


@dataclass
class Turn:
    kind: TurnKind
    value: str  # WAV path, typed text, DTMF digits, or seconds of silence
    barge_in: bool = False  # start while the bot is still speaking
    pause_s: float = 0.0  # the caller thinks this long before the turn, as people do

    @property
    def label(self) -> str:
        return f"{self.kind}: {Path(self.value).name if self.kind == 'wav' else self.value}"


@dataclass
class TurnResult:
    turn: Turn
    heard: str = ""
    partials: list[str] = field(default_factory=list)
    intent: str | None = None
    score: float | None = None
    decision: str | None = None
    reply: str = ""
    latency_ms: float | None = None  # end of caller turn -> first reply audio frame
    reply_audio: bytes = b""
    playback: str = ""  # finished | interrupted | "" (no reply)
    barged_in: bool = False
    speech_started: float | None = None  # when the caller's first speech frame went out
    bot_stopped: float | None = None  # barge-in: when the bot's audio stopped arriving


@dataclass
class CallResult:
    call_id: str = ""
    greeting: str = ""
    turns: list[TurnResult] = field(default_factory=list)
    handoff: dict[str, Any] | None = None
    hangup: dict[str, Any] | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    record: dict[str, Any] | None = None


class _Line:
    """The caller's side of the audio: real-time 20 ms frames, speech when queued, else silence."""

    def __init__(self, send: Callable[[bytes], Any], sample_rate: int) -> None:
        self._send, self._rate = send, sample_rate
        self._queue: deque[bytes] = deque()
        self.idle = asyncio.Event()
        self.idle.set()
        self.first_speech_sent = self.last_speech_sent = 0.0

    def speak(self, pcm: bytes) -> None:
        self._queue.extend(split_frames(pcm, self._rate))
        self.idle.clear()
        self.first_speech_sent = 0.0

    async def run(self) -> None:
        try:
            await self._run()
        finally:  # the bot hung up or the line broke: nobody waits for speech to be sent
            self._queue.clear()
            self.idle.set()

    async def _run(self) -> None:
        silence = b"\0" * frame_bytes(self._rate)
        start, n = time.monotonic(), 0
        while True:
            delay = start + n * FRAME_MS / 1000 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            if self._queue:
                await self._send(self._queue.popleft())
                self.first_speech_sent = self.first_speech_sent or time.monotonic()
                if not self._queue:
                    self.last_speech_sent = time.monotonic()
                    self.idle.set()
            else:
                await self._send(silence)
            n += 1


class WebSocketCaller:
    """One call over the `/call` WebSocket."""

    def __init__(
        self,
        url: str,
        sample_rate: int = 16000,
        caller_id: str = "simulator",
        timeout_s: float = 30.0,
    ) -> None:
        self.url, self.sample_rate, self.caller_id, self.timeout_s = (
            url,
            sample_rate,
            caller_id,
            timeout_s,
        )
        self.result = CallResult()
        self._events: list[tuple[float, dict[str, Any]]] = []
        self._frames: list[tuple[float, bytes]] = []
        self._changed = asyncio.Event()
        self._closed = False

    async def run(self, turns: list[Turn], *, audio_line: bool | None = None) -> CallResult:
        line_needed = any(t.kind in ("wav", "silence") or t.barge_in for t in turns)
        async with websockets.connect(self.url, max_size=2**22) as ws:
            await ws.send(
                json.dumps(
                    {
                        "type": "start",
                        "caller_id": self.caller_id,
                        "sample_rate": self.sample_rate,
                        "format": "pcm_s16le",
                    }
                )
            )
            reader = asyncio.create_task(self._read(ws))
            line = _Line(ws.send, self.sample_rate)
            line_task = asyncio.create_task(line.run()) if (audio_line or line_needed) else None
            try:
                started = await self._wait(lambda e: e["type"] in ("started", "error"))
                self.result.call_id = started.get("call_id", "")
                if started["type"] == "error":
                    return self.result
                greeting_done = not turns or not turns[0].barge_in
                self.result.greeting = (await self._turn_outcome(0, wait_end=greeting_done)).reply
                for n, turn in enumerate(turns):
                    if self._closed:
                        break
                    barged = n + 1 < len(turns) and turns[n + 1].barge_in
                    self.result.turns.append(await self._play(ws, line, turn, not barged))
                if not self._closed:
                    await ws.send(json.dumps({"type": "hangup"}))
                    await self._wait(lambda e: e["type"] == "hangup", timeout=5)
            finally:
                for task in (line_task, reader):
                    if task:
                        task.cancel()
                await asyncio.gather(*(t for t in (line_task, reader) if t), return_exceptions=True)
        self.result.events = [e for _, e in self._events]
        self.result.record = await fetch_record(self.url, self.result.call_id)
        return self.result

    async def _read(self, ws: websockets.ClientConnection) -> None:
        try:
            async for message in ws:
                now = time.monotonic()
                if isinstance(message, bytes):
                    self._frames.append((now, message))
                else:
                    event = json.loads(message)
                    self._events.append((now, event))
                    if event["type"] == "handoff":
                        self.result.handoff = event
                    elif event["type"] == "hangup":
                        self.result.hangup = event
                    elif event["type"] == "error":
                        self.result.errors.append(event)
                self._changed.set()
        finally:
            self._closed = True
            self._changed.set()

    async def _wait(
        self,
        pred: Callable[[dict[str, Any]], bool],
        since: float = 0.0,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + (timeout or self.timeout_s)
        while True:
            for t, event in self._events:
                if t >= since and pred(event):
                    return event
            if self._closed:
                raise ConnectionError("the bot closed the call")
            self._changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("no reply from the bot in time")
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                continue

    async def _play(
        self, ws: websockets.ClientConnection, line: _Line, turn: Turn, wait_end: bool = True
    ) -> TurnResult:
        result = TurnResult(turn)
        if not turn.barge_in:  # a polite caller waits until the bot stopped talking
            await self._quiet()
        await asyncio.sleep(turn.pause_s)
        start = time.monotonic()
        if turn.kind == "wav":
            pcm, _ = read_wav(turn.value, self.sample_rate)
            line.speak(pcm)
            await line.idle.wait()
            end = line.last_speech_sent
        elif turn.kind == "text":
            await ws.send(json.dumps({"type": "text", "text": turn.value}))
            end = time.monotonic()
        elif turn.kind == "dtmf":
            for digit in turn.value:
                await ws.send(json.dumps({"type": "dtmf", "digit": digit}))
                await asyncio.sleep(0.1)
            end = time.monotonic()
        else:
            await asyncio.sleep(float(turn.value))
            end = time.monotonic()
        try:
            final = await self._wait(
                lambda e: (
                    (e["type"] == "transcript" and e["final"]) or e["type"] in ("handoff", "hangup")
                ),
                since=start,
            )
        except (TimeoutError, ConnectionError):
            if turn.kind != "silence":
                raise
            final = await self._wait(lambda e: e["type"] == "playback", since=start)
        result.barged_in = any(e["type"] == "barge_in" for t, e in self._events if t >= start)
        result.partials = [
            e["text"]
            for t, e in self._events
            if t >= start and e["type"] == "transcript" and not e["final"]
        ]
        turn_no = final.get("turn")
        if turn_no is None:  # DTMF transfer: the reply is the transfer notice of the newest turn
            turn_no = max(
                (
                    e.get("turn", 0)
                    for t, e in self._events
                    if t >= start and e["type"] == "playback"
                ),
                default=None,
            )
        if turn_no is None:
            return result
        outcome = await self._turn_outcome(turn_no, since=start, end=end, wait_end=wait_end)
        outcome.turn, outcome.partials, outcome.barged_in = turn, result.partials, result.barged_in
        return outcome

    async def _quiet(self) -> None:
        """Wait until no reply is playing (its playback event finished or interrupted)."""
        started = {
            e["turn"]
            for _, e in self._events
            if e["type"] == "playback" and e["status"] == "started"
        }
        for turn_no in started:
            await self._wait(_playback_over(turn_no))

    async def _turn_outcome(
        self, turn_no: int, since: float = 0.0, end: float | None = None, wait_end: bool = True
    ) -> TurnResult:
        """What the bot did with turn `turn_no`: intent, reply, its audio and the latency.

        `wait_end=False` (the next turn barges in): return once the reply has played a while.
        """
        result = TurnResult(Turn("text", ""))
        started = await self._wait(
            lambda e: e["type"] == "hangup" or (e["type"] == "playback" and e["turn"] == turn_no),
            since=since,
        )
        started_at = next(t for t, e in self._events if e is started)
        finished_at = float("inf")
        if started["type"] == "playback" and wait_end:
            done = await self._wait(_playback_over(turn_no), since=since)
            result.playback = done.get("status", "")
            finished_at = next(t for t, e in self._events if e is done)
        elif started["type"] == "playback":
            await self._wait_frame(started_at)
            await asyncio.sleep(BARGE_IN_AFTER_S)
        for t, event in self._events:
            if t < since or event.get("turn") != turn_no:
                continue
            if event["type"] == "transcript" and event["final"]:
                result.heard = event["text"]
            elif event["type"] == "intent":
                result.intent, result.score = event["intent"], event["score"]
                result.decision = event["decision"]
            elif event["type"] == "reply":
                result.reply = event["text"]
        frames = [(t, f) for t, f in self._frames if started_at <= t <= finished_at]
        result.reply_audio = b"".join(f for _, f in frames)
        if frames and end is not None:
            result.latency_ms = round((frames[0][0] - end) * 1000, 1)
        return result

    async def _wait_frame(self, after: float) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not any(t >= after for t, _ in self._frames[-5:]) and not self._closed:
            if time.monotonic() > deadline:
                raise TimeoutError("no reply audio from the bot in time")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.5)


def _api_client(url: str) -> httpx.AsyncClient:
    """A client for the gateway's API. Plain HTTP needs no TLS context, and building one (it
    loads every CA certificate) cost more CPU than the rest of a simulated call."""
    return httpx.AsyncClient(timeout=5, verify=url.startswith("https"))


def _playback_over(turn_no: int) -> Callable[[dict[str, Any]], bool]:
    def over(event: dict[str, Any]) -> bool:
        return event["type"] == "hangup" or (
            event["type"] == "playback"
            and event["turn"] == turn_no
            and event["status"] != "started"
        )

    return over


async def fetch_record(url: str, call_id: str) -> dict[str, Any] | None:
    """The call record from the gateway's HTTP API (same host as the call URL)."""
    if not call_id:
        return None
    parts = urlparse(url)
    scheme = "https" if parts.scheme == "wss" else "http"
    try:
        async with _api_client(scheme) as client:
            reply = await client.get(f"{scheme}://{parts.netloc}/v1/calls/{call_id}")
    except httpx.HTTPError:
        return None
    return reply.json() if reply.status_code == 200 else None


class AudioSocketCaller:
    """One call as Asterisk would place it: UUID, then 20 ms audio frames both ways.

    A telephone line carries no events, so per turn the simulator measures what it hears (the
    first non-silent frame after the caller's turn) and reads the rest from the call record.
    """

    def __init__(
        self,
        address: str,
        api: str,
        sample_rate: int = 8000,
        call_id: str | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.host, port = address.rsplit(":", 1)
        self.port, self.api, self.sample_rate = int(port), api.rstrip("/"), sample_rate
        self.call_id = call_id or str(uuid.uuid4())
        self.timeout_s = timeout_s
        self.frames: list[tuple[float, bytes]] = []  # bot audio as received
        self.hung_up = asyncio.Event()

    async def run(self, turns: list[Turn]) -> CallResult:
        result = CallResult(call_id=self.call_id)
        reader, writer = await asyncio.open_connection(self.host, self.port)
        kind = AUDIO_KINDS[self.sample_rate]

        async def send(pcm: bytes) -> None:
            writer.write(audio_frame(kind, pcm))
            await writer.drain()

        writer.write(uuid_frame(self.call_id))
        line = _Line(send, self.sample_rate)
        tasks = [asyncio.create_task(line.run()), asyncio.create_task(self._read(reader))]
        try:
            await self._reply_end(0.0, wait_end=not (turns and turns[0].barge_in))
            for n, turn in enumerate(turns):
                if self.hung_up.is_set():
                    break
                barged = n + 1 < len(turns) and turns[n + 1].barge_in
                result.turns.append(await self._play(writer, line, turn, wait_end=not barged))
            if not self.hung_up.is_set():
                await asyncio.sleep(0.2)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            writer.close()  # the caller hangs up: Asterisk closes the socket
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 2.0)
        result.hangup = {"by_bot": self.hung_up.is_set()}
        result.record = await self._record()
        self._fill_from_record(result)
        return result

    async def _read(self, reader: asyncio.StreamReader) -> None:
        decoder = FrameDecoder()
        while data := await reader.read(65536):
            for frame in decoder.feed(data):
                if frame.kind is Kind.HANGUP:
                    self.hung_up.set()
                    return
                if frame.is_audio:
                    self.frames.append((time.monotonic(), frame.payload))
        self.hung_up.set()

    async def _play(
        self, writer: asyncio.StreamWriter, line: _Line, turn: Turn, wait_end: bool
    ) -> TurnResult:
        result = TurnResult(turn)
        await asyncio.sleep(turn.pause_s)
        if turn.kind == "wav":
            pcm, _ = read_wav(turn.value, self.sample_rate)
            line.speak(pcm)
            await line.idle.wait()
            end = line.last_speech_sent
        elif turn.kind == "dtmf":
            for digit in turn.value:
                writer.write(dtmf_frame(digit))
                await asyncio.sleep(0.1)
            end = time.monotonic()
        elif turn.kind == "silence":
            end = time.monotonic()
            with contextlib.suppress(TimeoutError):  # the bot may hang up first
                await asyncio.wait_for(self.hung_up.wait(), float(turn.value))
        else:
            raise ValueError("a telephone line carries no typed text; use a WAV or --dtmf")
        if turn.barge_in:
            result.speech_started = line.first_speech_sent
            result.bot_stopped = self._quiet_from(line.first_speech_sent)
        first, audio = await self._reply_end(end, wait_end)
        result.reply_audio = audio
        if first is not None:
            result.latency_ms = round((first - end) * 1000, 1)
        return result

    def _quiet_from(self, since: float, run: int = 25) -> float | None:
        """When the bot fell silent for good after `since`: the start of the first run of
        `run` silent frames (500 ms; longer than its pauses between sentences)."""
        start, count = None, 0
        for t, frame in self.frames:
            if t < since:
                continue
            if any(frame):
                start, count = None, 0
                continue
            start, count = start or t, count + 1
            if count >= run:
                return start
        return None

    async def _reply_end(self, since: float, wait_end: bool) -> tuple[float | None, bytes]:
        """Wait for the bot's next utterance after `since`: (its first frame time, its audio).
        It ends at 600 ms of silence, or hangup; with wait_end=False we return mid-reply."""
        deadline = time.monotonic() + self.timeout_s
        first = last = None  # arrival of the first and the latest voiced frame
        seen = 0  # frames looked at: each is looked at once (a call receives 50 a second)
        while time.monotonic() < deadline and not self.hung_up.is_set():
            await asyncio.sleep(0.02)
            for n in range(seen, len(self.frames)):
                t, frame = self.frames[n]
                if t >= since and frame.count(0) != len(frame):
                    first, last = first or t, t
            seen = len(self.frames)
            if first is not None and not wait_end and time.monotonic() - first >= BARGE_IN_AFTER_S:
                break
            if last is not None and time.monotonic() - last >= 0.6:
                break
        if first is None:
            return None, b""
        return first, b"".join(f for t, f in self.frames if t >= first)

    async def _record(self) -> dict[str, Any] | None:
        async with _api_client(self.api) as client:
            for _ in range(50):  # the record is saved as the call ends
                reply = await client.get(f"{self.api}/v1/calls/{self.call_id}")
                if reply.status_code == 200 and reply.json()["outcome"] != "in_progress":
                    return reply.json()
                await asyncio.sleep(0.1)
        return None

    def _fill_from_record(self, result: CallResult) -> None:
        if not result.record:
            return
        turns = result.record["turns"]
        caller_turns = [(n, t) for n, t in enumerate(turns) if t["source"] != "bot"]
        for turn, (n, rec) in zip(result.turns, caller_turns, strict=False):
            turn.heard, turn.intent, turn.score = rec["transcript"], rec["intent"], rec["score"]
            turn.decision, turn.reply = rec["decision"], rec["reply"]
            turn.barged_in = n > 0 and turns[n - 1]["barged_in"]  # it cut the bot off
        if result.record.get("handoff_queue"):
            result.handoff = {
                "queue": result.record["handoff_queue"],
                "reason": result.record["handoff_reason"],
            }
