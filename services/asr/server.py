"""The standalone ASR service: the vosk-server WebSocket protocol at `/`, plus `/metrics`,
`/healthz` and `/readyz`. A thin layer over `VoskRecognizer`; the protocol rules live in
protocol.py.

Every failure ends only its own session: what was heard so far is sent as a final result, then
`{"error", "code"}`, then the socket closes with that code. Other sessions never notice.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from fastapi import FastAPI, WebSocket
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.websockets import WebSocketDisconnect

from services.asr.base import Hypothesis, RecognizerOverloaded
from services.asr.engine import VoskRecognizer, VoskStream
from services.asr.protocol import (
    INTERNAL_ERROR,
    INVALID_PAYLOAD,
    MESSAGE_TOO_BIG,
    TRY_AGAIN_LATER,
    ProtocolError,
    SessionConfig,
    encode_error,
    encode_reply,
    parse_text,
    updated_config,
)
from services.asr.telephony import to_pcm16
from services.common.logging import get_logger

log = get_logger("asr.server")


@dataclass
class SessionLimits:
    idle_timeout_s: float = 30.0  # a client that never sends eof gets its final and is closed
    max_chunk_s: float = 5.0  # one binary message at most this much audio


class Session:
    def __init__(self, ws: WebSocket, recognizer: VoskRecognizer, limits: SessionLimits) -> None:
        self.ws, self.recognizer, self.limits = ws, recognizer, limits
        self.config = SessionConfig()
        self.stream: VoskStream | None = None
        self.heard = False  # audio fed since the last final

    async def run(self) -> None:
        await self.ws.accept()
        try:
            while True:
                message = await asyncio.wait_for(self.ws.receive(), self.limits.idle_timeout_s)
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("bytes") is not None:
                    await self._audio(message["bytes"])
                elif not await self._text(message.get("text") or ""):
                    return
        except TimeoutError:
            await self._end(f"no message for {self.limits.idle_timeout_s:g} s", 1000)
        except ProtocolError as exc:
            await self._end(str(exc), exc.code)
        except RecognizerOverloaded as exc:
            await self._end(str(exc), TRY_AGAIN_LATER)
        except WebSocketDisconnect:
            pass  # the client went away mid-stream: nothing to answer
        except Exception:
            log.exception("asr session failed")
            await self._end("internal error", INTERNAL_ERROR)
        finally:
            if self.stream is not None:
                await self.stream.close()

    async def _text(self, text: str) -> bool:
        """Handle a command; False when the session is over."""
        kind, value = parse_text(text)
        if kind == "config":
            self.config = updated_config(self.config, value, started=self.stream is not None)
            if self.stream is not None:
                await self.stream.set_phrases(self.config.phrase_list)
                await self.stream.set_endpointing(self.config.endpointing)
            return True
        await self._send(await self._final())
        if kind == "eof":
            await self.ws.close()
            return False
        return True

    async def _audio(self, chunk: bytes) -> None:
        if len(chunk) % self.config.sample_bytes:
            raise ProtocolError(
                f"chunk of {len(chunk)} bytes is not whole {self.config.format} samples",
                INVALID_PAYLOAD,
            )
        limit = int(self.limits.max_chunk_s * self.config.rate) * self.config.sample_bytes
        if len(chunk) > limit:
            raise ProtocolError(
                f"chunk of {len(chunk)} bytes exceeds {self.limits.max_chunk_s:g} s "
                f"({limit} bytes) of audio",
                MESSAGE_TOO_BIG,
            )
        if self.stream is None:
            self.stream = await self.recognizer.open_stream(
                self.config.rate,
                self.config.phrase_list,
                self.config.endpointing,
                words=self.config.words,
                max_alternatives=self.config.max_alternatives,
            )
        hyp = await self.stream.feed(to_pcm16(chunk, self.config.format))
        self.heard = not hyp.final
        await self._send(hyp)

    async def _final(self) -> Hypothesis:
        self.heard = False
        if self.stream is None:
            return Hypothesis(text="", final=True)
        return await self.stream.finish()

    async def _send(self, hyp: Hypothesis) -> None:
        await self.ws.send_text(encode_reply(hyp, self.config))

    async def _end(self, error: str, code: int) -> None:
        """Close this session, first handing over what was heard so nothing is lost."""
        log.info("asr session closed", reason=error, code=code)
        with contextlib.suppress(Exception):
            if self.heard and self.stream is not None:
                await self._send(await self._final())
            if code != 1000:
                await self.ws.send_text(encode_error(error, code))
            await self.ws.close(code=code, reason=error[:120])


def create_app(recognizer: VoskRecognizer, limits: SessionLimits | None = None) -> FastAPI:
    app = FastAPI(title="voicebot ASR (vosk-server protocol)")
    session_limits = limits or SessionLimits()

    @app.websocket("/")
    async def recognize(ws: WebSocket) -> None:
        await Session(ws, recognizer, session_limits).run()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> dict[str, object]:
        return {"ready": True, "asr": recognizer.describe()}

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return app
