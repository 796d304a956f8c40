"""The operator's audio WebSocket, `/v1/operators/{operator_id}/audio`, and the lines it opens.

An operator's console keeps one audio socket open for the shift (framing as `/call`: a JSON
`start`, then binary 16-bit LE mono PCM both ways, JSON events from the gateway). When the
operator accepts a call (the handoff API), the call's bridge party (call/bridge.py) takes the
operator's line: the caller's audio arrives resampled to the operator's rate, and what the
operator sends reaches the caller at the caller's rate. Between calls nothing is sent and what
the operator sends is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Literal

from fastapi import WebSocket
from pydantic import BaseModel, ValidationError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from services.common.audio import FRAME_MS
from services.common.logging import get_logger
from services.gateway.call import events as ev
from services.handoff.models import OperatorState
from services.handoff.service import HandoffService

log = get_logger("gateway.operator_audio")
MAX_AUDIO_MESSAGE = 64 * 1024
MAX_BACKLOG = 50  # operator audio messages waiting for the caller (~1 s): older ones go


class OperatorStart(BaseModel):
    type: Literal["start"]
    sample_rate: Literal[8000, 16000, 48000]
    format: Literal["pcm_s16le"] = "pcm_s16le"
    channels: Literal[1] = 1


class LineStarted(BaseModel):
    type: Literal["started"] = "started"
    operator_id: str
    sample_rate: int
    frame_ms: int = FRAME_MS


class LineConnected(BaseModel):
    """A caller is on the line: their audio follows at the operator's rate."""

    type: Literal["connected"] = "connected"
    call_id: str
    caller_sample_rate: int


class LineHold(BaseModel):
    type: Literal["hold"] = "hold"
    call_id: str
    on: bool


class LineReleased(BaseModel):
    """The caller is no longer on the line (ended, transferred, back to the bot, hung up)."""

    type: Literal["released"] = "released"
    call_id: str
    reason: str


LineEvent = LineStarted | LineConnected | LineHold | LineReleased | ev.Error


class OperatorLine:
    def __init__(self, operator_id: str, sample_rate: int) -> None:
        self.operator_id, self.sample_rate = operator_id, sample_rate
        self.call_id: str | None = None
        self.closed = asyncio.Event()
        self._from_operator: asyncio.Queue[bytes] = asyncio.Queue()
        self._to_operator: asyncio.Queue[bytes | LineEvent] = asyncio.Queue()

    # the bridge's side
    def attach(self, call_id: str, caller_rate: int) -> None:
        self.call_id = call_id
        while not self._from_operator.empty():  # nothing said before the caller was there
            self._from_operator.get_nowait()
        self.tell(LineConnected(call_id=call_id, caller_sample_rate=caller_rate))

    def detach(self, reason: str) -> None:
        if self.call_id is not None:
            self.tell(LineReleased(call_id=self.call_id, reason=reason))
        self.call_id = None

    def send_audio(self, pcm: bytes) -> None:
        self._to_operator.put_nowait(pcm)

    def tell(self, event: LineEvent) -> None:
        self._to_operator.put_nowait(event)

    async def operator_audio(self) -> bytes:
        return await self._from_operator.get()

    # the socket's side
    def heard(self, pcm: bytes) -> None:
        if self.call_id is None:
            return
        if self._from_operator.qsize() >= MAX_BACKLOG:
            self._from_operator.get_nowait()
        self._from_operator.put_nowait(pcm)

    async def outgoing(self) -> bytes | LineEvent:
        return await self._to_operator.get()


class OperatorLines:
    """The operators' open audio lines in this process, by operator id."""

    def __init__(self) -> None:
        self._lines: dict[str, OperatorLine] = {}
        self._changed = asyncio.Condition()

    def get(self, operator_id: str) -> OperatorLine | None:
        return self._lines.get(operator_id)

    async def wait_for(self, operator_id: str, timeout_s: float) -> OperatorLine | None:
        async with self._changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._changed.wait_for(lambda: operator_id in self._lines), timeout_s
                )
        return self._lines.get(operator_id)

    async def open(self, line: OperatorLine) -> None:
        old = self._lines.get(line.operator_id)
        if old is not None:
            old.closed.set()  # a reconnect replaces the old socket
        self._lines[line.operator_id] = line
        async with self._changed:
            self._changed.notify_all()

    async def close(self, line: OperatorLine) -> None:
        line.closed.set()
        if self._lines.get(line.operator_id) is line:
            del self._lines[line.operator_id]
        async with self._changed:
            self._changed.notify_all()


async def serve_operator_audio(
    ws: WebSocket, operator_id: str, lines: OperatorLines, service: HandoffService
) -> None:
    await ws.accept()
    try:
        start = OperatorStart.model_validate_json(await ws.receive_text())
    except (ValidationError, ValueError, KeyError) as exc:
        await _refuse(ws, "bad_start", f"first message must be a JSON start message: {exc}")
        return
    except WebSocketDisconnect:
        return
    operator = await service.store.operator(operator_id)
    if operator is None or operator.state is OperatorState.LOGGED_OUT:
        await _refuse(ws, "not_logged_in", f"оператор {operator_id} не вошёл в систему")
        return
    line = OperatorLine(operator_id, start.sample_rate)
    await lines.open(line)
    line.tell(LineStarted(operator_id=operator_id, sample_rate=start.sample_rate))
    writer = asyncio.create_task(_write(ws, line))
    try:
        await _read(ws, line)
    finally:
        await lines.close(line)
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        if ws.client_state is WebSocketState.CONNECTED:
            with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                await ws.close()


async def _refuse(ws: WebSocket, code: str, message: str) -> None:
    await ws.send_text(ev.Error(code=code, message=message).model_dump_json())
    await ws.close(code=1008)


async def _read(ws: WebSocket, line: OperatorLine) -> None:
    while not line.closed.is_set():
        receiving = asyncio.ensure_future(ws.receive())
        closed = asyncio.ensure_future(line.closed.wait())
        done, _ = await asyncio.wait({receiving, closed}, return_when=asyncio.FIRST_COMPLETED)
        closed.cancel()
        if receiving not in done:
            receiving.cancel()
            return
        message = receiving.result()
        if message["type"] == "websocket.disconnect":
            return
        if (data := message.get("bytes")) is not None:
            if len(data) % 2 or len(data) > MAX_AUDIO_MESSAGE:
                line.tell(ev.Error(code="bad_audio", message=f"audio message of {len(data)} bytes"))
                continue
            line.heard(data)
            continue
        try:
            kind = json.loads(message.get("text") or "").get("type")
        except (ValueError, AttributeError):
            kind = None
        if kind == "hangup":
            return
        line.tell(ev.Error(code="bad_message", message=f"unknown message type {kind!r}"))


async def _write(ws: WebSocket, line: OperatorLine) -> None:
    while True:
        item = await line.outgoing()
        try:
            if isinstance(item, bytes):
                await ws.send_bytes(item)
            else:
                await ws.send_text(item.model_dump_json())
        except (RuntimeError, WebSocketDisconnect):
            line.closed.set()
            return
