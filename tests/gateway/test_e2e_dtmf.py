"""Key menus, digit entry and per-turn grammars end to end: the real gateway, KB, eSpeak NG and
Vosk, over the WebSocket (dtmf messages) and AudioSocket (DTMF frames), plus `voicebot call`."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np

from services.common.audio import pcm16_to_float
from services.dialog.engine import DialogEngine
from services.dialog.session import ALWAYS_HEARD
from services.gateway.call.policy import CallPolicy, HandoffTarget
from services.gateway.simulator import AudioSocketCaller, Turn, WebSocketCaller

from .conftest import audiosocket_address, running_gateway, ws_url

# A long inter-digit pause: any entry answered well within it was not waiting for the pause.
PATIENT = CallPolicy(dtmf_interdigit_s=5.0, handoff_to=HandoffTarget.DIALPLAN)
METER_KEYS = [Turn("dtmf", "1234567890"), Turn("dtmf", "123#"), Turn("dtmf", "45#")]
SAID_BACK = "Код плательщика 1 2 3 4 5 6 7 8 9 0, холодная вода 123, горячая вода 45"
SLOTS = {"payer": "1234567890", "cold": "123", "hot": "45"}


def voiced_seconds(pcm: bytes, rate: int) -> float:
    """Seconds of audible audio (not silence frames) in 20 ms frames."""
    size = rate // 50
    samples = pcm16_to_float(pcm)
    frames = samples[: samples.size // size * size].reshape(-1, size)
    return float((np.sqrt((frames**2).mean(axis=1)) > 0.01).sum() * 0.02)


def entry_waits_ms(record: dict) -> list[float]:
    """Per key entry: ms from its last key to the turn it became (no wait: a few ms)."""
    waits, last_key = [], None
    for entry in record["timeline"]:
        event = entry["event"]
        if event["type"] == "dtmf":
            last_key = entry["t_ms"]
        elif event["type"] == "transcript" and event.get("source") == "dtmf" and event["final"]:
            waits.append(entry["t_ms"] - last_key)
    return waits


def check_meter_record(record: dict) -> None:
    turns = [t for t in record["turns"] if t["source"] == "dtmf"]
    payer, cold, hot = turns[-3:]
    assert [t["transcript"] for t in (payer, cold, hot)] == ["1234567890", "123", "45"]
    assert payer["expect"]["kind"] == "digits" and payer["expect"]["slot"] == "payer"
    assert payer["expect"]["endpointing"] == "dictation"
    assert "[unk]" in payer["expect"]["phrases"] and "оператор" in payer["expect"]["phrases"]
    assert payer["slots"] == {"payer": "1234567890"}
    assert (hot["intent"], hot["decision"], hot["slots"]) == ("meter_submit", "answer", SLOTS)
    assert SAID_BACK in hot["reply"]
    assert record["outcome"] == "answered"


async def test_menu_pick_and_meter_readings_by_keys_over_websocket(gateway_with) -> None:
    with gateway_with(PATIENT) as url:
        caller = WebSocketCaller(ws_url(url))
        result = await caller.run(
            # A caller keys in as soon as they hear their option; the key stops the reading.
            [
                Turn("text", "что вы умеете"),
                Turn("dtmf", "4", barge_in=True),
                Turn("dtmf", "3"),
                *METER_KEYS,
            ]
        )
    menu, transport, meters, *_, done = result.turns
    assert menu.intent == "menu" and "нажмите 4" in menu.reply
    assert (transport.heard, transport.intent) == ("4", "transport")
    assert transport.latency_ms is not None and transport.latency_ms < 2500  # not 5 s
    assert meters.intent == "meter_submit" and "код плательщика" in meters.reply
    assert SAID_BACK in done.reply
    assert voiced_seconds(done.reply_audio, 16000) > 4  # eSpeak says it all back
    check_meter_record(result.record)
    assert all(wait < 1000 for wait in entry_waits_ms(result.record)), result.record["timeline"]
    menu_turn = result.record["turns"][2]
    assert menu_turn["expect"]["kind"] == "menu" and menu_turn["expect"]["dtmf_max_length"] == 1


async def test_menu_and_meter_readings_by_dtmf_frames_over_audiosocket(gateway_with) -> None:
    with gateway_with(PATIENT) as url:
        caller = AudioSocketCaller(audiosocket_address(url), url)
        # 9 is not in the main menu: the bot reads it; 3 then picks the meter readings.
        result = await caller.run(
            [Turn("dtmf", "9"), Turn("dtmf", "3", barge_in=True), *METER_KEYS]
        )
    menu, meters, *_, done = result.turns
    assert menu.intent == "menu" and "нажмите 3" in menu.reply
    assert meters.intent == "meter_submit"
    assert meters.latency_ms is not None and meters.latency_ms < 2500
    assert voiced_seconds(done.reply_audio, 8000) > 4
    check_meter_record(result.record)
    assert result.record["transport"] == "audiosocket"
    assert all(wait < 1000 for wait in entry_waits_ms(result.record)), result.record["timeline"]


async def test_star_still_reaches_an_operator_during_digit_entry(gateway) -> None:
    result = await WebSocketCaller(ws_url(gateway)).run(
        [Turn("text", "примите показания счетчиков"), Turn("dtmf", "12*")]
    )
    assert result.handoff is not None and result.handoff["reason"] == "dtmf"
    assert result.record["outcome"] == "transferred"


def test_voicebot_call_with_dtmf(gateway) -> None:
    """The simulator command still drives key presses: the main menu from the greeting."""
    out = subprocess.run(
        [
            *(sys.executable, "-m", "services.cli", "call"),
            *("--to", ws_url(gateway), "--api", gateway, "--json", "--no-record"),
            *("--dtmf", "2"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    turn = json.loads(out.stdout.splitlines()[0])
    assert (turn["input"], turn["heard"], turn["intent"]) == ("dtmf: 2", "2", "housing_services")
    assert "539-53-53" in turn["reply"]


KOREAN_KB = """\
scenarios:
  - id: number_word
    title: Korean number words, for the Korean model that stands in for the Russian one
    examples: [назовите число]
    slots:
      word: {entity: numbers, prompt: "Какое число?"}
    answers: ["Число {word}."]
  - id: line_cost
    title: Стоимость звонка
    examples: [сколько стоит звонок]
    answers: ["Звонок бесплатный."]
entities:
  numbers:
    values: [{name: 일}, {name: 이}, {name: 삼}, {name: 사}]
"""
GRAMMAR = {"일", "이", "삼", "사"}


async def test_entity_slot_grammar_biases_real_vosk_for_one_turn_only(
    gateway_settings, engines, tmp_path, espeak_wav
) -> None:
    """The slot's names become Vosk's runtime grammar for the next turn: the same Korean
    sentence is heard as grammar words only while the slot is asked, and in full after."""
    (tmp_path / "kb.yaml").write_text(KOREAN_KB, encoding="utf-8")
    # The session's engines with this KB (eSpeak NG is one per process: never load a second).
    korean = dataclasses.replace(engines, dialog=DialogEngine.load(tmp_path))
    wav = str(espeak_wav("안녕하세요. 오늘 날씨가 아주 좋습니다.", "ko", "grammar-ko"))
    with running_gateway(gateway_settings, korean) as url:
        result = await WebSocketCaller(ws_url(url)).run(
            [
                Turn("text", "назовите число"),
                Turn("wav", wav),  # asked for the slot: grammar of its names
                Turn("text", "сколько стоит звонок"),  # another question: slot dropped
                Turn("wav", wav),  # the full model again
            ]
        )
    asked, biased, cost, full = result.turns
    assert asked.reply == "Какое число?" and cost.intent == "line_cost"
    assert biased.heard and set(biased.heard.split()) <= GRAMMAR, biased.heard
    assert set(full.heard.split()) - GRAMMAR, full.heard  # words outside the grammar again
    turns = [t for t in result.record["turns"] if t["source"] == "voice"]
    assert turns[0]["expect"]["kind"] == "entity"
    assert set(turns[0]["expect"]["phrases"]) == GRAMMAR | set(ALWAYS_HEARD)
    assert turns[1]["expect"] is None
