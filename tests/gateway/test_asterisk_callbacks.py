"""CallbackPlacer's bookkeeping on the real embedded store, around a stand-in for AMI.

The stand-in answers Originate as Asterisk does (the action's reply, then an OriginateResponse
event with the same ActionID); the real thing is in test_asterisk_queue.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from services.gateway.asterisk.ami import AmiError, AmiSettings, Message
from services.gateway.asterisk.queues import CallbackPlacer
from services.handoff.embedded import EmbeddedStore
from services.handoff.models import CallbackOutcome, WaitEnd


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class StandInAmi:
    """Replies to Originate with `response` fields (None: the action itself fails)."""

    def __init__(self) -> None:
        self.placer: CallbackPlacer | None = None
        self.response: dict[str, str] | None = {"Response": "Success", "Reason": "4"}
        self.sent: list[dict[str, str]] = []

    async def action(
        self, action: str, variables: dict[str, str] | None = None, **fields: str
    ) -> Message:
        self.sent.append({"Action": action, **fields})
        if self.response is None:
            raise AmiError("Originate: AMI not connected (down)")
        assert self.placer is not None
        event = {"Event": "OriginateResponse", "ActionID": fields["ActionID"], **self.response}
        await self.placer.on_event(Message(fields=event))
        return Message(fields={"Response": "Success"})


@pytest.fixture
async def setup(tmp_path: Path):
    clock = Clock()
    store = EmbeddedStore(tmp_path / "handoff.sqlite3", clock=clock)
    ami = StandInAmi()
    settings = AmiSettings(callback_retry_s=60, callback_max_attempts=2)
    placer = CallbackPlacer(ami, store, settings, clock=clock)  # type: ignore[arg-type]
    ami.placer = placer
    yield store, ami, placer, clock
    await store.close()


async def _one(store: EmbeddedStore, number: str = "79161234567"):
    return await store.add_callback(number, "operators", WaitEnd.ABANDONED, call_id="c1")


async def test_answered_is_done_and_dials_the_template(setup) -> None:
    store, ami, placer, _ = setup
    callback = await _one(store)
    assert await placer.place(callback) is CallbackOutcome.DONE
    (sent,) = ami.sent
    assert sent["Channel"] == "Local/79161234567@voicebot-callback-out"
    assert sent["Exten"] == "operators" and sent["Timeout"] == "30000"
    (stored,) = await store.callbacks()
    assert stored.outcome is CallbackOutcome.DONE and stored.attempts == 1


async def test_no_answer_is_tried_again_later_then_given_up(setup) -> None:
    store, ami, placer, clock = setup
    ami.response = {"Response": "Failure", "Reason": "3"}
    callback = await _one(store)
    assert await placer.place(callback) is CallbackOutcome.NO_ANSWER
    (stored,) = await store.callbacks()
    assert stored.due_at == clock.now + 60  # not due again at once
    assert await placer.place_due() == []
    clock.now += 61
    (task,) = await placer.place_due()
    assert await task is CallbackOutcome.CANCELLED
    (stored,) = await store.callbacks()
    assert stored.attempts == 2 and stored.outcome is CallbackOutcome.CANCELLED
    assert stored.note.splitlines()[-1] == "попыток: 2, больше не звоним"


async def test_a_failed_action_is_a_failed_try(setup) -> None:
    store, ami, placer, _ = setup
    ami.response = None
    assert await placer.place(await _one(store)) is CallbackOutcome.FAILED
    (stored,) = await store.callbacks()
    assert "не удалось позвонить" in stored.note and stored.attempts == 1


async def test_a_number_that_is_not_one_is_never_dialled(setup) -> None:
    store, ami, placer, _ = setup
    callback = await _one(store, "123@other/n")
    assert await placer.place(callback) is CallbackOutcome.CANCELLED
    assert ami.sent == []
    (stored,) = await store.callbacks()
    assert stored.outcome is CallbackOutcome.CANCELLED and stored.attempts == 0


async def test_a_callback_closed_meanwhile_is_reported_not_crashed(setup) -> None:
    store, _, placer, _ = setup
    callback = await _one(store)
    await store.record_callback_attempt(callback.id, CallbackOutcome.CANCELLED)
    with pytest.raises(Exception, match="закрыт"):
        await placer.place(callback)  # in place_due's task: logged, the store unchanged
    (stored,) = await store.callbacks()
    assert stored.outcome is CallbackOutcome.CANCELLED
