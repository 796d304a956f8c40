"""`voicebot tts` as an editor uses it: write a WAV, or print the reading."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from services.tts.cli import tts_command

app = typer.Typer()
app.command("tts")(tts_command)
app.command("other")(lambda: None)  # two commands, so `tts` is a subcommand as in `voicebot`


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOICEBOT_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("VOICEBOT_MODELS_DIR", str(tmp_path / "models"))


def test_print_normalized() -> None:
    result = CliRunner().invoke(
        app, ["tts", "--print-normalized", "Звоните 8-800-2000-112 с 9:00 до 18:00."]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == (
        "Звоните восемь, восемьсот, две тысячи, сто двенадцать с девяти до восемнадцати часов."
    )


def test_writes_wav_at_rate(tmp_path: Path) -> None:
    out = tmp_path / "out.wav"
    result = CliRunner().invoke(app, ["tts", "Добрый день! Чем могу помочь?", "-o", str(out)])
    assert result.exit_code == 0, result.output
    with wave.open(str(out)) as wav:
        assert wav.getframerate() == 8000
        assert 1.0 < wav.getnframes() / 8000 < 6
    assert "by espeak" in result.stdout
    assert "voicebot models fetch" in result.stderr  # the fallback is said, not hidden
    out16 = tmp_path / "out16.wav"
    CliRunner().invoke(app, ["tts", "Да.", "-o", str(out16), "--rate", "16000"])
    with wave.open(str(out16)) as wav:
        assert wav.getframerate() == 16000


def test_ssml_and_errors(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["tts", "--ssml", "--print-normalized", '<speak>Да<break time="300ms"/>нет</speak>']
    )
    assert result.stdout.strip() == "Да <pause 300 ms> нет"
    bad = CliRunner().invoke(app, ["tts", "Да", "-o", str(tmp_path / "x.wav"), "--rate", "1000"])
    assert bad.exit_code == 2 and "unsupported sample rate 1000" in bad.stderr
    bad = CliRunner().invoke(app, ["tts", "Да", "--engine", "festival"])
    assert bad.exit_code == 2 and "unknown TTS engine" in bad.output
