"""A phone-number answer, synthesized by the bot's TTS, transcribes back to the same words and
digits with the Russian Vosk model. Skipped (with the reason) where that model is not installed.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from services.common.config import Settings
from services.tts.engine import load_synthesizer
from services.tts.normalize import normalize

pytestmark = pytest.mark.russian_models


def _words(text: str) -> list[str]:
    return re.findall(r"[а-яё]+", text.lower().replace("+", ""))


def transcribe(model_path: Path, pcm: bytes, rate: int) -> str:
    import vosk

    recognizer = vosk.KaldiRecognizer(vosk.Model(str(model_path)), rate)
    for start in range(0, len(pcm), 8000):
        recognizer.AcceptWaveform(pcm[start : start + 8000])
    return str(json.loads(recognizer.FinalResult())["text"])


@pytest.mark.parametrize(
    "phone", ["8-800-200-34-11", "+7 495 777-77-77", "8-800-2000-112", "3210", "122"]
)
async def test_phone_answer_transcribes_back(
    russian_vosk_model: Path, tmp_path: Path, phone: str
) -> None:
    answer = f"Позвоните по номеру {phone}."
    synth = load_synthesizer(Settings(data_dir=tmp_path))
    pcm = await synth.synthesize(answer, 16000)
    heard = _words(transcribe(russian_vosk_model, pcm, 16000))
    digits_said = _words(normalize(phone if len(phone) > 4 else f"номер {phone}"))
    digits_said = [w for w in digits_said if w != "номер"]
    joined = " ".join(heard)
    assert " ".join(digits_said) in joined, f"said {digits_said}, heard {heard}"
