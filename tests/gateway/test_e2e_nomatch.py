"""The no-match rule and the conversation acts with the real dialog engine on the demo KB, through
the real call engine over a real WebSocket, with real eSpeak NG speech.

The dialog only says that it did not understand (Reply.reason NOT_UNDERSTOOD, a rephrase
prompt); the gateway counts such turns in a row and transfers at `CallPolicy.max_nomatch`.
"""

from __future__ import annotations

from services.dialog.engine import DialogEngine
from services.gateway.call.policy import CallPolicy
from services.gateway.engines import Engines
from services.gateway.simulator import AudioSocketCaller, Turn, WebSocketCaller

from .conftest import audiosocket_address, ws_url
from .test_e2e_websocket import speech_seconds


def _kb_phrase(engines: Engines) -> str:
    assert isinstance(engines.dialog, DialogEngine)  # the real one, not a stand-in
    return engines.dialog.snapshot.kb.settings.not_understood


async def test_two_misunderstood_turns_in_a_row_rephrase_then_transfer(gateway, engines):
    rephrase, transfer = _kb_phrase(engines), CallPolicy().transfer_text
    result = await WebSocketCaller(ws_url(gateway)).run(
        [
            Turn("text", "какая завтра погода в Сочи", barge_in=True),  # over the greeting
            Turn("text", "во сколько вы работаете"),  # understood: the count starts again
            Turn("text", "как приготовить борщ"),
            Turn("text", "курс доллара на сегодня"),
        ]
    )
    heard = [(t.decision, t.reply) for t in result.turns]
    assert heard == [
        ("clarify", rephrase),
        ("answer", heard[1][1]),
        ("clarify", rephrase),
        ("handoff", transfer),
    ]
    assert result.turns[1].intent == "line_hours"
    for turn in result.turns:  # the caller heard each of them spoken
        assert turn.playback == "finished" and speech_seconds(turn.reply_audio) > 0.5
    assert result.handoff is not None and result.handoff["reason"] == "no_match"
    assert result.handoff["queue"] == "operators"
    record = result.record
    assert record is not None
    assert (record["outcome"], record["handoff_reason"]) == ("transferred", "no_match")


async def test_goodbye_ends_the_call_and_is_never_handed_off(gateway):
    result = await WebSocketCaller(ws_url(gateway)).run(
        [Turn("text", "понятно спасибо пока", barge_in=True)]
    )
    (turn,) = result.turns
    assert turn.decision == "answer" and "до свидания" in turn.reply.lower()
    assert result.handoff is None
    assert result.hangup is not None and result.hangup["outcome"] == "answered"
    assert result.record is not None and result.record["end_reason"] == "bot_goodbye"


async def test_a_phone_caller_the_bot_cannot_understand_hears_rephrase_then_transfer(
    gateway, engines, espeak_wav
):
    """Spoken turns over AudioSocket (8 kHz, as Asterisk sends them) through real Vosk: Korean
    speech for the Korean model is heard as Korean words, which the Russian demo KB cannot
    understand — as with a caller the bot misunderstands twice."""
    first = espeak_wav("안녕하세요. 오늘 날씨가 아주 좋습니다.", "ko", "nomatch-1")
    second = espeak_wav("내일 비가 올까요?", "ko", "nomatch-2")
    caller = AudioSocketCaller(audiosocket_address(gateway), gateway, sample_rate=8000)
    result = await caller.run([Turn("wav", str(first), barge_in=True), Turn("wav", str(second))])
    heard = [(t.decision, t.reply) for t in result.turns]
    assert heard == [("clarify", _kb_phrase(engines)), ("handoff", CallPolicy().transfer_text)]
    assert all(t.heard and any("\uac00" <= ch <= "\ud7a3" for ch in t.heard) for t in result.turns)
    assert result.record is not None
    assert (result.record["outcome"], result.record["handoff_reason"]) == (
        "transferred",
        "no_match",
    )
    assert caller.hung_up.is_set()  # a transfer on AudioSocket is a hangup frame
