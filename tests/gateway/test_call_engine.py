"""Unit tests of the call state machine with small fake engines (no sockets).

These check the code around the engines; the end-to-end tests use the real ones.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from services.asr.base import ENDPOINT_DEFAULT, ENDPOINT_DICTATION
from services.common.audio import read_wav, split_frames
from services.gateway.call.bot import TRANSITIONS, BotParty, State
from services.gateway.call.leg import Audio, Digit, HangUp, Text
from services.gateway.call.policy import CallPolicy

from .fakes import CODE, fake_engines
from .harness import CallHarness


async def test_greeting_then_typed_question_gets_events_and_audio():
    h = CallHarness(fake_engines())
    h.start()
    await h.wait_playback_end(0)
    h.send(Text("у меня вопрос"))
    await h.wait_playback_end(1)
    kinds = [e.type for e in h.out.events if e.type not in ("state",)]
    assert kinds[:4] == ["started", "reply", "playback", "playback"]
    turn1 = [e for e in h.out.events if getattr(e, "turn", None) == 1 and e.type != "state"]
    assert [e.type for e in turn1] == ["transcript", "intent", "reply", "playback", "playback"]
    assert turn1[1].intent == "faq" and turn1[1].decision == "answer"
    assert turn1[-1].status == "finished"
    assert len(h.out.frames) == 20  # two replies of 200 ms in 20 ms frames
    assert h.call.state is State.LISTENING
    h.send(HangUp())
    record = await h.task
    assert record.outcome == "answered" and record.end_reason == "caller_hangup"
    assert record.turns[1].latency_ms["first_frame"] >= record.turns[1].latency_ms["matched"]


async def test_reply_audio_is_paced_in_real_time():
    h = CallHarness(fake_engines(reply_s=1.0))
    h.start()
    await h.wait_playback_end(0)
    times = [t for t, _ in h.out.frames]
    assert len(times) == 50
    assert 0.95 <= times[-1] - times[0] <= 1.05  # 49 intervals of 20 ms, not a burst
    h.send(None)
    await h.task


async def test_dtmf_zero_transfers_at_any_time():
    h = CallHarness(fake_engines(reply_s=2.0))
    h.start()
    await h.out.wait_for(lambda e: e.type == "playback")
    h.send(Digit("0"))  # while the greeting still plays
    record = await asyncio.wait_for(h.task, 5)
    handoff = h.out.of("handoff")[0]
    assert (handoff.queue, handoff.reason) == ("operators", "dtmf")
    assert record.outcome == "transferred" and record.end_reason == "transfer"
    assert h.out.events[-1].type == "hangup"


async def test_digits_form_one_entry_closed_by_hash():
    h = CallHarness(fake_engines())
    h.start()
    await h.wait_playback_end(0)
    for d in "123#":
        h.send(Digit(d))
    event = await h.out.wait_for(lambda e: e.type == "transcript" and e.final)
    assert (event.text, event.source) == ("123", "dtmf")
    await h.wait_playback_end(1)
    h.send(None)
    await h.task


async def test_expected_digits_bias_the_recognizer_for_that_turn_only():
    """A digit slot: grammar and dictation endpointing for the next turn, "0" is a digit,
    the entry ends at its length without "#"; then back to the full model and defaults."""
    policy = CallPolicy(dtmf_interdigit_s=30)  # only the length can end the entry in time
    h = CallHarness(fake_engines(), policy)
    h.start()
    await h.wait_playback_end(0)
    stream = h.call._engines.recognizer.streams[0]
    assert stream.biased == []  # nothing expected after the greeting
    h.send(Text("код"))
    await h.wait_playback_end(1)
    assert stream.biased == [("phrases", CODE.phrases), ("endpointing", ENDPOINT_DICTATION)]
    assert h.call._tracker.endpoint_ms == 1250  # our VAD waits longer too (500 × 1500 / 600)
    for d in "1204":
        h.send(Digit(d))
    event = await h.out.wait_for(lambda e: e.type == "transcript" and e.final and e.turn == 2)
    assert (event.text, event.source) == ("1204", "dtmf")
    await h.wait_playback_end(2)
    assert stream.biased[2:] == [("phrases", None), ("endpointing", ENDPOINT_DEFAULT)]
    assert h.call._tracker.endpoint_ms == policy.endpoint_silence_ms
    h.send(None)
    record = await h.task
    code_turn = record.turns[2]
    assert code_turn.expect == CODE and record.turns[1].expect is None
    intent = next(e for e in h.out.of("intent") if e.turn == 1)
    assert intent.expect == CODE  # the timeline says what the bot listens for next


async def test_recognizer_without_runtime_grammars_gets_only_endpointing():
    h = CallHarness(fake_engines(grammar=False))
    h.start()
    await h.wait_playback_end(0)
    h.send(Text("код"))
    await h.wait_playback_end(1)
    assert h.call._engines.recognizer.streams[0].biased == [("endpointing", ENDPOINT_DICTATION)]
    h.send(None)
    await h.task


async def test_two_no_matches_hand_over_to_operator():
    h = CallHarness(fake_engines())
    h.start()
    await h.wait_playback_end(0)
    h.send(Text("абракадабра"))
    await h.wait_playback_end(1)
    h.send(Text("снова непонятно"))
    record = await asyncio.wait_for(h.task, 5)
    assert h.out.of("handoff")[0].reason == "no_match"
    assert record.outcome == "transferred"


async def test_silence_reprompts_then_transfers():
    policy = CallPolicy(silence_timeout_s=0.3, max_reprompts=2)
    h = CallHarness(fake_engines(), policy)
    h.start()
    record = await asyncio.wait_for(h.task, 10)
    assert [t.source for t in record.turns] == ["bot", "bot", "bot", "bot"]
    replies = [t for t in record.timeline if t.event["type"] == "handoff"]
    assert replies and replies[0].event["reason"] == "silence"


async def test_goodbye_ends_call_after_speaking():
    h = CallHarness(fake_engines())
    h.start()
    await h.wait_playback_end(0)
    h.send(Text("пока"))
    record = await asyncio.wait_for(h.task, 5)
    assert record.end_reason == "bot_goodbye" and record.outcome == "answered"
    assert h.out.of("playback")[-1].status == "finished"


async def test_caller_hangup_mid_reply_cleans_up_everything():
    before = len(asyncio.all_tasks())
    engines = fake_engines(reply_s=5.0)
    h = CallHarness(engines)
    h.start()
    await h.out.wait_for(lambda e: e.type == "playback")
    await asyncio.sleep(0.1)
    h.send(None)  # the transport saw EOF
    record = await asyncio.wait_for(h.task, 2)
    assert record.outcome == "abandoned"
    assert engines.recognizer.streams[0].closed
    assert len(asyncio.all_tasks()) == before
    assert h.out.of("playback")[-1].status == "interrupted"


async def test_vanished_peer_ends_call():
    h = CallHarness(fake_engines(reply_s=2.0))

    async def broken(frame: bytes) -> None:
        raise ConnectionResetError

    h.out.audio = broken
    h.start()
    record = await asyncio.wait_for(h.task, 3)
    assert record.end_reason == "disconnect"


async def test_voice_turn_from_partial_to_final_via_endpoint():
    h = CallHarness(fake_engines())
    h.start()
    await h.wait_playback_end(0)
    tone = (np.sin(np.arange(16000 * 0.6) / 16000 * 2 * np.pi * 200) * 8000).astype("<i2").tobytes()
    for frame in split_frames(tone, 16000):
        h.send(Audio(frame))
    await h.out.wait_for(lambda e: e.type == "transcript" and not e.final)
    # The fake stream only finalises on finish(): without real speech the VAD never endpoints,
    # so the recognizer's own final must come from finish() at hangup - not a turn.
    h.send(HangUp())
    await h.task


async def test_barge_in_with_real_speech_stops_playback(espeak_wav):
    speech, _ = read_wav(espeak_wav("здравствуйте, у меня вопрос про пенсию", "ru", "barge"), 16000)
    h = CallHarness(fake_engines(reply_s=4.0))
    h.start()
    await h.out.wait_for(lambda e: e.type == "playback")
    await asyncio.sleep(0.3)
    for frame in split_frames(speech, 16000):
        h.send(Audio(frame))
        await asyncio.sleep(0.02)
        if h.out.of("barge_in"):
            break
    assert h.out.of("barge_in"), "caller speech during playback must interrupt it"
    stop = await h.wait_playback_end(0)
    assert stop.status == "interrupted"
    assert h.call.state in (State.LISTENING, State.THINKING)
    h.send(None)
    await h.task


async def test_echo_of_the_bots_own_voice_is_not_barge_in(espeak_wav):
    """Feed the bot's own output back 20 dB down (a phone line's echo): playback continues."""
    engines = fake_engines()
    speech, _ = read_wav(espeak_wav("добрый день, это горячая линия", "ru", "echo"), 16000)

    async def speak(text, rate):
        return speech

    engines.speech.synthesize = speak
    h = CallHarness(engines)
    h.start()
    await h.out.wait_for(lambda e: e.type == "playback")
    sent = 0
    while not h.out.of("playback")[1:]:
        await asyncio.sleep(0.02)
        frames = h.out.frames[sent:]
        sent += len(frames)
        for _, frame in frames:
            echo = (np.frombuffer(frame, "<i2") * 0.1).astype("<i2").tobytes()
            h.send(Audio(echo))
    assert not h.out.of("barge_in")
    assert h.out.of("playback")[1].status == "finished"
    h.send(None)
    await h.task


def test_state_machine_is_explicit():
    assert State.TRANSFER not in TRANSITIONS and State.ENDED not in TRANSITIONS
    assert State.LISTENING in TRANSITIONS[State.SPEAKING]  # barge-in / reply done
    assert State.GREETING not in {s for targets in TRANSITIONS.values() for s in targets}


async def test_illegal_transition_is_refused():
    call = BotParty(fake_engines(), CallPolicy())
    call.state = State.TRANSFER
    with pytest.raises(RuntimeError):
        call._set(State.LISTENING)


async def test_phone_call_without_recognition_goes_to_an_operator():
    engines = fake_engines()

    async def overloaded(sample_rate, phrases=None, endpointing=None):
        raise RuntimeError("recognizer overloaded")

    engines.recognizer.open_stream = overloaded
    h = CallHarness(engines, idle_silence=True)
    h.start()
    record = await asyncio.wait_for(h.task, 5)
    assert record.outcome == "transferred" and record.handoff_reason == "asr_unavailable"
    assert h.out.of("error")[0].code == "asr_unavailable"


async def test_websocket_call_without_recognition_still_takes_typed_questions():
    engines = fake_engines()

    async def broken(sample_rate, phrases=None, endpointing=None):
        raise RuntimeError("model gone")

    engines.recognizer.open_stream = broken
    h = CallHarness(engines)
    h.start()
    started = await h.out.wait_for(lambda e: e.type == "started")
    assert started.inputs == ["text", "dtmf"] and started.degraded
    await h.wait_playback_end(0)
    h.send(Text("вопрос"))
    await h.wait_playback_end(1)
    h.send(None)
    assert (await h.task).outcome == "answered"


async def test_short_interjection_pauses_then_the_bot_carries_on(espeak_wav):
    """~300 ms of real speech (an "угу") over the bot: it pauses, then resumes; no barge-in."""
    speech, _ = read_wav(espeak_wav("угу, да, понятно, хорошо", "ru", "uhu"), 16000)
    samples = np.frombuffer(speech, "<i2")
    start = int(np.flatnonzero(np.abs(samples) > 1000)[0])
    chunk = samples[start : start + 16000 * 300 // 1000].astype(np.float32)
    short = (chunk * (16000 / np.abs(chunk).max())).astype("<i2").tobytes()  # a caller's level
    engines = fake_engines()
    voice, _ = read_wav(espeak_wav("добрый день, это справочная линия города", "ru", "bot"), 16000)

    async def speak(text, rate):
        return voice  # the bot talks at a real voice's level

    engines.speech.synthesize = speak
    h = CallHarness(engines)
    h.start()
    await h.out.wait_for(lambda e: e.type == "playback")
    await asyncio.sleep(0.5)
    for frame in [*split_frames(short, 16000), *[b"\0" * 640] * 40]:
        h.send(Audio(frame))
        await asyncio.sleep(0.02)
    end = await h.wait_playback_end(0)
    assert end.status == "finished" and not h.out.of("barge_in")
    assert any(e.event["type"] == "barge_in_ignored" for e in h.call.record.timeline)
    h.send(None)
    await h.task
