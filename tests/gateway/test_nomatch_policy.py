"""The no-match count around the dialog's typed NOT_UNDERSTOOD replies (fake engines: a unit test
of the call engine's counting; the real dialog is in test_e2e_nomatch.py)."""

from __future__ import annotations

import asyncio

from services.gateway.call.leg import Text
from services.gateway.call.policy import CallPolicy

from .fakes import fake_engines
from .harness import CallHarness


async def _turns(h: CallHarness, texts: list[str]) -> None:
    for n, text in enumerate(texts, start=1):
        h.send(Text(text))
        await h.wait_playback_end(n)


async def test_the_limit_counts_misunderstood_turns_in_a_row_only():
    h = CallHarness(fake_engines(), CallPolicy(max_nomatch=3))
    h.start()
    await h.wait_playback_end(0)
    await _turns(h, ["абв", "где", "у меня вопрос", "жзи", "клм"])  # the question resets it
    assert not h.out.of("handoff")
    h.send(Text("нпр"))
    record = await asyncio.wait_for(h.task, 5)
    replies = [e.text for e in h.out.of("reply")][1:]
    assert replies == [*["Не поняла"] * 2, "Ответ", *["Не поняла"] * 2, CallPolicy().transfer_text]
    assert (record.outcome, record.handoff_reason) == ("transferred", "no_match")


async def test_a_limit_of_one_transfers_the_first_misunderstood_turn():
    h = CallHarness(fake_engines(), CallPolicy(max_nomatch=1))
    h.start()
    await h.wait_playback_end(0)
    h.send(Text("абв"))
    record = await asyncio.wait_for(h.task, 5)
    assert record.handoff_reason == "no_match"
