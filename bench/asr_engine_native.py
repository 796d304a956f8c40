"""What the native settings under Kaldi are worth (services/common/native.py, graph.py).

The same engine-only measure as bench/asr_engine_scaling.py (N warm recognizers of the static
graph taking turns, 100 ms chunks, one thread, CPU seconds per audio second), each setting in a
process of its own, added one at a time to the baseline (how Vosk runs out of the box):
1. baseline: glibc malloc, OpenBLAS's own kernel pick, Vosk's 20-frame nnet chunks;
2. + OpenBLAS kernels named by the CPU's flags (OPENBLAS_CORETYPE);
3. + 51-frame chunks (the static graph's conf/model.conf);
4. + mimalloc preloaded: what `voicebot serve` runs.
This machine's speed drifts by ±15% from minute to minute, so the variants alternate, round
after round, and each is reported by its median, with its ratio to the baseline of the same run.

    .venv/bin/python -m bench.asr_engine_native [--recognizers 16] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.asr_engine_scaling import STATIC
from bench.asr_load import ROOT
from bench.local import korean_model, machine_note
from services.common import native

RESULTS = ROOT / "bench" / "results" / "asr_engine_native.md"
VARIANTS = [
    ("baseline: glibc malloc, OpenBLAS's own pick, 20-frame chunks", False, False, False),
    ("+ OpenBLAS kernels for the CPU's flags", True, False, False),
    ("+ 51-frame chunks", True, True, False),
    ("+ mimalloc (what `voicebot serve` runs)", True, True, True),
]


def vosk_default_chunks(static: Path, model: Path, out: Path) -> Path:
    """The compiled graph with the model's own conf/model.conf (Vosk's default chunking)."""
    for name in ("am", "ivector", "graph", "README"):
        (out / name).symlink_to(static / name)
    (out / "conf").mkdir()
    for conf in (model / "conf").iterdir():
        (out / "conf" / conf.name).write_bytes(conf.read_bytes())
    return out


def measure(folder: Path, recognizers: int, blas: bool, mimalloc: bool) -> tuple[float, str]:
    """(CPU s per audio s, OpenBLAS core) from a fresh process with these settings."""
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "OPENBLAS_CORETYPE")}
    if blas and (core := native.openblas_coretype(native.cpu_flags())):
        env["OPENBLAS_CORETYPE"] = core
    library = native.allocator_library()
    if mimalloc and library is not None:
        env["LD_PRELOAD"] = str(library)
    cmd = [sys.executable, "-m", "bench.asr_engine_native", "--one", str(folder)]
    out = subprocess.run(
        [*cmd, "--recognizers", str(recognizers)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    cost, core = out.stdout.split()[-2:]
    return float(cost), core


def one(folder: Path, recognizers: int) -> None:
    """Child process: print cost and the OpenBLAS core libvosk chose. Nothing of services.asr
    is imported before libvosk loads: it would name OpenBLAS's kernels (the variants do)."""
    import vosk

    from bench.asr_engine_scaling import cost
    from bench.asr_load import speech

    vosk.SetLogLevel(-1)
    model = vosk.Model(str(folder))
    audio = b"".join(speech("korean")[:4])
    core = native.openblas_core(Path(vosk.__file__).parent / "libvosk.so") or "?"
    print(f"{cost(model, audio, recognizers, passes=2, warm=1):.4f} {core}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recognizers", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--static-graph", type=Path, default=STATIC)
    parser.add_argument("--one", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one is not None:
        one(args.one, args.recognizers)
        return
    from services.asr import graph

    model = korean_model()
    graph.check(args.static_graph, model)  # compile it first: voicebot models compile-graph
    costs: dict[str, list[float]] = {name: [] for name, *_ in VARIANTS}
    cores: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        default = vosk_default_chunks(args.static_graph, model, Path(tmp))
        for n in range(args.rounds):
            for name, blas, chunks51, mimalloc in VARIANTS:
                folder = args.static_graph if chunks51 else default
                cost, cores[name] = measure(folder, args.recognizers, blas, mimalloc)
                costs[name].append(cost)
                print(f"round {n + 1}: {name}: {cost:.4f} ({cores[name]})", flush=True)
    base = statistics.median(costs[VARIANTS[0][0]])
    rows = "".join(
        f"| {name} | {cores[name]} | {' / '.join(f'{c:.3f}' for c in costs[name])} "
        f"| {statistics.median(costs[name]):.3f} | {statistics.median(costs[name]) / base:.2f} "
        f"| {2 / statistics.median(costs[name]):.0f} |\n"
        for name, *_ in VARIANTS
    )
    text = (
        "# Native settings under Kaldi (bench/asr_engine_native.py)\n\n"
        f"Command: `.venv/bin/python -m bench.asr_engine_native --recognizers "
        f"{args.recognizers} --rounds {args.rounds}`\n\n"
        f"Engine only: {args.recognizers} warm recognizers of the Korean model's static graph "
        "taking turns on one thread, 100 ms chunks of 8 kHz Korean speech (as "
        "bench/asr_engine_scaling.py); each variant in a fresh process, the variants alternating "
        f"for {args.rounds} rounds.\n{machine_note()} CPU flags name OpenBLAS kernels "
        f"{native.openblas_coretype(native.cpu_flags())}.\n\n"
        "| variant | OpenBLAS core | CPU s per audio s, each round | median | vs baseline "
        "| streams 2 cores could hold |\n|---|---|---|---|---|---|\n"
        + rows
        + "\nThe last column is the engine-only bound (no sockets, VAD or callers).\n"
    )
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
