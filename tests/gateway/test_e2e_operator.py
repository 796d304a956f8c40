"""The human half end to end: real sockets, the real engines (Vosk Korean model, eSpeak NG, the
KB's dialog), the gateway's own queue on the embedded (SQLite) store.

A caller is handed off by the real dialog and waits in line hearing the position and music; an
operator's console (the handoff API's HTTP and events WebSocket, the gateway's audio
WebSocket) logs in, gets the offer with the conversation, accepts, and talks: audio is checked
both ways by its pitch at the receiver's rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
import websockets
from live_server import free_port

from services.common.config import Settings
from services.gateway.app import create_app
from services.gateway.audiosocket.protocol import (
    FrameDecoder,
    Kind,
    audio_frame,
    dtmf_frame,
    uuid_frame,
)
from services.gateway.audiosocket.server import AudioSocketSettings
from services.gateway.call.policy import CallPolicy
from services.gateway.engines import Engines
from services.handoff.core import QueueCore
from services.handoff.embedded import EmbeddedStore
from services.handoff.models import (
    CallbackOutcome,
    WaitEnd,
)
from services.handoff.redis_store import RedisStore
from services.handoff.service import HandoffService
from services.handoff.settings import HandoffSettings

CALLER_HZ, OPERATOR_HZ = 440.0, 1000.0


def tone(hz: float, rate: int, seconds: float) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * hz * t) * 8000).astype("<i2").tobytes()


def pitch(pcm: bytes, rate: int) -> float:
    """The loudest frequency of `pcm` (Hz), read at `rate`: a tone sent at another rate and
    not resampled would come out at another pitch."""
    samples = np.frombuffer(pcm, "<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[int(spectrum.argmax())])


@contextlib.asynccontextmanager
async def queue_gateway(
    settings: Settings, engines: Engines, tmp_path: Path, redis: str | None = None
) -> AsyncIterator[tuple[str, HandoffService, str]]:
    """A gateway with its own queue (embedded, or on the Redis at `redis`), served on this
    loop; yields (base URL, service, AudioSocket address)."""
    store: QueueCore = (
        RedisStore.from_url(redis, prefix=f"t{uuid.uuid4().hex[:8]}:")
        if redis
        else EmbeddedStore(tmp_path / "handoff.sqlite3")
    )
    options = HandoffSettings(announce_interval_s=1.0, wrap_up_s=0.0, tick_s=0.1)
    service = HandoffService(store, options)
    app = create_app(
        settings,
        engines=engines,
        policy=CallPolicy(),
        audiosocket=AudioSocketSettings(port=0),
        handoff=service,
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the gateway did not start"
        await asyncio.sleep(0.02)
    try:
        yield f"127.0.0.1:{port}", service, app.state.audiosocket.address
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
        await store.close()


class Client:
    """One WebSocket peer (a caller on /call or an operator's audio line): events and audio."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self.audio: list[tuple[float, bytes]] = []
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for message in self.ws:
                if isinstance(message, bytes):
                    self.audio.append((time.monotonic(), message))
                else:
                    self.events.append(json.loads(message))
                self._changed.set()

    async def wait(
        self, pred: Callable[[dict[str, Any]], bool], timeout: float = 20, since: int = 0
    ) -> dict:
        """The first event (from the `since`-th on) that `pred` accepts."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events[since:]:
                if pred(event):
                    return event
            if time.monotonic() > deadline:
                raise AssertionError(f"no such event in {self.events}")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), 0.2)

    def audio_since(self, t: float) -> bytes:
        return b"".join(pcm for at, pcm in self.audio if at >= t)

    async def send_json(self, **message: Any) -> None:
        await self.ws.send(json.dumps(message))

    async def stream(self, pcm: bytes, rate: int) -> None:
        """Send `pcm` in 20 ms frames in real time, as a phone line does."""
        size = rate // 50 * 2
        for start in range(0, len(pcm), size):
            await self.ws.send(pcm[start : start + size])
            await asyncio.sleep(0.02)


async def call(base: str, caller_id: str = "+79990001122", rate: int = 8000) -> Client:
    ws = await websockets.connect(f"ws://{base}/call")
    client = Client(ws)
    await client.send_json(type="start", caller_id=caller_id, sample_rate=rate)
    await client.wait(
        lambda e: e["type"] == "playback" and e["turn"] == 0 and e["status"] != "started"
    )
    return client


async def operator_line(base: str, operator_id: str, rate: int = 16000) -> Client:
    ws = await websockets.connect(f"ws://{base}/v1/operators/{operator_id}/audio")
    client = Client(ws)
    await client.send_json(type="start", sample_rate=rate)
    await client.wait(lambda e: e["type"] == "started")
    return client


async def hand_off(caller: Client) -> dict:
    """Ask the real dialog for a person; returns the first position announcement."""
    await caller.send_json(type="text", text="соедините меня с оператором")
    await caller.wait(lambda e: e["type"] == "handoff")
    return await caller.wait(lambda e: e["type"] == "queue")


class Console:
    """An operator's browser: the handoff API over HTTP and its events WebSocket (offers in,
    commands out), and the gateway's audio WebSocket."""

    def __init__(self, base: str, operator_id: str) -> None:
        self.base, self.id = base, operator_id
        self.http = httpx.AsyncClient(base_url=f"http://{base}/v1/handoff")

    async def login(self, queues: list[str], available: bool) -> None:
        reply = await self.http.post("/operators", json={"id": self.id, "queues": queues})
        assert reply.status_code == 200, reply.text
        self.events = Client(
            await websockets.connect(f"ws://{self.base}/v1/handoff/operators/{self.id}/events")
        )
        self.line = await operator_line(self.base, self.id, 16000)
        if available:
            await self.state("available")

    async def state(self, state: str) -> None:
        reply = await self.http.put(f"/operators/{self.id}/state", json={"state": state})
        assert reply.status_code == 200, reply.text

    async def offer(self) -> dict[str, Any]:
        event = await self.events.wait(lambda e: e.get("event", {}).get("kind") == "offer")
        return event["event"]["offer"]

    async def command(self, **command: Any) -> dict[str, Any]:
        before = len(self.events.events)
        await self.events.send_json(**command)
        reply = await self.events.wait(lambda e: e.get("reply") == command["action"], since=before)
        assert reply["ok"], reply
        return reply

    async def close(self) -> None:
        await self.events.ws.close()
        await self.line.ws.close()
        await self.http.aclose()


async def test_websocket_caller_waits_then_talks_to_an_operator_and_back_to_the_bot(
    gateway_settings, engines, tmp_path
):
    async with queue_gateway(gateway_settings, engines, tmp_path) as (base, _, _):
        anna = Console(base, "anna")
        await anna.login(["operators"], available=False)  # away: the caller waits
        caller = await call(base)
        place = await hand_off(caller)
        assert place["place"] == 1 and place["queue"] == "operators"
        assert "в очереди" in place["text"] and "нажмите 1" in place["text"]
        heard_from = time.monotonic()
        await asyncio.sleep(1.0)
        assert len(caller.audio_since(heard_from)) >= 8000 * 2 * 0.8  # announcement and music
        again = await caller.wait(lambda e: e["type"] == "queue" and e is not place, timeout=10)
        assert again["place"] == 1  # announced again after the interval

        await anna.state("available")
        offer = await anna.offer()
        assert offer["call_id"] == caller.events[0]["call_id"]
        context = offer["context"]
        assert context["caller_number"] == "+79990001122"
        assert any(
            t["who"] == "caller" and "оператор" in t["text"] and t["intent"]
            for t in context["turns"]
        )
        accepted = await anna.command(action="accept", offer_id=offer["id"])
        assert accepted["context"]["call_id"] == offer["call_id"]
        await caller.wait(lambda e: e["type"] == "operator" and e["status"] == "connected")
        await anna.line.wait(lambda e: e["type"] == "connected")

        # The operator's 1 kHz at 16 kHz reaches the 8 kHz caller as 1 kHz.
        since = time.monotonic()
        await anna.line.stream(tone(OPERATOR_HZ, 16000, 1.0), 16000)
        await asyncio.sleep(0.3)
        to_caller = caller.audio_since(since)
        assert len(to_caller) >= 8000 * 2 * 0.8
        assert abs(pitch(to_caller, 8000) - OPERATOR_HZ) < 20
        # The caller's 440 Hz at 8 kHz reaches the operator at 16 kHz as 440 Hz.
        since = time.monotonic()
        await caller.stream(tone(CALLER_HZ, 8000, 1.0), 8000)
        await asyncio.sleep(0.3)
        to_operator = anna.line.audio_since(since)
        assert len(to_operator) >= 16000 * 2 * 0.8
        assert abs(pitch(to_operator, 16000) - CALLER_HZ) < 20

        await anna.command(action="hold", on=True)  # the caller hears music, not the operator
        await anna.line.wait(lambda e: e["type"] == "hold" and e["on"])
        await caller.wait(lambda e: e["type"] == "operator" and e["status"] == "hold")
        await anna.command(action="hold", on=False)
        await caller.wait(lambda e: e["type"] == "operator" and e["status"] == "unhold")

        await anna.command(action="transfer", queue=None)  # back to the bot
        await anna.line.wait(lambda e: e["type"] == "released")
        await caller.wait(lambda e: e["type"] == "operator" and e["status"] == "released")
        back = await caller.wait(lambda e: e["type"] == "reply" and "снова" in e["text"])
        await caller.wait(
            lambda e: (
                e["type"] == "playback" and e["turn"] == back["turn"] and e["status"] == "finished"
            )
        )
        await caller.send_json(type="text", text="сколько стоит звонок")
        answer = await caller.wait(lambda e: e["type"] == "intent" and e["turn"] > back["turn"])
        assert answer["intent"] == "line_cost" and answer["decision"] == "answer"
        await caller.send_json(type="hangup")
        await caller.wait(lambda e: e["type"] == "hangup")
        await caller.ws.close()
        await anna.close()


@pytest.mark.parametrize("backend", ["embedded", "redis"])
async def test_hanging_up_waiting_is_a_callback_and_mid_talk_frees_the_operator(
    backend, gateway_settings, engines, tmp_path, request
):
    redis = request.getfixturevalue("redis_url") if backend == "redis" else None
    async with queue_gateway(gateway_settings, engines, tmp_path, redis) as (base, service, _):
        caller = await call(base, caller_id="+79990003344")
        await hand_off(caller)
        await caller.send_json(type="hangup")
        await caller.wait(lambda e: e["type"] == "hangup")
        callbacks = await service.store.callbacks()
        assert [(c.number, c.reason, c.outcome) for c in callbacks] == [
            ("+79990003344", WaitEnd.ABANDONED, CallbackOutcome.PENDING)
        ]
        await caller.ws.close()

        vera = Console(base, "vera")
        await vera.login(["operators"], available=True)
        talker = await call(base, caller_id="+79990007788")
        await talker.send_json(type="text", text="соедините меня с оператором")
        await vera.command(action="accept", offer_id=(await vera.offer())["id"])
        await vera.line.wait(lambda e: e["type"] == "connected")
        await talker.send_json(type="hangup")
        released = await vera.line.wait(lambda e: e["type"] == "released")
        assert released["reason"] == "caller_hangup"
        await vera.events.wait(lambda e: e.get("event", {}).get("kind") == "caller_left")
        talk = await vera.command(action="finish", disposition="resolved", note="перезвонить")
        assert talk["ok"]
        assert len(await service.store.callbacks()) == 1  # a talk hung up on is no callback
        await talker.ws.close()
        await vera.close()


async def test_key_1_leaves_a_callback_for_a_confirmed_or_keyed_in_number(
    gateway_settings, engines, tmp_path
):
    async with queue_gateway(gateway_settings, engines, tmp_path) as (base, service, _):
        known = await call(base, caller_id="+79990005566")
        await hand_off(known)
        await known.send_json(type="dtmf", digit="1")
        confirm = await known.wait(lambda e: e["type"] == "reply" and "номер" in e["text"])
        assert "7, 9 9 9, 0 0 0, 5 5, 6 6." in confirm["text"]  # the number read back
        await known.send_json(type="dtmf", digit="1")
        done = await known.wait(lambda e: e["type"] == "callback")
        assert done["number"] == "+79990005566"
        hangup = await known.wait(lambda e: e["type"] == "hangup")
        assert hangup["reason"] == "callback"

        anonymous = await call(base, caller_id="")
        await hand_off(anonymous)
        await anonymous.send_json(type="dtmf", digit="1")
        await anonymous.wait(lambda e: e["type"] == "reply" and "номер телефона" in e["text"])
        for digit in "89991234567#":
            await anonymous.send_json(type="dtmf", digit=digit)
        await anonymous.wait(
            lambda e: e["type"] == "reply" and "8, 9 9 9, 1 2 3, 4 5, 6 7." in e["text"]
        )
        await anonymous.send_json(type="dtmf", digit="1")
        await anonymous.wait(lambda e: e["type"] == "callback")
        numbers = {c.number: c.reason for c in await service.store.callbacks()}
        assert numbers == {
            "+79990005566": WaitEnd.CALLBACK_REQUESTED,
            "89991234567": WaitEnd.CALLBACK_REQUESTED,
        }
        for client in (known, anonymous):
            await client.ws.close()


class RawAsterisk:
    """An AudioSocket peer by hand: 8 kHz slin frames every 20 ms, collects what comes back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.audio: list[tuple[float, bytes]] = []
        self.kinds: list[Kind] = []
        self.outgoing = b""  # what the "caller" says next, 20 ms at a time; silence otherwise
        self.reading = asyncio.create_task(self._read())
        self.sending = asyncio.create_task(self._send())

    async def _read(self) -> None:
        decoder = FrameDecoder()
        while data := await self.reader.read(65536):
            for frame in decoder.feed(data):
                self.kinds.append(frame.kind)
                if frame.is_audio:
                    self.audio.append((time.monotonic(), frame.payload))

    async def _send(self) -> None:
        with contextlib.suppress(ConnectionError):
            while not self.reading.done():
                frame, self.outgoing = self.outgoing[:320], self.outgoing[320:]
                self.writer.write(audio_frame(Kind.AUDIO, frame.ljust(320, b"\0")))
                await self.writer.drain()
                await asyncio.sleep(0.02)

    def audio_since(self, t: float) -> bytes:
        return b"".join(pcm for at, pcm in self.audio if at >= t)


async def test_audiosocket_caller_is_bridged_to_an_operator_by_the_gateway(
    gateway_settings, engines, tmp_path
):
    async with queue_gateway(gateway_settings, engines, tmp_path) as (base, _, address):
        boris = Console(base, "boris")
        await boris.login(["operators"], available=True)
        host, port = address.rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        call_id = str(uuid.uuid4())
        writer.write(uuid_frame(call_id))
        peer = RawAsterisk(reader, writer)
        await asyncio.sleep(1.0)  # the greeting starts
        writer.write(dtmf_frame("0"))  # an operator, please
        offer = await boris.offer()
        assert offer["call_id"] == call_id and offer["context"]["transport"] == "audiosocket"
        await boris.command(action="accept", offer_id=offer["id"])
        await boris.line.wait(
            lambda e: e["type"] == "connected" and e["caller_sample_rate"] == 8000
        )

        since = time.monotonic()
        await boris.line.stream(tone(OPERATOR_HZ, 16000, 1.0), 16000)
        await asyncio.sleep(0.3)
        assert abs(pitch(peer.audio_since(since), 8000) - OPERATOR_HZ) < 20

        since = time.monotonic()
        peer.outgoing = tone(CALLER_HZ, 8000, 1.0)
        await asyncio.sleep(1.3)
        to_operator = boris.line.audio_since(since)
        assert len(to_operator) >= 16000 * 2 * 0.8
        assert abs(pitch(to_operator, 16000) - CALLER_HZ) < 20

        await boris.command(action="finish", disposition="resolved", note="ответил на вопрос")
        await asyncio.wait_for(peer.reading, 10)  # the gateway hangs up: AudioSocket() returns
        assert peer.kinds[-1] is Kind.HANGUP
        figures = (await boris.http.get("/queues/operators")).json()
        assert figures["answered"] == 1
        await boris.close()
