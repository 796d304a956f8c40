"""`voicebot asr FILE.wav …` and `voicebot serve asr`.

Engines are imported inside the commands so `voicebot --help` stays fast.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import time
from pathlib import Path
from typing import Annotated

import typer

from services.asr.base import Hypothesis, SpeechRecognizer, Word
from services.common import native
from services.common.config import Settings

CHUNK_S = 0.2


def _recognizer(model: Path | None, url: str | None) -> SpeechRecognizer:
    from services.asr.engine import ModelUnavailable, load_recognizer

    settings = Settings()
    if model is not None:
        settings.asr_model = model
    if url is not None:
        settings.asr_url = url
    try:
        return load_recognizer(settings)
    except ModelUnavailable as exc:
        typer.echo(f"voicebot asr: {exc.reason}", err=True)
        raise typer.Exit(2) from None


async def transcribe(recognizer: SpeechRecognizer, pcm: bytes, rate: int) -> Hypothesis:
    """Every utterance in `pcm` (fed as fast as decoding goes), joined into one final."""
    from services.common.audio import split_frames

    stream = await recognizer.open_stream(rate)
    finals: list[Hypothesis] = []
    try:
        for chunk in split_frames(pcm, rate, int(CHUNK_S * 1000)):
            hyp = await stream.feed(chunk)
            if hyp.final:
                finals.append(hyp)
        finals.append(await stream.finish())
    finally:
        await stream.close()
    words: list[Word] = [w for h in finals for w in h.words]
    return Hypothesis(text=" ".join(h.text for h in finals if h.text), final=True, words=words)


Files = Annotated[list[Path], typer.Argument(help="WAV files (16-bit PCM, any rate)", exists=True)]
JsonFlag = Annotated[bool, typer.Option("--json", help="JSON per file, with word timings")]
ModelDir = Annotated[Path | None, typer.Option(help="Vosk model folder (default: the Russian one)")]
Url = Annotated[str | None, typer.Option(help="ws:// URL of an ASR service to use")]


def asr_command(
    files: Files, json: JsonFlag = False, model: ModelDir = None, url: Url = None
) -> None:
    """Transcribe WAV files with the speech recognizer."""
    from services.asr.telephony import PCM_RATES
    from services.common.audio import duration_s, read_wav

    recognizer = _recognizer(model, url)

    async def run() -> None:
        for path in files:
            pcm, rate = read_wav(path)
            if rate not in PCM_RATES:
                pcm, rate = read_wav(path, 16000)
            started = time.monotonic()
            hyp = await transcribe(recognizer, pcm, rate)
            took = time.monotonic() - started
            if json:
                record = {
                    "file": str(path),
                    "text": hyp.text,
                    "words": [w.model_dump() for w in hyp.words],
                    "duration_s": round(duration_s(pcm, rate), 3),
                    "decode_s": round(took, 3),
                }
                typer.echo(jsonlib.dumps(record, ensure_ascii=False))
            else:
                typer.echo(f"{path}: {hyp.text}")

    asyncio.run(run())


def serve_asr(
    port: Annotated[int, typer.Option(help="TCP port")] = 2700,
    host: Annotated[str | None, typer.Option(help="interface (default VOICEBOT_HOST)")] = None,
    model: ModelDir = None,
    graph: Annotated[
        Path | None, typer.Option(help="static graph folder (default VOICEBOT_ASR_GRAPH)")
    ] = None,
    workers: Annotated[int | None, typer.Option(help="decoder threads (default: cores)")] = None,
    max_streams: Annotated[int | None, typer.Option(help="streams before more are shed")] = None,
    idle_timeout: Annotated[float, typer.Option(help="close a silent session after (s)")] = 30.0,
    keep_warm: Annotated[
        int | None, typer.Option(help="idle recognizers kept for reuse, ~100 MB each")
    ] = None,
) -> None:
    """The standalone ASR service (vosk-server WebSocket protocol, /metrics)."""
    settings = Settings()
    native.reexec_with_allocator("services.cli", settings.allocator)
    import uvicorn

    from services.asr.engine import ModelUnavailable, VoskRecognizer
    from services.asr.pool import DecoderPool
    from services.asr.server import SessionLimits, create_app
    from services.common.logging import configure

    configure(settings.log_level, settings.log_json)
    model = model or settings.vosk_model_path
    try:
        recognizer = VoskRecognizer(
            model,
            DecoderPool(workers, max_streams),
            keep_warm,
            static_graph=graph or settings.vosk_graph_for(model),
        )
    except ModelUnavailable as exc:
        typer.echo(f"voicebot serve asr: {exc.reason}", err=True)
        raise typer.Exit(2) from None
    app = create_app(recognizer, SessionLimits(idle_timeout_s=idle_timeout))
    # PCM barely compresses: permessage-deflate (vosk clients offer it) would cost CPU for nothing.
    uvicorn.run(
        app,
        host=host or settings.host,
        port=port,
        ws_max_size=2**22,
        ws_per_message_deflate=False,
        log_level="warning",
    )
