"""ASR fixtures: the real Korean Vosk model loaded once per session, Korean speech from eSpeak NG,
and the standalone ASR service on a free 127.0.0.1 port."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import serve_in_thread

from services.asr.engine import VoskRecognizer
from services.asr.pool import DecoderPool
from services.asr.server import SessionLimits, create_app
from services.common.audio import read_wav

from .helpers import DIGITS, SENTENCE, Speech

MAX_STREAMS = 8  # small, so the overload test can reach it


@pytest.fixture(scope="session")
def recognizer(korean_model_path: Path) -> VoskRecognizer:
    return VoskRecognizer(korean_model_path, DecoderPool(max_streams=MAX_STREAMS))


def _speech(espeak_wav, text: str, name: str) -> Speech:
    path = espeak_wav(text, voice="ko", name=name)
    return Speech(read_wav(path, 8000)[0], read_wav(path, 16000)[0])


@pytest.fixture(scope="session")
def sentence(espeak_wav) -> Speech:
    return _speech(espeak_wav, SENTENCE, "sentence")


@pytest.fixture(scope="session")
def digits(espeak_wav) -> Speech:
    return _speech(espeak_wav, DIGITS, "digits")


@pytest.fixture(scope="session")
def asr_server(recognizer: VoskRecognizer) -> Iterator[str]:
    """`voicebot serve asr` as the CLI runs it, in a thread; yields its ws:// URL."""
    app = create_app(recognizer, SessionLimits(idle_timeout_s=2.0, max_chunk_s=5.0))
    with serve_in_thread(app, ws_max_size=2**22) as port:
        yield f"ws://127.0.0.1:{port}"
