"""TTS speed: real-time factor per sample rate and engine, time to first audio (streaming vs
whole answer), cache-hit latency, and how many simultaneous uncached syntheses the machine
serves before first audio takes longer than 1 s.

Run: .venv/bin/python -m bench.tts_speed [--quick]
Engines: eSpeak NG always; Silero when its weights are installed (then also torch threads 1 vs 2).
Writes bench/results/tts_speed.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import AsyncGenerator, Callable
from pathlib import Path

from services.common.audio import duration_s
from services.common.config import Settings
from services.tts.cache import TtsCache
from services.tts.espeak import EspeakBackend
from services.tts.silero import SileroUnavailable, silero_weights_path
from services.tts.synthesizer import SAMPLE_RATES, Backend, Synthesizer

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "tts_speed.md"
# A 3-sentence answer like the demo KB's; a counter makes each run uncached.
ANSWER = (
    "Единая горячая линия по коронавирусу: 8-800-2000-112, вариант {n}. "
    "Мы работаем ежедневно с 9:00 до 20:00, без выходных и праздников. "
    "Звонок бесплатный с мобильного и со стационарного телефона из любого региона."
)
FIRST_AUDIO_LIMIT_S = 1.0


def backends(settings: Settings) -> dict[str, Callable[[int], Backend]]:
    """Engine name -> factory(torch_threads)."""
    found: dict[str, Callable[[int], Backend]] = {"espeak": lambda _threads: EspeakBackend()}
    weights = silero_weights_path(settings.models_dir)
    if weights.is_file():
        from services.tts.silero import SileroBackend

        found["silero"] = lambda threads: SileroBackend(weights, torch_threads=threads)
    return found


def fresh(n: int) -> str:
    return ANSWER.format(n=n)


async def rtf(synth: Synthesizer, rate: int, runs: int) -> float:
    took, audio = 0.0, 0.0
    for i in range(runs):
        started = time.perf_counter()
        pcm = await synth.synthesize(fresh(1000 * rate + i), rate)
        took += time.perf_counter() - started
        audio += duration_s(pcm, rate)
    return took / audio


async def first_audio(synth: Synthesizer, text: str, rate: int = 8000) -> float:
    started = time.perf_counter()
    stream = synth.stream(text, rate)
    try:
        await anext(stream)
        return time.perf_counter() - started
    finally:
        # the rest of the answer is not part of this measurement
        if isinstance(stream, AsyncGenerator):
            await stream.aclose()


async def whole_answer(synth: Synthesizer, text: str, rate: int = 8000) -> float:
    started = time.perf_counter()
    await synth.synthesize(text, rate)
    return time.perf_counter() - started


async def cache_hit_ms(synth: Synthesizer, runs: int) -> tuple[float, float]:
    text = fresh(-1)
    await synth.prerender([text])
    whole, first = [], []
    for _ in range(runs):
        whole.append(await whole_answer(synth, text) * 1000)
        first.append(await first_audio(synth, text) * 1000)
    return statistics.median(whole), statistics.median(first)


async def concurrency(synth: Synthesizer, limit: int, seed: int) -> tuple[int, list[str]]:
    """Largest N (doubling) whose slowest first audio stays ≤ 1 s; the table of each step."""
    rows, best, n = [], 0, 1
    while n <= limit:
        texts = [fresh(seed + n * 1000 + i) for i in range(n)]
        firsts = await asyncio.gather(*(first_audio(synth, t) for t in texts))
        worst, median = max(firsts), statistics.median(firsts)
        rows.append(f"| {n} | {median * 1000:.0f} | {worst * 1000:.0f} |")
        if worst > FIRST_AUDIO_LIMIT_S:
            break
        best, n = n, n * 2
    return best, rows


async def run(quick: bool) -> str:
    settings = Settings()
    runs = 2 if quick else 5
    lines = [
        "# TTS speed",
        "",
        f"Command: `.venv/bin/python -m bench.tts_speed{' --quick' if quick else ''}` · "
        f"{os.cpu_count()} cores · {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        "**Machine shared with other agents' work while this ran: figures are indicative; "
        "re-run on a quiet machine for the closing note.**",
        "",
    ]
    found = backends(settings)
    if "silero" not in found:
        lines += [
            f"Silero: not measured — weights not installed at "
            f"{silero_weights_path(settings.models_dir)} (`voicebot models fetch`). "
            "eSpeak NG only; torch threads 1 vs 2 needs Silero.",
            "",
        ]
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in found.items():
            thread_options = (1, 2) if name == "silero" else (1,)
            for threads in thread_options:
                backend = make(threads)
                label = f"{name}" + (f", torch threads {threads}" if name == "silero" else "")
                uncached = Synthesizer(backend, speaker=settings.tts_speaker)
                await uncached.synthesize("Прогрев.", 8000)  # first call loads dictionaries
                lines += [
                    f"## {label}",
                    "",
                    "| rate, Hz | RTF (render time / audio time) |",
                    "|---|---|",
                ]
                for rate in SAMPLE_RATES:
                    lines.append(f"| {rate} | {await rtf(uncached, rate, runs):.3f} |")
                streamed = [await first_audio(uncached, fresh(50 + i)) for i in range(runs)]
                whole = [await whole_answer(uncached, fresh(80 + i)) for i in range(runs)]
                cached = Synthesizer(
                    backend,
                    speaker=settings.tts_speaker,
                    cache=TtsCache(Path(tmp) / f"{name}-{threads}"),
                )
                hit_whole, hit_first = await cache_hit_ms(cached, runs * 10)
                best, rows = await concurrency(uncached, 8 if quick else 64, seed=7000 * threads)
                lines += [
                    "",
                    "Time to first audio, 3-sentence uncached answer at 8 kHz (median of "
                    f"{runs}): streaming **{statistics.median(streamed) * 1000:.0f} ms**, "
                    f"whole answer first **{statistics.median(whole) * 1000:.0f} ms**.",
                    "",
                    f"Cache hit (disk cache, same answer): whole answer {hit_whole:.2f} ms, "
                    f"first sentence {hit_first:.2f} ms (median of {runs * 10}).",
                    "",
                    f"Simultaneous uncached answers with every first audio ≤ 1 s: **{best}**"
                    + (" (the quick run stops at 8)" if quick and best == 8 else ""),
                    "",
                    "| simultaneous | median first audio, ms | slowest first audio, ms |",
                    "|---|---|---|",
                    *rows,
                    "",
                ]
                uncached.close()
                cached.close()
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs (shared machine)")
    args = parser.parse_args()
    try:
        report = asyncio.run(run(args.quick))
    except SileroUnavailable as exc:
        raise SystemExit(str(exc)) from None
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report + "\n", encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
