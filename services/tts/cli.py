"""`voicebot tts "текст" -o out.wav [--rate 8000]` and `voicebot serve tts`.

Engines are imported inside the commands so `voicebot --help` stays fast.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Annotated

import typer

from services.common.config import Settings

Engine = Annotated[
    str | None, typer.Option(help="auto | silero | espeak (default VOICEBOT_TTS_ENGINE)")
]
Speaker = Annotated[str | None, typer.Option(help="voice (default VOICEBOT_TTS_SPEAKER)")]


def tts_command(
    text: Annotated[str, typer.Argument(help="Russian text (or SSML with --ssml)")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="WAV file to write")] = None,
    rate: Annotated[int, typer.Option(help="sample rate: 8000, 16000, 24000, 48000")] = 8000,
    print_normalized: Annotated[
        bool, typer.Option("--print-normalized", help="print what the engine is given, and stop")
    ] = False,
    ssml: Annotated[bool, typer.Option("--ssml", help="TEXT is SSML")] = False,
    engine: Engine = None,
    speaker: Speaker = None,
) -> None:
    """Speak Russian text into a WAV file, or show how it will be read."""
    from services.common.audio import duration_s, write_wav
    from services.common.logging import configure
    from services.tts.engine import load_local_synthesizer
    from services.tts.synthesizer import InvalidRequest

    settings = Settings()
    configure("ERROR")  # stdout is the command's output; an eSpeak fallback is noted on stderr
    try:
        synthesizer = load_local_synthesizer(settings, engine)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--engine") from None
    if print_normalized and not ssml:
        typer.echo(synthesizer.normalized(text))
        return
    try:
        plan = synthesizer.plan(
            None if ssml else text, ssml=text if ssml else None, sample_rate=rate, speaker=speaker
        )
    except InvalidRequest as exc:
        typer.echo(f"voicebot tts: {exc}", err=True)
        raise typer.Exit(2) from None
    if print_normalized:
        typer.echo(" ".join(c.text or f"<pause {c.pause_ms} ms>" for c in plan.chunks))
        return
    if output is None:
        typer.echo("voicebot tts: give -o OUT.wav (or --print-normalized)", err=True)
        raise typer.Exit(2)

    async def render() -> bytes:
        return b"".join([pcm async for pcm in synthesizer.render_plan(plan)])

    started = time.monotonic()
    pcm = asyncio.run(render())
    took = time.monotonic() - started
    synthesizer.close()
    write_wav(output, pcm, rate)
    seconds = duration_s(pcm, rate)
    typer.echo(
        f"{output}: {seconds:.2f} s at {rate} Hz by {synthesizer.name} "
        f"in {took:.2f} s (RTF {took / max(seconds, 1e-9):.3f})"
    )
    if synthesizer.reason and synthesizer.degraded:
        typer.echo(f"note: {synthesizer.reason}", err=True)


def serve_tts(
    port: Annotated[int, typer.Option(help="TCP port")] = 8081,
    host: Annotated[str | None, typer.Option(help="interface (default VOICEBOT_HOST)")] = None,
    engine: Engine = None,
) -> None:
    """The standalone TTS service: POST /v1/synthesize and /v1/synthesize/stream."""
    import uvicorn

    from services.common.logging import configure
    from services.tts.app import create_tts_app
    from services.tts.engine import load_local_synthesizer

    settings = Settings()
    configure(settings.log_level, settings.log_json)
    app = create_tts_app(load_local_synthesizer(settings, engine))
    uvicorn.run(app, host=host or settings.host, port=port, log_level="warning")
