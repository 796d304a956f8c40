"""End to end over real sockets with the real engines: Vosk (Korean model), eSpeak NG, the KB."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import wave

import httpx
import numpy as np
import pytest
import websockets

from services.common.audio import duration_s, pcm16_to_float
from services.common.config import Settings
from services.gateway.call.policy import CallPolicy, HandoffTarget
from services.gateway.engines import load_engines
from services.gateway.simulator import Turn, WebSocketCaller

from .conftest import active_calls, running_gateway, ws_url


def speech_seconds(pcm: bytes) -> float:
    """Seconds of audible audio (not silence frames)."""
    samples = pcm16_to_float(pcm)
    frames = samples[: samples.size // 320 * 320].reshape(-1, 320)
    return float((np.sqrt((frames**2).mean(axis=1)) > 0.01).sum() * 320 / 16000)


def test_healthz_and_readyz_say_what_is_loaded(gateway):
    assert httpx.get(gateway + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(gateway + "/readyz").json()
    assert ready["ready"] is True
    assert ready["engines"]["asr"]["engine"] == "vosk" and ready["engines"]["asr"]["loaded"]
    assert ready["engines"]["tts"]["engine"] == "espeak"
    assert ready["engines"]["dialog"]["scenarios"] >= 5
    assert ready["degraded"] is True  # no Silero weights on this machine
    assert any(r.startswith("TTS fell back to eSpeak NG because") for r in ready["reasons"])
    assert ready["inputs"] == ["audio", "text", "dtmf"]


async def test_typed_russian_questions_get_the_right_scenario_and_spoken_reply(gateway):
    caller = WebSocketCaller(ws_url(gateway))
    result = await caller.run(
        [Turn("text", "сколько стоит звонок"), Turn("text", "как работает горячая линия")]
    )
    assert result.greeting.startswith("Здравствуйте")
    cost, hours = result.turns
    assert (cost.intent, cost.decision) == ("line_cost", "answer")
    assert "бесплатн" in cost.reply
    assert hours.intent == "line_hours" and "круглосуточно" in hours.reply
    for turn in result.turns:
        assert turn.playback == "finished"
        assert speech_seconds(turn.reply_audio) > 1.0  # eSpeak's spoken answer, not silence
        assert 0 < turn.latency_ms < 3000
    assert result.record["outcome"] == "answered"
    assert [t["intent"] for t in result.record["turns"][1:]] == ["line_cost", "line_hours"]


async def test_wav_through_real_vosk_gives_transcripts_and_a_reply(gateway, espeak_wav):
    """Korean speech for the Korean model: Vosk hears words, the (Russian) KB then answers."""
    wav = espeak_wav("안녕하세요. 오늘 날씨가 아주 좋습니다.", "ko", "greeting-ko")
    result = await WebSocketCaller(ws_url(gateway)).run([Turn("wav", str(wav))])
    turn = result.turns[0]
    assert turn.partials, "streaming recognition sends partial transcripts"
    assert turn.heard and any("\uac00" <= ch <= "\ud7a3" for ch in turn.heard)  # Hangul words
    assert turn.decision in ("answer", "clarify", "handoff") and turn.reply
    assert turn.latency_ms is not None and speech_seconds(turn.reply_audio) > 0.5


@pytest.mark.russian_models
async def test_spoken_russian_question_round_trip(
    russian_vosk_model, engines, espeak_wav, tmp_path
):
    settings = Settings(asr_model=russian_vosk_model, data_dir=tmp_path)
    with running_gateway(settings, load_engines(settings)) as url:
        wav = espeak_wav("сколько стоит звонок на горячую линию", "ru", "cost-ru")
        result = await WebSocketCaller(ws_url(url)).run([Turn("wav", str(wav))])
    assert result.turns[0].intent == "line_cost"


async def test_handoff_over_websocket_names_queue_and_reason(gateway):
    result = await WebSocketCaller(ws_url(gateway)).run(
        [Turn("text", "соедините меня с оператором")]
    )
    assert result.handoff == {
        "type": "handoff",
        "queue": "operators",
        "reason": result.handoff["reason"],
    }
    assert result.turns[0].reply and speech_seconds(result.turns[0].reply_audio) > 0.5
    assert result.hangup["outcome"] == "transferred"
    assert (
        result.record["outcome"] == "transferred" and result.record["handoff_queue"] == "operators"
    )
    route = httpx.get(f"{gateway}/v1/calls/{result.call_id}/route")
    assert route.text == "operators"


async def test_dtmf_zero_reaches_an_operator(gateway):
    result = await WebSocketCaller(ws_url(gateway)).run([Turn("dtmf", "0")])
    assert result.handoff["reason"] == "dtmf"
    assert result.record["outcome"] == "transferred"
    assert any(e["event"]["type"] == "dtmf" for e in result.record["timeline"])


async def _events_until(ws, kind: str, timeout: float = 15.0) -> list[dict]:
    seen: list[dict] = []
    async with asyncio.timeout(timeout):
        while True:
            message = await ws.recv()
            if isinstance(message, str):
                seen.append(json.loads(message))
                if seen[-1]["type"] == kind:
                    return seen


async def test_malformed_messages_get_clear_errors_and_the_call_goes_on(gateway):
    async with websockets.connect(ws_url(gateway)) as ws:
        await ws.send(json.dumps({"type": "start", "caller_id": "fuzz", "sample_rate": 16000}))
        await _events_until(ws, "started")
        await ws.send("{not json")
        await ws.send(json.dumps({"type": "teleport"}))
        await ws.send(json.dumps({"type": "dtmf", "digit": "xx"}))
        await ws.send(b"\x01\x02\x03")  # half a sample
        errors = [e for e in await _events_until(ws, "error") if e["type"] == "error"]
        for _ in range(3):
            errors += [e for e in await _events_until(ws, "error") if e["type"] == "error"]
        assert [e["code"] for e in errors] == [
            "bad_message",
            "bad_message",
            "bad_message",
            "bad_audio",
        ]
        assert "unknown message type 'teleport'" in errors[1]["message"]
        await ws.send(json.dumps({"type": "text", "text": "сколько стоит звонок"}))
        events = await _events_until(ws, "reply")
        assert events[-1]["text"].startswith("Звонок бесплатный")


async def test_bad_start_message_closes_cleanly(gateway):
    async with websockets.connect(ws_url(gateway)) as ws:
        await ws.send(json.dumps({"type": "start", "sample_rate": 44100}))
        error = json.loads(await ws.recv())
        assert (
            error["type"] == "error"
            and error["code"] == "bad_start"
            and "sample_rate" in error["message"]
        )
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd.code == 1008


async def test_caller_disconnecting_mid_reply_leaks_nothing(gateway):
    await asyncio.sleep(0.2)
    tasks_before = httpx.get(gateway + "/readyz").json()["tasks"]
    async with websockets.connect(ws_url(gateway)) as ws:
        await ws.send(json.dumps({"type": "start", "caller_id": "leaver", "sample_rate": 8000}))
        started = (await _events_until(ws, "started"))[-1]
        await ws.send(json.dumps({"type": "text", "text": "сколько стоит звонок"}))
        while not isinstance(await ws.recv(), bytes):  # reply audio is flowing
            pass
        assert active_calls(gateway) == 1
    deadline = time.monotonic() + 5
    while active_calls(gateway) and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert active_calls(gateway) == 0
    assert httpx.get(gateway + "/readyz").json()["tasks"] <= tasks_before
    record = httpx.get(f"{gateway}/v1/calls/{started['call_id']}").json()
    assert record["end_reason"] in ("caller_hangup", "disconnect")
    assert record["turns"][-1]["decision"] == "answer"


def test_degraded_without_asr_model_still_answers_typed_questions(tmp_path):
    settings = Settings(asr_model=tmp_path / "no-such-model", data_dir=tmp_path)
    engines = load_engines(settings)
    assert engines.recognizer is None
    with running_gateway(settings, engines) as url:
        ready = httpx.get(url + "/readyz").json()
        assert ready["degraded"] and ready["inputs"] == ["text", "dtmf"]
        assert any("speech recognition unavailable" in r for r in ready["reasons"])
        result = asyncio.run(
            WebSocketCaller(ws_url(url)).run([Turn("text", "сколько стоит звонок")])
        )
    assert result.turns[0].intent == "line_cost" and result.turns[0].reply_audio


def test_caller_simulator_cli_prints_each_turn(gateway, tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "services.cli",
            "call",
            "--to",
            ws_url(gateway),
            "--json",
            "--text",
            "сколько стоит звонок",
            "--save-dir",
            str(tmp_path),
            "--no-record",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    turn = rows[0]
    assert turn["heard"] == "сколько стоит звонок" and turn["intent"] == "line_cost"
    assert turn["decision"] == "answer" and turn["reply"].startswith("Звонок бесплатный")
    assert turn["latency_ms"] > 0
    saved = tmp_path / "turn01.wav"
    assert saved.is_file() and duration_s(saved.read_bytes()[44:], 16000) > 1.0


async def test_caller_speech_over_the_reply_barges_in(gateway, espeak_wav):
    """Real Silero VAD + real Vosk: speaking over the bot stops its reply; the new words count."""
    wav = espeak_wav("안녕하세요. 오늘 날씨가 아주 좋습니다.", "ko", "barge-ko")
    turns = [Turn("text", "сколько стоит звонок"), Turn("wav", str(wav), barge_in=True)]
    result = await WebSocketCaller(ws_url(gateway)).run(turns)
    answer, interruption = result.turns
    assert answer.intent == "line_cost"
    assert interruption.barged_in
    stops = [e for e in result.events if e["type"] == "playback" and e["status"] == "interrupted"]
    assert stops and stops[0]["turn"] == 1
    assert interruption.heard and interruption.reply
    assert result.record["turns"][1]["barged_in"] is True


async def test_stereo_recording_has_caller_left_and_bot_right(gateway_with, tmp_path, espeak_wav):
    wav = espeak_wav("안녕하세요. 감사합니다.", "ko", "rec-ko")
    policy = CallPolicy(recordings_dir=tmp_path, handoff_to=HandoffTarget.DIALPLAN)
    with gateway_with(policy) as url:
        result = await WebSocketCaller(ws_url(url)).run([Turn("wav", str(wav))])
    path = result.record["recording"]
    with wave.open(path) as recording:
        assert (recording.getnchannels(), recording.getframerate()) == (2, 16000)
        stereo = np.frombuffer(recording.readframes(recording.getnframes()), "<i2").reshape(-1, 2)
    caller, bot = stereo[:, 0].tobytes(), stereo[:, 1].tobytes()
    assert (
        speech_seconds(caller) > 0.5 and speech_seconds(bot) > 2.0
    )  # the question; greeting+reply
    # The caller spoke after the greeting: caller audio starts later than the bot's.
    assert np.argmax(np.abs(stereo[:, 0]) > 1000) > np.argmax(np.abs(stereo[:, 1]) > 1000)


def test_kb_admin_api_is_mounted(gateway):
    status = httpx.get(gateway + "/v1/kb/status").json()
    assert status["scenarios"] >= 5 and status["last_reload_ok"] is True
