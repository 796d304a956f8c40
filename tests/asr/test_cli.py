"""`voicebot asr FILE.wav … [--json]` with the real Korean model."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx
import typer
import websockets
from live_server import free_port
from typer.testing import CliRunner

from services.asr.cli import asr_command
from services.common import native
from services.common.audio import read_wav, write_wav

from .helpers import SENTENCE, Speech, env_without_kernel_override


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command()(asr_command)
    return app


def test_asr_prints_transcripts_with_word_timings(
    korean_model_path: Path, espeak_wav, tmp_path: Path
) -> None:
    wav22k = espeak_wav(SENTENCE, voice="ko", name="cli")  # eSpeak writes 22.05 kHz
    pcm8k, _ = read_wav(wav22k, 8000)
    wav8k = tmp_path / "phone.wav"
    write_wav(wav8k, pcm8k, 8000)

    result = CliRunner().invoke(
        cli(), ["--json", "--model", str(korean_model_path), str(wav22k), str(wav8k)]
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    assert [r["file"] for r in records] == [str(wav22k), str(wav8k)]
    for record in records:
        assert record["text"] and record["duration_s"] > 2
        starts = [w["start"] for w in record["words"]]
        assert starts == sorted(starts) and record["words"][-1]["end"] <= record["duration_s"]

    plain = CliRunner().invoke(cli(), ["--model", str(korean_model_path), str(wav8k)])
    assert plain.exit_code == 0 and plain.output.startswith(f"{wav8k}: ") and len(plain.output) > 20


def test_asr_without_a_model_says_how_to_fetch_it(tmp_path: Path, espeak_wav) -> None:
    wav = espeak_wav("да", voice="ru", name="nomodel")
    result = CliRunner().invoke(cli(), ["--model", str(tmp_path / "missing"), str(wav)])
    assert result.exit_code == 2
    assert "voicebot models fetch" in result.output


async def test_voicebot_serve_asr_answers_a_vosk_client(
    korean_model_path: Path, sentence: Speech
) -> None:
    """`voicebot serve asr --port N` as a user starts it, spoken to like vosk's test.py does."""
    port = free_port()
    cmd = [sys.executable, "-m", "services.cli", "serve", "asr", "--port", str(port)]
    server = subprocess.Popen(
        [*cmd, "--model", str(korean_model_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env_without_kernel_override(),  # an admin's setting wins: test_native.py
    )
    try:
        async with httpx.AsyncClient() as client:
            for _ in range(200):
                assert server.poll() is None, server.stdout.read().decode() if server.stdout else ""
                try:
                    ready = (await client.get(f"http://127.0.0.1:{port}/readyz")).json()
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
        assert ready["asr"]["model"] == str(korean_model_path)
        # It restarted itself on mimalloc, and libvosk's OpenBLAS runs the CPU's own kernels.
        assert ready["asr"]["allocator"] == "mimalloc"
        assert "libmimalloc" in Path(f"/proc/{server.pid}/maps").read_text()
        if expected := native.openblas_coretype(native.cpu_flags()):
            assert ready["asr"]["openblas_core"] == ready["asr"]["openblas_cpu_pick"] == expected
        async with websockets.connect(f"ws://127.0.0.1:{port}") as ws:
            await ws.send('{ "config" : { "sample_rate" : 8000 } }')
            pcm = sentence.at(8000)
            for i in range(0, len(pcm), 3200):
                await ws.send(pcm[i : i + 3200])
                assert "partial" in json.loads(await ws.recv())
            await ws.send('{"eof" : 1}')
            assert json.loads(await ws.recv())["text"]
    finally:
        server.terminate()
        server.wait(10)
