"""Word error rate of the Russian Vosk model on real Russian telephone speech.

Run: .venv/bin/python -m bench.asr_wer_ru [--model DIR] [--limit N]
Speech: Asterisk's Russian prompts (Debian asterisk-core-sounds-ru-wav, 8 kHz), with their texts
from the package's core-sounds-ru.txt. Each prompt goes through the embedded engine as one
8 kHz telephone stream. Needs the Russian model (`voicebot models fetch`); where it is not
installed it says so and measures nothing: the Korean model here cannot judge Russian words.
Writes bench/results/asr_wer_ru.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import re
from pathlib import Path

from num2words import num2words

from bench.asr_load import PROMPTS, ROOT
from services.asr.cli import transcribe
from services.asr.engine import ModelUnavailable, VoskRecognizer
from services.common.audio import read_wav
from services.common.config import Settings

TEXTS = [
    Path("/usr/share/doc/asterisk-core-sounds-ru/core-sounds-ru.txt.gz"),
    Path("/usr/share/doc/asterisk-core-sounds-ru-wav/core-sounds-ru.txt.gz"),
    Path("/usr/share/asterisk/sounds/ru/core-sounds-ru.txt"),
]
RESULTS = ROOT / "bench" / "results" / "asr_wer_ru.md"


def prompt_texts() -> dict[str, str]:
    """`name: text` lines; bracketed ones ([beep]) are not speech."""
    for path in TEXTS:
        if path.is_file():
            raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
            texts = {}
            for line in raw.decode("utf-8").splitlines():
                name, sep, text = line.partition(":")
                if sep and not line.startswith(";") and text.strip() and "[" not in text:
                    texts[name.strip()] = text.strip()
            return texts
    raise SystemExit(f"prompt texts not found in {', '.join(map(str, TEXTS))}")


def words(text: str) -> list[str]:
    """Lower case, ё as е, numbers spelt out, no punctuation: how Vosk writes its output."""
    text = re.sub(r"\d+", lambda m: f" {num2words(int(m.group()), lang='ru')} ", text.lower())
    return re.sub(r"[^а-яa-z ]+", " ", text.replace("ё", "е").replace("-", " ")).split()


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


async def main(model: Path, limit: int) -> str:
    try:
        recognizer = VoskRecognizer(model)
    except ModelUnavailable as exc:
        return (
            "# Russian WER (bench/asr_wer_ru.py): not measured\n\n"
            f"Cannot run here: {exc.reason}. Only the Korean model can be loaded on this "
            "machine, and it cannot judge Russian words. Run this where the Russian model "
            "is installed.\n"
        )
    texts = prompt_texts()
    rows, errors, total = [], 0, 0
    for name, text in sorted(texts.items())[:limit]:
        path = PROMPTS / f"{name}.wav"
        if not path.is_file():
            continue
        pcm, rate = read_wav(path)
        hyp = await transcribe(recognizer, pcm, rate)
        ref = words(text)
        dist = edit_distance(ref, words(hyp.text))
        errors, total = errors + dist, total + len(ref)
        rows.append(f"| {name} | {' '.join(ref)} | {hyp.text} | {dist}/{len(ref)} |")
    return (
        "# Russian WER on Asterisk prompts (bench/asr_wer_ru.py)\n\n"
        f"Command: `.venv/bin/python -m bench.asr_wer_ru --limit {limit}`\n\n"
        f"Model: {model}. {len(rows)} prompts, {total} reference words.\n\n"
        f"**WER {100 * errors / max(total, 1):.1f} %**\n\n"
        "| prompt | reference | recognized | errors |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--limit", type=int, default=200)
    arguments = parser.parse_args()
    report = asyncio.run(main(arguments.model or Settings().vosk_model_path, arguments.limit))
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(report)
    print(report)
