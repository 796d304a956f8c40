"""The standalone TTS service: `POST /v1/synthesize` and its streaming twin.

A thin HTTP layer over Synthesizer: requests are validated (and turned into sentences) before
any audio is sent, so every bad request gets a clear 4xx, never a broken stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, HTTPException
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, Field, model_validator

from services.tts.formats import (
    AudioFormat,
    encode,
    media_type,
    pcm16_to_ulaw,
    streaming_wav_header,
)
from services.tts.synthesizer import SAMPLE_RATES, InvalidRequest, Plan, Synthesizer


class SynthesizeRequest(BaseModel):
    text: str | None = Field(None, description="Russian text to speak")
    ssml: str | None = Field(None, description="or SSML: <break>, <say-as>, <prosody rate>")
    speaker: str | None = Field(None, description="default: the service's configured speaker")
    rate: int = Field(8000, description="8000, 16000, 24000 or 48000 Hz")
    format: AudioFormat = "wav"

    @model_validator(mode="after")
    def _one_source(self) -> SynthesizeRequest:
        if (self.text is None) == (self.ssml is None):
            raise ValueError("give exactly one of `text` or `ssml`")
        return self


class PrerenderRequest(BaseModel):
    texts: list[str] = Field(max_length=10000)
    rates: list[int] = [8000]

    @model_validator(mode="after")
    def _known_rates(self) -> PrerenderRequest:
        if bad := [r for r in self.rates if r not in SAMPLE_RATES]:
            raise ValueError(f"unsupported sample rates {bad}; use {list(SAMPLE_RATES)}")
        return self


def create_tts_app(synthesizer: Synthesizer) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        synthesizer.close()

    app = FastAPI(title="voicebot TTS", lifespan=lifespan)
    background: set[asyncio.Task[int]] = set()  # referenced, so running tasks are not collected

    async def plan(request: SynthesizeRequest) -> Plan:
        try:
            return await synthesizer.aplan(
                request.text, ssml=request.ssml, sample_rate=request.rate, speaker=request.speaker
            )
        except InvalidRequest as exc:
            raise HTTPException(exc.status, str(exc)) from exc

    def headers(request: SynthesizeRequest) -> dict[str, str]:
        return {"X-TTS-Engine": synthesizer.name, "X-Sample-Rate": str(request.rate)}

    @app.post("/v1/synthesize")
    async def synthesize(request: SynthesizeRequest) -> Response:
        pcm = b"".join([chunk async for chunk in synthesizer.render_plan(await plan(request))])
        return Response(
            encode(pcm, request.rate, request.format),
            media_type=media_type(request.format, request.rate),
            headers=headers(request),
        )

    @app.post("/v1/synthesize/stream")
    async def synthesize_stream(request: SynthesizeRequest) -> StreamingResponse:
        """Chunked: each sentence is sent as soon as it is rendered."""
        checked = await plan(request)

        async def body() -> AsyncIterator[bytes]:
            if request.format == "wav":
                yield streaming_wav_header(request.rate)
            async for pcm in synthesizer.render_plan(checked):
                yield pcm16_to_ulaw(pcm) if request.format == "ulaw" else pcm

        return StreamingResponse(
            body(), media_type=media_type(request.format, request.rate), headers=headers(request)
        )

    @app.post("/v1/prerender", status_code=202)
    async def prerender(request: PrerenderRequest) -> dict[str, object]:
        """Render answers into the cache in the background (e.g. a knowledge base at load)."""
        task = asyncio.create_task(synthesizer.prerender(request.texts, request.rates))
        background.add(task)
        task.add_done_callback(background.discard)
        return {"accepted": len(request.texts), "rates": request.rates}

    @app.get("/v1/speakers")
    async def speakers() -> dict[str, object]:
        return {"engine": synthesizer.name, "speakers": list(synthesizer.backend.speakers)}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> dict[str, object]:
        info = synthesizer.describe()
        return {"status": "degraded" if info["degraded"] else "ready", "tts": info}

    return app
