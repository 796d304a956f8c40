"""A client of a standalone ASR service over the vosk-server protocol (implements base.py).

It works against our `voicebot serve asr` and against alphacep's vosk-server alike, except
that per-turn phrase lists and endpointing need ours (vosk-server ignores a second config).
"""

from __future__ import annotations

import json

import websockets

from services.asr.base import Endpointing, Hypothesis, RecognizerOverloaded
from services.asr.protocol import RemoteError, decode_reply


class RemoteStream:
    def __init__(self, ws: websockets.ClientConnection) -> None:
        self._ws = ws

    async def _ask(self, message: str | bytes) -> Hypothesis:
        await self._ws.send(message)
        return decode_reply(str(await self._ws.recv()))

    async def feed(self, pcm: bytes) -> Hypothesis:
        return await self._ask(pcm)

    async def finish(self) -> Hypothesis:
        return await self._ask('{"reset" : 1}')

    def expedite(self) -> None:
        pass  # the service schedules its own decoders; the reset `finish` sends goes first there

    async def _configure(self, **config: object) -> None:
        await self._ws.send(json.dumps({"config": config}, ensure_ascii=False))

    async def set_phrases(self, phrases: list[str] | None) -> None:
        await self._configure(phrase_list=phrases)

    async def set_endpointing(self, endpointing: Endpointing) -> None:
        await self._configure(endpointing=endpointing.model_dump())

    async def close(self) -> None:
        try:
            await self._ask('{"eof" : 1}')
        except (websockets.ConnectionClosed, OSError, RemoteError, RecognizerOverloaded):
            pass  # the session is over either way
        finally:
            await self._ws.close()


class RemoteRecognizer:
    name = "vosk-remote"

    def __init__(self, url: str, open_timeout_s: float = 5.0) -> None:
        self.url = url
        self._open_timeout_s = open_timeout_s

    async def open_stream(
        self,
        sample_rate: int,
        phrases: list[str] | None = None,
        endpointing: Endpointing | None = None,
    ) -> RemoteStream:
        ws = await websockets.connect(self.url, open_timeout=self._open_timeout_s, max_size=2**22)
        stream = RemoteStream(ws)
        config: dict[str, object] = {"sample_rate": sample_rate, "words": 1}
        if phrases:
            config["phrase_list"] = phrases
        if endpointing is not None:
            config["endpointing"] = endpointing.model_dump()
        await stream._configure(**config)
        return stream

    def describe(self) -> dict[str, object]:
        return {"engine": "vosk", "mode": "remote", "url": self.url}
