"""`voicebot serve` (the whole bot in one process) and `voicebot call` (the caller simulator)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from services.common import native
from services.common.config import get_settings


def serve_bot(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="listen address (default VOICEBOT_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="HTTP port (default VOICEBOT_PORT)")] = None,
) -> None:
    """Run the whole bot in one process: gateway, ASR, dialog and TTS."""
    if ctx.invoked_subcommand is not None:
        return
    settings = get_settings()
    native.reexec_with_allocator("services.cli", settings.allocator)
    import uvicorn

    from services.common.logging import configure
    from services.gateway.app import create_app

    configure(settings.log_level, settings.log_json)
    uvicorn.run(
        create_app(settings),
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level.lower(),
        ws_max_size=1 << 20,
        ws_per_message_deflate=False,  # call audio barely compresses; deflate only costs CPU
    )


def call_command(
    wavs: Annotated[
        list[Path] | None, typer.Argument(help="caller turns as WAV files, in order")
    ] = None,
    to: Annotated[
        str, typer.Option("--to", help="ws://host:port/call or audiosocket://host:port")
    ] = "ws://127.0.0.1:8080/call",
    api: Annotated[
        str, typer.Option(help="the gateway's HTTP address, for AudioSocket call records")
    ] = "http://127.0.0.1:8080",
    text: Annotated[list[str] | None, typer.Option("--text", help="a typed caller turn")] = None,
    dtmf: Annotated[
        list[str] | None, typer.Option("--dtmf", help="keys pressed as one turn")
    ] = None,
    silence: Annotated[
        list[float] | None, typer.Option("--silence", help="seconds of silence")
    ] = None,
    barge_in: Annotated[
        bool, typer.Option(help="start each turn while the bot still speaks")
    ] = False,
    rate: Annotated[
        int | None, typer.Option(help="call sample rate (WebSocket 16000, AudioSocket 8000)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object per turn")] = False,
    save_dir: Annotated[
        Path | None, typer.Option(help="keep the bot's reply audio as WAVs")
    ] = None,
    record: Annotated[bool, typer.Option(help="print the call record at the end")] = True,
) -> None:
    """Call the bot like a caller would; every WAV or --text is one turn, played in real time.

    Turns run in this order: WAV files, then --text, then --dtmf, then --silence.
    """
    from services.common.audio import write_wav
    from services.gateway.simulator import AudioSocketCaller, Turn, WebSocketCaller

    turns = [Turn("wav", str(w), barge_in) for w in wavs or []]
    turns += [Turn("text", t, barge_in) for t in text or []]
    turns += [Turn("dtmf", d, barge_in) for d in dtmf or []]
    turns += [Turn("silence", str(s)) for s in silence or []]
    if to.startswith("audiosocket://"):
        rate = rate or 8000
        caller: AudioSocketCaller | WebSocketCaller = AudioSocketCaller(
            to.removeprefix("audiosocket://"), api, sample_rate=rate
        )
    else:
        rate = rate or 16000
        caller = WebSocketCaller(to, sample_rate=rate)
    try:
        result = asyncio.run(caller.run(turns))
    except (OSError, TimeoutError, ConnectionError, ValueError) as exc:
        typer.echo(f"voicebot call: {exc}", err=True)
        raise typer.Exit(1) from exc
    if save_dir is not None:
        save_dir.mkdir(parents=True, exist_ok=True)
        for n, turn in enumerate(result.turns, 1):
            if turn.reply_audio:
                write_wav(save_dir / f"turn{n:02d}.wav", turn.reply_audio, rate)
    for n, turn in enumerate(result.turns, 1):
        row = {
            "turn": n,
            "input": turn.turn.label,
            "heard": turn.heard,
            "intent": turn.intent,
            "score": turn.score,
            "decision": turn.decision,
            "reply": turn.reply,
            "latency_ms": turn.latency_ms,
            "playback": turn.playback,
            "barge_in": turn.barged_in,
        }
        if as_json:
            typer.echo(json.dumps(row, ensure_ascii=False))
        else:
            score = f"{turn.score:.2f}" if turn.score is not None else "-"
            typer.echo(
                f"#{n} [{turn.turn.label}]\n   heard:   {turn.heard!r}\n"
                f"   intent:  {turn.intent} (score {score}, {turn.decision})\n"
                f"   reply:   {turn.reply}\n   latency: {turn.latency_ms} ms to first reply audio"
                + (" (barge-in)" if turn.barged_in else "")
            )
    summary = {
        "call_id": result.call_id,
        "handoff": result.handoff,
        "hangup": result.hangup,
        "errors": result.errors,
    }
    if record:
        summary["record"] = result.record
    typer.echo(json.dumps(summary, ensure_ascii=False, indent=None if as_json else 2))
