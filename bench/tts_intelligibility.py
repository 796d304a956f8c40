"""TTS intelligibility: synthesize every demo answer, transcribe it with the Russian Vosk model,
report the word error rate against the normalized text (target ≤ 10 %).

Run: .venv/bin/python -m bench.tts_intelligibility [--engine auto|silero|espeak]
Runs only where the Russian Vosk model is installed; otherwise says so (and writes that).
Writes bench/results/tts_intelligibility.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from services.common.config import Settings
from services.tts.engine import load_local_synthesizer

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "tts_intelligibility.md"
RATE = 16000
TARGET_WER = 0.10


def answers(kb_dir: Path) -> list[str]:
    """Every answer text of the knowledge base (slot templates left out: no value to say)."""

    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "answers" and isinstance(value, list):
                    yield from (v for v in value if isinstance(v, str))
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    found: list[str] = []
    for path in sorted(kb_dir.rglob("*.yaml")):
        found += walk(yaml.safe_load(path.read_text(encoding="utf-8")))
    return [a for a in found if "{" not in a]


def words(text: str) -> list[str]:
    return re.findall(r"[а-я]+", text.lower().replace("+", "").replace("ё", "е"))


def wer(reference: list[str], hypothesis: list[str]) -> tuple[int, int]:
    """(edit distance in words, reference length)."""
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        prev, row[0] = row[0], i
        for j, hyp in enumerate(hypothesis, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ref != hyp))
    return row[-1], len(reference)


def transcribe(model: Any, pcm: bytes) -> str:
    import vosk

    recognizer = vosk.KaldiRecognizer(model, RATE)
    for start in range(0, len(pcm), 8000):
        recognizer.AcceptWaveform(pcm[start : start + 8000])
    return str(json.loads(recognizer.FinalResult())["text"])


def write(report: str) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(report + "\n", encoding="utf-8")
    print(report)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default=None, help="auto | silero | espeak")
    args = parser.parse_args()
    settings = Settings()
    header = [
        "# TTS intelligibility",
        "",
        "Command: `.venv/bin/python -m bench.tts_intelligibility` · "
        + time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "",
    ]
    model_path = settings.vosk_model_path
    if not (model_path / "am" / "final.mdl").is_file():
        write(
            "\n".join(
                [
                    *header,
                    f"**Not run:** the Russian Vosk model is not installed at {model_path} "
                    "(`voicebot models fetch`, or VOICEBOT_MODELS_SRC). "
                    "No word error rate is claimed.",
                ]
            )
        )
        return

    import vosk

    synthesizer = load_local_synthesizer(settings, args.engine)
    model = vosk.Model(str(model_path))
    texts = answers(settings.kb_dir)
    rows, errors, total = [], 0, 0
    for text in texts:
        reference = words(synthesizer.normalized(text))
        pcm = asyncio.run(synthesizer.synthesize(text, RATE))
        heard = transcribe(model, pcm)
        e, n = wer(reference, words(heard))
        errors, total = errors + e, total + n
        rows.append(f"| {e / max(n, 1):.0%} | {text[:70]} | {heard[:70]} |")
    overall = errors / max(total, 1)
    verdict = "meets" if overall <= TARGET_WER else "misses"
    write(
        "\n".join(
            [
                *header,
                f"Engine: {synthesizer.name} ({synthesizer.reason}); model {model_path.name}; "
                f"{len(texts)} answers, {total} words.",
                "",
                f"**Word error rate {overall:.1%}** — {verdict} the ≤ {TARGET_WER:.0%} target.",
                "",
                "| WER | answer | heard |",
                "|---|---|---|",
                *rows,
            ]
        )
    )
    synthesizer.close()


if __name__ == "__main__":
    main()
