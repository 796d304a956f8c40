"""The standalone ASR service against a real `websockets` client, as alphacep's
`websocket/test.py` drives vosk-server: config, lockstep replies, eof, reset, errors."""

from __future__ import annotations

import asyncio
import json
import warnings
from typing import Any

import httpx
import pytest
import websockets

from services.asr.engine import VoskRecognizer
from services.asr.remote import RemoteRecognizer

from .helpers import Speech, silence, wait_streams_closed

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop  # stdlib G.711 encoder (removed in 3.13): makes the μ-law/A-law test input

CHUNK_S = 0.2  # what test.py sends


def chunks(pcm: bytes, rate: int, width: int = 2) -> list[bytes]:
    size = int(rate * CHUNK_S) * width
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


async def lockstep(ws: Any, pcm: bytes, rate: int, width: int = 2) -> list[dict]:
    """Send each chunk and read exactly its one reply, like the public client does."""
    replies = []
    for chunk in chunks(pcm, rate, width):
        await ws.send(chunk)
        replies.append(json.loads(await ws.recv()))
    return replies


async def closed_with(ws: Any) -> tuple[list[dict], int]:
    """Remaining messages, then the close code."""
    messages = []
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            messages.append(json.loads(await asyncio.wait_for(ws.recv(), 10)))
    return messages, ws.close_code


async def test_config_lockstep_partials_final_with_words_and_eof(
    asr_server: str, sentence: Speech
) -> None:
    rate = 8000
    async with websockets.connect(asr_server) as ws:
        await ws.send(f'{{ "config" : {{ "sample_rate" : {rate} }} }}')  # test.py's bytes
        replies = await lockstep(ws, sentence.at(rate) + silence(0.4, rate), rate)
        await ws.send('{"eof" : 1}')
        last = json.loads(await ws.recv())
        rest, code = await closed_with(ws)
    assert code == 1000 and rest == []  # eof ends the session
    assert len(replies) == len(chunks(sentence.at(rate) + silence(0.4, rate), rate))
    assert all(set(r) == {"partial"} for r in replies)  # no endpoint yet: partials only
    assert any(r["partial"] for r in replies)
    assert last["text"]
    words = last["result"]
    assert " ".join(w["word"] for w in words) == last["text"]
    assert all(set(w) == {"word", "start", "end", "conf"} for w in words)


async def test_endpoint_in_the_stream_is_a_result_reply(asr_server: str, sentence: Speech) -> None:
    rate = 16000
    async with websockets.connect(asr_server) as ws:
        await ws.send(json.dumps({"config": {"sample_rate": rate}}))
        replies = await lockstep(ws, sentence.at(rate) + silence(1.5, rate), rate)
    results = [r for r in replies if "result" in r]
    assert len(results) == 1 and results[0]["text"]
    assert "partial" in replies[replies.index(results[0]) + 1]  # and the session goes on


async def test_reset_gives_the_final_and_the_session_goes_on(
    asr_server: str, sentence: Speech, digits: Speech
) -> None:
    rate = 8000
    async with websockets.connect(asr_server) as ws:
        await ws.send(json.dumps({"config": {"sample_rate": rate}}))
        await lockstep(ws, sentence.at(rate), rate)
        await ws.send('{"reset" : 1}')
        first = json.loads(await ws.recv())
        await lockstep(ws, digits.at(rate), rate)
        await ws.send('{"eof" : 1}')
        second = json.loads(await ws.recv())
    assert first["text"] and second["text"] and first["text"] != second["text"]
    assert second["result"][0]["start"] > first["result"][-1]["end"]  # one timeline per session


async def test_words_off_and_max_alternatives(asr_server: str, sentence: Speech) -> None:
    rate = 8000
    async with websockets.connect(asr_server) as ws:
        await ws.send(json.dumps({"config": {"sample_rate": rate, "words": 0}}))
        await lockstep(ws, sentence.at(rate), rate)
        await ws.send('{"eof" : 1}')
        plain = json.loads(await ws.recv())
    async with websockets.connect(asr_server) as ws:
        await ws.send(json.dumps({"config": {"sample_rate": rate, "max_alternatives": 3}}))
        await lockstep(ws, sentence.at(rate), rate)
        await ws.send('{"eof" : 1}')
        nbest = json.loads(await ws.recv())
    assert set(plain) == {"text"} and plain["text"]
    alternatives = nbest["alternatives"]
    assert 1 < len(alternatives) <= 3
    assert all({"text", "confidence", "result"} <= set(a) for a in alternatives)


async def test_phrase_list_restricts_the_vocabulary(asr_server: str, sentence: Speech) -> None:
    rate = 8000
    phrases = ["안녕하세요", "네", "아니요"]
    async with websockets.connect(asr_server) as ws:
        await ws.send(json.dumps({"config": {"sample_rate": rate, "phrase_list": phrases}}))
        await lockstep(ws, sentence.at(rate), rate)
        await ws.send('{"eof" : 1}')
        final = json.loads(await ws.recv())
    assert final["text"] and set(final["text"].split()) <= set(phrases)


@pytest.mark.parametrize(
    ("encoding", "encode"), [("mulaw", audioop.lin2ulaw), ("alaw", audioop.lin2alaw)]
)
async def test_g711_telephone_audio(asr_server: str, sentence: Speech, encoding, encode) -> None:
    rate = 8000
    payload = encode(sentence.at(rate), 2)
    async with websockets.connect(asr_server) as ws:
        await ws.send(json.dumps({"config": {"sample_rate": rate, "format": encoding}}))
        replies = await lockstep(ws, payload, rate, width=1)
        await ws.send('{"eof" : 1}')
        final = json.loads(await ws.recv())
    assert len(replies) == len(chunks(payload, rate, 1)) and final["text"]


async def test_remote_client_implements_the_same_interface(
    asr_server: str, recognizer: VoskRecognizer, sentence: Speech
) -> None:
    rate = 8000
    pcm = sentence.at(rate) + silence(1.5, rate)
    remote = RemoteRecognizer(asr_server)
    stream = await remote.open_stream(rate)
    try:
        replies = [await stream.feed(c) for c in chunks(pcm, rate)]
        await stream.set_phrases(["안녕하세요", "네"])
        biased = [await stream.feed(c) for c in chunks(pcm, rate)]
        tail = await stream.finish()
    finally:
        await stream.close()
    [final] = [r for r in replies if r.final]
    assert final.text and final.words and any(r.text for r in replies[: replies.index(final)])
    assert {w for r in biased if r.final for w in r.text.split()} <= {"안녕하세요", "네"}
    assert tail.final and tail.text == ""
    assert remote.describe()["mode"] == "remote"


async def test_metrics_and_readiness_endpoints(asr_server: str) -> None:
    http = asr_server.replace("ws://", "http://")
    async with httpx.AsyncClient() as client:
        metrics = (await client.get(f"{http}/metrics")).text
        ready = (await client.get(f"{http}/readyz")).json()
    for name in (
        "voicebot_asr_stream_lag_seconds_bucket",
        "voicebot_asr_pool_saturation",
        "voicebot_asr_streams",
        "voicebot_asr_rejected_total",
    ):
        assert name in metrics
    assert ready["asr"]["engine"] == "vosk" and ready["asr"]["model_rate"] == 16000


# --- bad input: a clear error, a clean close, nobody else disturbed --------------------------


@pytest.mark.parametrize(
    ("message", "code", "says"),
    [
        ("hello", 1003, "not JSON"),
        ('{"config": {"sample_rate": 8000, "colour": "red"}}', 1003, "colour"),
        ('{"config": {"sample_rate": 44100}}', 1003, "unsupported sample_rate"),
        ('{"config": {"sample_rate": 16000, "format": "mulaw"}}', 1003, "must be 8000"),
        ('{"config": {"max_alternatives": -1}}', 1003, "max_alternatives"),
        ('{"start": 1}', 1003, "unknown message"),
        ("[1, 2]", 1003, "expected one of"),
    ],
)
async def test_bad_text_messages(asr_server: str, message: str, code: int, says: str) -> None:
    async with websockets.connect(asr_server) as ws:
        await ws.send(message)
        messages, close_code = await closed_with(ws)
    assert close_code == code
    assert messages[-1]["code"] == code and says in messages[-1]["error"]


async def test_odd_length_frame_after_speech_keeps_what_was_heard(
    asr_server: str, sentence: Speech
) -> None:
    rate = 8000
    async with websockets.connect(asr_server) as ws:
        await ws.send(json.dumps({"config": {"sample_rate": rate}}))
        await lockstep(ws, sentence.at(rate), rate)
        await ws.send(b"\0" * 1601)
        messages, code = await closed_with(ws)
    assert code == 1007
    heard, error = messages
    assert heard["text"]  # nothing heard is lost
    assert "1601 bytes" in error["error"]


async def test_oversized_frame(asr_server: str) -> None:
    async with websockets.connect(asr_server) as ws:
        await ws.send(json.dumps({"config": {"sample_rate": 8000}}))
        await ws.send(b"\0" * (8000 * 2 * 6))  # 6 s of audio in one message; the cap is 5 s
        messages, code = await closed_with(ws)
    assert code == 1009 and "exceeds 5 s" in messages[-1]["error"]


async def test_client_that_never_sends_eof_gets_its_final_and_is_closed(
    asr_server: str, sentence: Speech
) -> None:
    rate = 8000
    async with websockets.connect(asr_server) as ws:
        await ws.send(json.dumps({"config": {"sample_rate": rate}}))
        await lockstep(ws, sentence.at(rate), rate)
        messages, code = await closed_with(ws)  # the fixture's idle timeout is 2 s
    assert code == 1000 and messages[0]["text"]


async def test_disconnect_mid_stream_leaves_other_streams_untouched(
    asr_server: str, recognizer: VoskRecognizer, sentence: Speech
) -> None:
    rate = 8000
    pcm = sentence.at(rate)

    async def quitter() -> None:
        ws = await websockets.connect(asr_server)
        await ws.send(json.dumps({"config": {"sample_rate": rate}}))
        for chunk in chunks(pcm, rate)[:5]:
            await ws.send(chunk)
        ws.transport.abort()  # gone without a close handshake, replies unread

    async def steady() -> str:
        async with websockets.connect(asr_server) as ws:
            await ws.send(json.dumps({"config": {"sample_rate": rate}}))
            await lockstep(ws, pcm, rate)
            await ws.send('{"eof" : 1}')
            return json.loads(await ws.recv())["text"]

    results = await asyncio.gather(steady(), *(quitter() for _ in range(3)), steady())
    assert results[0] and results[-1]
    await wait_streams_closed(recognizer)


async def test_overload_sheds_the_new_call_and_serves_the_others(
    asr_server: str, recognizer: VoskRecognizer, sentence: Speech
) -> None:
    rate = 8000
    await wait_streams_closed(recognizer)
    capacity = recognizer.pool.max_streams
    first_chunk = chunks(sentence.at(rate), rate)[0]
    held = []
    for _ in range(capacity):
        ws = await websockets.connect(asr_server)
        await ws.send(first_chunk)
        json.loads(await ws.recv())
        held.append(ws)
    try:
        async with websockets.connect(asr_server) as extra:
            await extra.send(first_chunk)
            messages, code = await closed_with(extra)
        assert code == 1013 and "capacity" in messages[-1]["error"]
        await held[0].send(first_chunk)  # the calls already in keep being served
        assert "partial" in json.loads(await held[0].recv())
    finally:
        for ws in held:
            await ws.close()
    await wait_streams_closed(recognizer)
