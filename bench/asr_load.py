"""Simulated telephone callers for the ASR benchmarks, speaking the vosk-server protocol.

Each caller plays real speech at 8 kHz paced in real time, one chunk per reply (lockstep, as
vosk clients do). The speech is Korean from eSpeak NG by default: the model here is Korean, and
a model hearing its own language is what production has (the Russian model hearing Russian).
`asterisk-ru` plays Asterisk's real Russian telephone prompts instead: the Korean model decodes
a language it does not know about 3x slower, a pessimistic bound. Two call shapes:
- continuous: prompts back to back, the caller never stops talking;
- realistic: after each prompt the caller is silent (listening) for twice as long, so speech is
  a third of the call; the silence is still sent, as a phone line sends it. Callers start at a
  random point of that talk/listen cycle: calls that all speak at once would measure a burst.
Final-result lag is measured at the end of every utterance (`{"reset" : 1}` when the server has
it, else `{"eof" : 1}` at the end of a call): the time from the end of the utterance's audio to
its final result. The server runs in its own process; its CPU and memory are read from /proc.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import websockets

from bench.local import product_env, rss_mib
from services.common.audio import read_wav

ROOT = Path(__file__).resolve().parents[1]
PROMPTS = Path("/usr/share/asterisk/sounds/ru")
RATE = 8000
CHUNK_S = 0.1


KOREAN = [
    "안녕하세요 저는 학생입니다 오늘 날씨가 좋네요",
    "하나 둘 셋 넷 다섯 여섯 일곱 여덟",
    "서울 부산 대구 인천 광주 대전 울산",
    "고객 센터에 전화해 주셔서 감사합니다",
    "잠시만 기다려 주시면 상담원을 연결해 드리겠습니다",
    "주문 번호를 말씀해 주세요",
    "영업 시간은 오전 아홉 시부터 오후 여섯 시까지입니다",
    "다시 한 번 말씀해 주시겠어요",
]


def speech(kind: str = "korean", limit: int = 40) -> list[bytes]:
    """Utterances as 8 kHz PCM: `korean` (eSpeak NG) or `asterisk-ru` (1.5-6 s prompts)."""
    if kind == "korean":
        with tempfile.TemporaryDirectory() as tmp:
            clips = []
            for i, text in enumerate(KOREAN):
                path = Path(tmp) / f"{i}.wav"
                subprocess.run(["espeak-ng", "-v", "ko", "-w", str(path), text], check=True)
                clips.append(read_wav(path, RATE)[0])
            return clips
    if not PROMPTS.is_dir():
        sys.exit(f"{PROMPTS} missing: install Debian asterisk-core-sounds-ru-wav")
    clips = []
    for path in sorted(PROMPTS.glob("*.wav")):
        pcm, _ = read_wav(path, RATE)
        if 1.5 <= len(pcm) / 2 / RATE <= 6:
            clips.append(pcm)
        if len(clips) == limit:
            break
    return clips


@dataclass
class Server:
    """A server process and what it costs."""

    proc: subprocess.Popen
    url: str

    def cpu_s(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        return rss_mib(self.proc.pid)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_server(cmd: Sequence[str], port: int, env: dict[str, str] | None = None) -> Server:
    # The server's log goes to a file: a pipe nobody reads would fill up and stall the server.
    log = tempfile.NamedTemporaryFile(prefix="asr-bench-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        list(cmd), env=product_env(**(env or {})), stdout=log, stderr=subprocess.STDOUT
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {Path(log.name).read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return Server(proc, f"ws://127.0.0.1:{port}")
        except OSError:
            time.sleep(0.3)
    proc.kill()
    raise RuntimeError(f"server did not start in 120 s; its log: {log.name}")


def our_server(model: Path, port: int, max_streams: int = 400, graph: Path | None = None) -> Server:
    # exactly `voicebot serve asr` (the console script runs services.cli:app)
    cmd = [sys.executable, "-m", "services.cli", "serve", "asr", "--model", str(model)]
    cmd += ["--port", str(port)] + (["--graph", str(graph)] if graph else [])
    cmd += ["--max-streams", str(max_streams), "--idle-timeout", "900"]
    return start_server(cmd, port)


@dataclass
class Tally:
    final_lag: list[float] = field(default_factory=list)
    chunk_lag: list[float] = field(default_factory=list)
    audio_s: float = 0.0
    shed: int = 0
    errors: list[str] = field(default_factory=list)


async def caller(
    url: str, clips: list[bytes], realistic: bool, stop_at: float, tally: Tally, reset: bool
) -> None:
    """One telephone line: calls of ~15 s back to back until `stop_at`."""
    rng = random.Random(id(tally) ^ int(time.monotonic() * 1e6))
    size = int(RATE * CHUNK_S) * 2
    cycle = 3 * sum(map(len, clips)) // len(clips)  # a mean clip and its listening time
    lead = b"\0" * (rng.randrange(cycle) // size * size) if realistic else b""
    while time.monotonic() < stop_at:
        try:
            async with websockets.connect(url, max_size=2**22, open_timeout=30) as ws:
                await ws.send(json.dumps({"config": {"sample_rate": RATE}}))
                start = time.monotonic()
                sent = 0.0  # audio seconds sent in this call
                utterance_end: float | None = None
                while sent < 15 and time.monotonic() < stop_at:
                    clip = rng.choice(clips)
                    audio = lead + clip + (b"\0" * (2 * len(clip)) if realistic else b"")
                    speech_chunks = -(-(len(lead) + len(clip)) // size)
                    lead = b""
                    for i in range(0, len(audio), size):
                        due = start + sent + CHUNK_S
                        await asyncio.sleep(max(0.0, due - time.monotonic()))
                        t0 = time.monotonic()
                        await ws.send(audio[i : i + size])
                        json.loads(await ws.recv())
                        tally.chunk_lag.append(time.monotonic() - t0)
                        sent += CHUNK_S
                        tally.audio_s += CHUNK_S
                        if i // size == speech_chunks - 1:
                            utterance_end = start + sent
                            if reset:
                                await ws.send('{"reset" : 1}')
                                json.loads(await ws.recv())
                                tally.final_lag.append(time.monotonic() - utterance_end)
                await ws.send('{"eof" : 1}')
                reply = json.loads(await ws.recv())
                if not reset:
                    tally.final_lag.append(time.monotonic() - (start + sent))
                if "error" in reply:
                    tally.errors.append(reply["error"])
        except websockets.ConnectionClosed as exc:
            if exc.rcvd is not None and exc.rcvd.code == 1013:
                tally.shed += 1
                await asyncio.sleep(1)
            else:
                tally.errors.append(repr(exc))
        except (OSError, TimeoutError) as exc:
            tally.errors.append(repr(exc))
            await asyncio.sleep(1)


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Level:
    streams: int
    mode: str
    final_p50_ms: float
    final_p95_ms: float
    chunk_p95_ms: float
    cpu_per_audio_s: float
    cpu_cores: float
    client_cores: float  # the simulated callers share the machine with the server
    finals: int
    shed: int
    errors: int
    rss_mb: float


async def run_level(
    server: Server, clips: list[bytes], streams: int, realistic: bool, seconds: float, reset: bool
) -> Level:
    tally = Tally()
    cpu0, client0, t0 = server.cpu_s(), time.process_time(), time.monotonic()
    stop_at = t0 + seconds
    tasks = []
    for _ in range(streams):  # stagger call starts over a second, as real calls are
        line = caller(server.url, clips, realistic, stop_at, tally, reset)
        tasks.append(asyncio.create_task(line))
        await asyncio.sleep(1.0 / streams)
    rss = 0.0
    while time.monotonic() < stop_at - 1:
        await asyncio.sleep(1)
        rss = max(rss, server.rss_mb())
    await asyncio.gather(*tasks)
    cpu = server.cpu_s() - cpu0
    wall = time.monotonic() - t0
    return Level(
        streams=streams,
        mode="realistic" if realistic else "continuous",
        final_p50_ms=1000 * pct(tally.final_lag, 0.5),
        final_p95_ms=1000 * pct(tally.final_lag, 0.95),
        chunk_p95_ms=1000 * pct(tally.chunk_lag, 0.95),
        cpu_per_audio_s=cpu / tally.audio_s if tally.audio_s else float("nan"),
        cpu_cores=cpu / wall,
        client_cores=(time.process_time() - client0) / wall,
        finals=len(tally.final_lag),
        shed=tally.shed,
        errors=len(tally.errors),
        rss_mb=rss,
    )


async def warm_up(server: Server, clips: list[bytes], streams: int) -> None:
    """Make `streams` recognizers and decode every clip once on each: a new recognizer spends
    seconds of CPU expanding its lookahead graph; ours are then reused by later calls. All
    connections stay open until the end, so each one really has a recognizer of its own."""
    sockets = [await websockets.connect(server.url, open_timeout=60) for _ in range(streams)]
    sem = asyncio.Semaphore(os.cpu_count() or 2)

    async def decode(ws: websockets.ClientConnection) -> None:
        async with sem:
            await ws.send(json.dumps({"config": {"sample_rate": RATE}}))
            size = int(RATE * CHUNK_S) * 2
            for clip in clips:  # as the callers will send it: the graph states reached match
                for i in range(0, len(clip), size):
                    await ws.send(clip[i : i + size])
                    await ws.recv()
                await ws.send('{"reset" : 1}')
                await ws.recv()

    await asyncio.gather(*(decode(ws) for ws in sockets))
    for ws in sockets:
        await ws.close()


def table(levels: list[Level]) -> str:
    head = (
        "| mode | streams | final lag p50 ms | final lag p95 ms | chunk reply p95 ms "
        "| server CPU s per audio s | server CPU (cores) | callers' CPU (cores) | finals | shed "
        "| errors | RSS MB |\n"
        "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
    )
    return head + "".join(
        f"| {x.mode} | {x.streams} | {x.final_p50_ms:.0f} | {x.final_p95_ms:.0f} | "
        f"{x.chunk_p95_ms:.0f} | {x.cpu_per_audio_s:.3f} | {x.cpu_cores:.2f} | "
        f"{x.client_cores:.2f} | {x.finals} | "
        f"{x.shed} | {x.errors} | {x.rss_mb:.0f} |\n"
        for x in levels
    )
