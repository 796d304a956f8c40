"""The standalone TTS service over real HTTP: formats, streaming, errors, and the HTTP client."""

from __future__ import annotations

import asyncio
import io
import time
import wave
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from live_server import serve_in_thread

from services.common.audio import duration_s
from services.common.config import Settings
from services.tts.app import create_tts_app
from services.tts.cache import TtsCache
from services.tts.client import HttpSynthesizer, TtsServiceError
from services.tts.engine import load_synthesizer
from services.tts.espeak import EspeakBackend
from services.tts.synthesizer import Synthesizer

ANSWER = "Здравствуйте! Телефон горячей линии 8-800-200-34-11. Мы работаем с 9:00 до 20:00."


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`voicebot serve tts` as it runs: uvicorn on a real 127.0.0.1 socket, real eSpeak NG."""
    cache = TtsCache(tmp_path_factory.mktemp("tts") / "tts-cache")
    app = create_tts_app(Synthesizer(EspeakBackend(), speaker="xenia", cache=cache))
    with serve_in_thread(app) as port:
        yield f"http://127.0.0.1:{port}"


def _post(url: str, path: str = "/v1/synthesize", **body: object) -> httpx.Response:
    return httpx.post(url + path, json=body, timeout=30)


@pytest.mark.parametrize("rate", [8000, 16000, 24000, 48000])
def test_wav_at_each_rate(server: str, rate: int) -> None:
    response = _post(server, text=ANSWER, rate=rate)
    assert response.status_code == 200
    assert response.headers["content-type"] == "audio/wav"
    assert response.headers["x-tts-engine"] == "espeak"
    with wave.open(io.BytesIO(response.content)) as wav:
        assert wav.getframerate() == rate and wav.getnchannels() == 1 and wav.getsampwidth() == 2
        assert 4 < wav.getnframes() / rate < 20


def test_pcm_and_ulaw(server: str) -> None:
    pcm = _post(server, text="Спасибо за звонок.", rate=8000, format="pcm")
    ulaw = _post(server, text="Спасибо за звонок.", rate=8000, format="ulaw")
    assert pcm.headers["content-type"].startswith("audio/L16;rate=8000")
    assert ulaw.headers["content-type"].startswith("audio/PCMU;rate=8000")
    assert len(ulaw.content) * 2 == len(pcm.content)  # one byte per sample, same audio (cached)
    decoded = _ulaw_decode(ulaw.content)
    original = np.frombuffer(pcm.content, "<i2").astype(np.float64)
    snr = 10 * np.log10(np.sum(original**2) / np.sum((original - decoded) ** 2))
    assert snr > 30  # G.711 μ-law gives ~38 dB on speech


def _ulaw_decode(data: bytes) -> np.ndarray:
    u = ~np.frombuffer(data, np.uint8).astype(np.int32) & 0xFF
    sign, exponent, mantissa = u & 0x80, (u >> 4) & 0x07, u & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign, -magnitude, magnitude).astype(np.float64)


def test_ssml_request(server: str) -> None:
    ssml = (
        '<speak>Звоните <say-as interpret-as="telephone">122</say-as>.'
        '<break time="1s"/><prosody rate="slow">Мы работаем до '
        '<say-as interpret-as="time">18:00</say-as>.</prosody></speak>'
    )
    response = _post(server, ssml=ssml, rate=8000, format="pcm")
    assert response.status_code == 200
    samples = np.frombuffer(response.content, "<i2")
    # The one-second break is there: a run of ≥ 0.9 s of digital silence.
    silent = np.abs(samples) < 50
    longest, run = 0, 0
    for s in silent:
        run = run + 1 if s else 0
        longest = max(longest, run)
    assert longest >= 0.9 * 8000


def test_streaming_sends_sentences_as_they_are_ready(server: str) -> None:
    text = ANSWER.replace("Здравствуйте!", "Добрый день!")  # not cached yet
    chunks, first_at, started = [], None, time.monotonic()
    body = {"text": text, "rate": 16000, "format": "pcm"}
    with httpx.stream("POST", server + "/v1/synthesize/stream", json=body, timeout=30) as resp:
        assert resp.status_code == 200
        for chunk in resp.iter_raw():
            first_at = first_at or time.monotonic() - started
            chunks.append(chunk)
    pcm = b"".join(chunks)
    assert 4 < duration_s(pcm, 16000) < 20
    assert first_at is not None and first_at < 2.0


def test_streaming_wav_has_a_header(server: str) -> None:
    body = {"text": "Спасибо.", "rate": 8000}
    with httpx.stream("POST", server + "/v1/synthesize/stream", json=body, timeout=30) as resp:
        data = resp.read()
    assert data[:4] == b"RIFF" and data[8:12] == b"WAVE"


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({"text": ""}, 400, "empty text"),
        ({"text": "   \n "}, 400, "empty text"),
        ({"text": "а" * 6000}, 413, "text too long"),
        ({"text": "да", "speaker": "nobody"}, 400, "unknown speaker 'nobody'"),
        ({"text": "да", "rate": 44100}, 400, "unsupported sample rate 44100"),
        ({"text": "да", "format": "mp3"}, 422, "format"),
        ({}, 422, "exactly one of `text` or `ssml`"),
        ({"text": "да", "ssml": "<speak>да</speak>"}, 422, "exactly one of"),
        ({"ssml": "<speak>да"}, 400, "malformed SSML"),
        ({"ssml": '<speak><break time="1h"/></speak>'}, 400, "milliseconds or seconds"),
        ({"ssml": '<speak><say-as interpret-as="money">5</say-as></speak>'}, 400, "say-as"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/synthesize", "/v1/synthesize/stream"])
def test_bad_requests_get_clear_4xx(
    server: str, path: str, body: dict, status: int, detail: str
) -> None:
    response = _post(server, path, **body)
    assert response.status_code == status
    assert detail in response.text


def test_health_ready_and_speakers(server: str) -> None:
    assert httpx.get(server + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(server + "/readyz").json()
    assert ready["tts"]["engine"] == "espeak"
    assert "xenia" in httpx.get(server + "/v1/speakers").json()["speakers"]


async def test_http_client_is_a_speech_synthesizer(server: str, tmp_path: Path) -> None:
    settings = Settings(tts_url=server, data_dir=tmp_path)
    client = load_synthesizer(settings)
    assert isinstance(client, HttpSynthesizer)
    assert client.describe()["engine"] == "espeak"  # what the service runs, shown in /readyz
    pcm = await client.synthesize(ANSWER, 8000)
    assert 4 < duration_s(pcm, 8000) < 20
    chunks = [c async for c in client.stream(ANSWER, 8000)]
    assert all(len(c) % 2 == 0 for c in chunks)
    with pytest.raises(TtsServiceError, match="400 unsupported sample rate"):
        await client.synthesize("да", 11025)
    await client.aclose()


async def test_http_client_names_an_unreachable_service() -> None:
    client = HttpSynthesizer("http://127.0.0.1:9")
    assert "not reachable" in str(client.describe()["reason"])
    with pytest.raises(TtsServiceError, match="unreachable"):
        await client.synthesize("да", 8000)
    await client.aclose()


async def test_prerender_over_http_fills_the_service_cache(server: str) -> None:
    client = HttpSynthesizer(server)
    answer = "Линия работает круглосуточно. Звонок бесплатный."

    def entries() -> int:
        return int(httpx.get(server + "/readyz").json()["tts"]["cache"]["entries"])

    before = entries()
    await client.prerender([answer], sample_rates=(8000, 16000))
    deadline = time.monotonic() + 10
    while entries() < before + 4:  # two sentences at two rates, rendered in the background
        assert time.monotonic() < deadline, "prerender did not finish"
        await asyncio.sleep(0.05)
    hits_before = httpx.get(server + "/readyz").json()["tts"]["cache"]["hits"]
    assert _post(server, text=answer, rate=16000).status_code == 200
    hits_after = httpx.get(server + "/readyz").json()["tts"]["cache"]["hits"]
    assert hits_after - hits_before == 2  # both sentences came from the cache
    bad = _post(server, "/v1/prerender", texts=["да"], rates=[11025])
    assert bad.status_code == 422 and "unsupported sample rates [11025]" in bad.text
    await client.aclose()
