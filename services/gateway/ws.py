"""The `/call` WebSocket: a thin adapter between JSON/binary messages and the call engine.

Protocol (services/gateway/README.md): a JSON `start` message first, then binary 16-bit LE mono
PCM frames and JSON `text` / `dtmf` / `hangup` messages; the server answers with JSON events and
binary reply audio in 20 ms frames paced in real time.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from typing import Literal

from fastapi import WebSocket
from pydantic import BaseModel, ValidationError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from services.common.logging import get_logger
from services.gateway.call import events as ev
from services.gateway.call.leg import Audio, CallerInput, Digit, HangUp, MediaLeg, Text
from services.gateway.call.policy import CallPolicy
from services.gateway.registry import CallRegistry

log = get_logger("gateway.ws")

DTMF_DIGITS = set("0123456789*#ABCD")
MAX_AUDIO_MESSAGE = 64 * 1024  # ~2 s at 16 kHz: a client that sends more is broken


class StartMessage(BaseModel):
    type: Literal["start"]
    caller_id: str = ""
    sample_rate: Literal[8000, 16000]
    format: Literal["pcm_s16le"] = "pcm_s16le"
    channels: Literal[1] = 1


class TextMessage(BaseModel):
    type: Literal["text"]
    text: str


class DtmfMessage(BaseModel):
    type: Literal["dtmf"]
    digit: str


class WebSocketOutput:
    idle_silence = False  # a browser or the simulator plays what arrives; no silence needed

    def __init__(self, ws: WebSocket) -> None:
        self._ws = ws

    async def event(self, event: ev.Event) -> None:
        await self._ws.send_text(event.model_dump_json())

    async def audio(self, frame: bytes) -> None:
        await self._ws.send_bytes(frame)


async def _send_error(ws: WebSocket, code: str, message: str) -> None:
    await ws.send_text(ev.Error(code=code, message=message).model_dump_json())


async def serve_websocket_call(ws: WebSocket, registry: CallRegistry, policy: CallPolicy) -> None:
    await ws.accept()
    try:
        start = StartMessage.model_validate_json(await ws.receive_text())
    except (ValidationError, ValueError, KeyError) as exc:
        await _send_error(ws, "bad_start", f"first message must be a JSON start message: {exc}")
        await ws.close(code=1008)
        return
    except WebSocketDisconnect:
        return
    leg = MediaLeg(
        call_id=str(uuid.uuid4()),
        caller_id=start.caller_id,
        sample_rate=start.sample_rate,
        transport="websocket",
        output=WebSocketOutput(ws),
        policy=policy,
    )
    await registry.run(leg, _inputs(ws, leg))
    if ws.client_state is WebSocketState.CONNECTED:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):  # the peer left just now
            await ws.close()


async def _inputs(ws: WebSocket, leg: MediaLeg) -> AsyncIterator[CallerInput]:
    """Client messages as caller input; malformed ones get an error event and are dropped."""
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        if (data := message.get("bytes")) is not None:
            if len(data) % 2 or len(data) > MAX_AUDIO_MESSAGE:
                leg.report_error(
                    "bad_audio",
                    f"audio message of {len(data)} bytes: want whole "
                    f"16-bit samples, at most {MAX_AUDIO_MESSAGE} bytes",
                )
                continue
            yield Audio(data)
            continue
        item = _parse_text(message.get("text") or "", leg)
        if item is not None:
            yield item
            if isinstance(item, HangUp):
                return


def _parse_text(raw: str, leg: MediaLeg) -> CallerInput | None:
    try:
        kind = json.loads(raw).get("type")
        if kind == "text":
            return Text(TextMessage.model_validate_json(raw).text)
        if kind == "dtmf":
            digit = DtmfMessage.model_validate_json(raw).digit
            if digit not in DTMF_DIGITS:
                raise ValueError(f"DTMF digit must be one of 0-9 * # A-D, not {digit!r}")
            return Digit(digit)
        if kind == "hangup":
            return HangUp()
        raise ValueError(f"unknown message type {kind!r} (text, dtmf, hangup, or binary audio)")
    except (ValueError, AttributeError, ValidationError) as exc:
        leg.report_error("bad_message", str(exc).splitlines()[0][:300])
        return None
