"""The real eSpeak NG engine (ctypes on espeakng-loader's library) speaks Russian."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from services.common.audio import duration_s
from services.tts.espeak import EspeakBackend


@pytest.fixture(scope="module")
def espeak() -> EspeakBackend:
    return EspeakBackend()


def _rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples**2)))


@pytest.mark.parametrize("rate", [8000, 16000, 24000, 48000])
def test_speaks_russian_at_each_rate(espeak: EspeakBackend, rate: int) -> None:
    pcm = espeak.render("Здравствуйте, вы позвонили на горячую линию.", "xenia", rate)
    seconds = duration_s(pcm, rate)
    assert 1.5 < seconds < 5.0  # eight words at a natural pace
    assert _rms(pcm) > 500  # audible speech, not silence


def test_longer_text_takes_longer_and_speed_changes_pace(espeak: EspeakBackend) -> None:
    text = "Да. Мы работаем ежедневно с девяти до двадцати часов."
    short = espeak.render("Да.", "xenia", 8000)
    long = espeak.render(text, "xenia", 8000)
    fast = espeak.render(text, "xenia", 8000, speed=1.5)
    assert duration_s(long, 8000) > 3 * duration_s(short, 8000)
    assert duration_s(fast, 8000) < 0.8 * duration_s(long, 8000)


def test_unknown_speaker_is_a_clear_error(espeak: EspeakBackend) -> None:
    with pytest.raises(ValueError, match="unknown speaker 'nobody'"):
        espeak.render("Привет", "nobody", 8000)


def test_concurrent_calls_are_serialized_not_mixed(espeak: EspeakBackend) -> None:
    text = "Телефон горячей линии восемь восемьсот."
    alone = espeak.render(text, "xenia", 8000)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: espeak.render(text, "xenia", 8000), range(8)))
    # eSpeak's voice variants jitter the waveform, so compare length and loudness, which a
    # mixed-up callback buffer (two syntheses interleaved) would change.
    assert all(len(r) == len(alone) for r in results)
    assert all(_rms(r) > 500 for r in results)


def test_backends_created_and_dropped_while_others_speak_share_one_library() -> None:
    # Each service, test and benchmark builds its own backend; the C library behind them is one
    # global state, so a backend made (or collected) mid-synthesis must not re-initialise it.
    text = "Приём показаний счётчиков с пятнадцатого по двадцать пятое число."

    def speak(_: int) -> int:
        backend = EspeakBackend()
        return len(backend.render(text, "aidar", 8000))

    with ThreadPoolExecutor(4) as pool:
        lengths = list(pool.map(speak, range(16)))
    # The male variants jitter the length by a few samples; a mixed-up buffer would double it.
    assert max(lengths) < 1.02 * min(lengths) and min(lengths) > 8000 * 2 * 2
