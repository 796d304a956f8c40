"""The hold party around the real handoff service (embedded store), with small fake engines for
the bot (fakes.py): what a waiting caller hears and how a callback is asked for. The evidence
over real sockets and engines is test_e2e_operator.py."""

from __future__ import annotations

import asyncio

import numpy as np

from services.gateway.call.hold import call_context, caller_number, spoken_number
from services.gateway.call.leg import Audio, Digit, Text
from services.gateway.operator_audio import OperatorLines
from services.gateway.switchboard import Queueing
from services.handoff.announce import announcement
from services.handoff.embedded import EmbeddedStore
from services.handoff.models import HandoffReason, WaitEnd
from services.handoff.service import HandoffService
from services.handoff.settings import HandoffSettings

from .fakes import fake_engines
from .harness import CallHarness


def test_numbers_are_read_back_in_russian_groups():
    assert spoken_number("+79990001122") == "7, 9 9 9, 0 0 0, 1 1, 2 2"
    assert spoken_number("4951234567") == "4 9 5, 1 2 3, 4 5, 6 7"
    assert spoken_number("12345") == "1, 2 3, 4 5"
    assert caller_number("+7 999 000-11-22") == "+79990001122"
    assert caller_number("127.0.0.1:4242") is None  # an AudioSocket peer, not a number


async def queued_harness(tmp_path, caller_id: str = "+79990001122"):
    store = EmbeddedStore(tmp_path / "handoff.sqlite3")
    service = HandoffService(store, HandoffSettings())
    queueing = Queueing(service, OperatorLines(), announcement, interval_s=0.3)
    engines = fake_engines()
    h = CallHarness(engines, queueing=queueing, caller_id=caller_id)
    h.start()
    await h.wait_playback_end(0)
    h.send(Text("оператор"))
    await h.out.wait_for(lambda e: e.type == "queue")
    return h, service, engines


async def test_the_wait_is_announced_again_and_the_context_reaches_the_queue(tmp_path):
    h, service, _ = await queued_harness(tmp_path)
    first = h.out.of("queue")[0]
    assert first.place == 1 and "Вы первый в очереди" in first.text
    await h.out.wait_for(lambda e: e.type == "queue" and e is not first, timeout=3)
    waiting = await service.store.call("t1")
    assert waiting is not None
    context = waiting.context
    assert context.caller_number == "+79990001122" and context.reason is HandoffReason.CALLER_ASKED
    assert context.reason_detail == "operator"
    assert [(t.who, t.text) for t in context.turns][-2:] == [
        ("caller", "оператор"),
        ("bot", "Соединяю"),
    ]
    assert call_context(h.leg.record, "operators").turns == context.turns
    h.send(None)
    await h.task
    assert [c.reason for c in await service.store.callbacks()] == [WaitEnd.ABANDONED]


async def test_saying_call_me_back_while_waiting_asks_to_confirm_the_number(tmp_path):
    h, service, engines = await queued_harness(tmp_path)
    # The hold party's recognizer hears «перезвоните мне» (the fake stream ends it itself).
    assert len(engines.recognizer.streams) == 2
    engines.recognizer.streams[1].words, engines.recognizer.streams[1].finals = (
        "перезвоните мне",
        True,
    )
    tone = (np.sin(np.arange(16000 * 0.4) / 16000 * 2 * np.pi * 200) * 8000).astype("<i2")
    h.send(Audio(tone.tobytes()))
    confirm = await h.out.wait_for(lambda e: e.type == "reply" and "номер" in e.text)
    assert "7, 9 9 9, 0 0 0, 1 1, 2 2" in confirm.text
    h.send(Digit("*"))  # changed my mind: back to the wait
    await h.out.wait_for(lambda e: e.type == "reply" and "оставайтесь" in e.text)
    h.send(Text("перезвоните мне"))  # typed, the same
    await h.out.wait_for(lambda e: e.type == "reply" and e is not confirm and "номер" in e.text)
    h.send(Digit("1"))
    record = await asyncio.wait_for(h.task, 10)
    assert record.end_reason == "callback"
    assert [(c.number, c.reason) for c in await service.store.callbacks()] == [
        ("+79990001122", WaitEnd.CALLBACK_REQUESTED)
    ]


async def test_a_number_too_short_is_asked_for_again(tmp_path):
    h, service, _ = await queued_harness(tmp_path, caller_id="")
    h.send(Digit("1"))
    await h.out.wait_for(lambda e: e.type == "reply" and "номер телефона" in e.text)
    for digit in "123#":
        h.send(Digit(digit))
    asks = lambda e: e.type == "reply" and "номер телефона" in e.text  # noqa: E731
    await h.out.wait_for(lambda e: asks(e) and len([x for x in h.out.events if asks(x)]) == 2)
    assert await service.store.callbacks() == []
    h.send(None)
    await h.task
    # No number, no callback: the wait is recorded as abandoned, nobody to call back.
    assert await service.store.callbacks() == []


async def test_a_caller_without_caller_id_dictates_the_number_and_says_yes(tmp_path):
    h, service, _ = await queued_harness(tmp_path, caller_id="")
    h.send(Text("перезвоните мне"))
    await h.out.wait_for(lambda e: e.type == "reply" and "номер телефона" in e.text)
    h.send(Text("восемь девятьсот девяносто девять сто двадцать три сорок пять шестьдесят семь"))
    await h.out.wait_for(lambda e: e.type == "reply" and "8, 9 9 9, 1 2 3, 4 5, 6 7." in e.text)
    h.send(Text("да"))
    record = await asyncio.wait_for(h.task, 10)
    assert record.end_reason == "callback"
    assert [c.number for c in await service.store.callbacks()] == ["89991234567"]


async def test_a_call_the_queue_dropped_while_waiting_is_put_back_in_line(tmp_path):
    """The queue gave this gateway up for dead (its waits are forgotten): the caller waits on."""
    h, service, _ = await queued_harness(tmp_path)
    first = h.out.of("queue")[0]
    service._forget_call("t1")  # what `reap` does to a gateway that missed its heartbeats
    await h.out.wait_for(lambda e: e.type == "queue" and e is not first, timeout=3)
    assert not h.task.done() and await service.store.call("t1") is not None
    h.send(None)
    await h.task
