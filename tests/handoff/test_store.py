"""The store's rules, run against both backends (embedded SQLite, real Redis)."""

from __future__ import annotations

import asyncio

import pytest

from services.handoff.core import QueueCore
from services.handoff.models import (
    CallbackOutcome,
    CallContext,
    CallState,
    Disposition,
    OperatorLogin,
    OperatorState,
    TalkRecord,
    Transport,
    WaitEnd,
)
from services.handoff.store import AlreadyQueued, InvalidState, OfferGone
from tests.handoff.conftest import Clock

OWNER = "gw-1"
LEASE = 15.0


def ctx(call_id: str, queue: str = "operators", **kw: object) -> CallContext:
    return CallContext(call_id=call_id, queue=queue, **kw)  # type: ignore[arg-type]


async def on_duty(
    store: QueueCore, op_id: str, queues: list[str] | None = None, skills: list[str] | None = None
) -> None:
    await store.login(
        OperatorLogin(id=op_id, name=op_id, queues=queues or ["operators"], skills=skills or [])
    )
    await store.set_state(op_id, OperatorState.AVAILABLE)


async def test_longest_waiting_of_the_highest_priority_first(
    store: QueueCore, clock: Clock
) -> None:
    for call_id, priority in [("a", 0), ("b", 5), ("c", 5), ("d", 0)]:
        await store.enqueue(ctx(call_id, priority=priority), OWNER)
        clock.advance(1)
    assert [c.call_id for c in await store.waiting()] == ["b", "c", "a", "d"]
    assert (await store.position("a")).place == 3  # type: ignore[union-attr]
    served = []
    for op in ["o1", "o2", "o3", "o4"]:
        await on_duty(store, op)
        offer = await store.claim_next(op, LEASE)
        assert offer is not None and offer.operator_id == op
        served.append(offer.call_id)
    assert served == ["b", "c", "a", "d"]
    assert await store.claim_next("o1", LEASE) is None  # holds an offer already


async def test_skills_and_queues_route_to_the_competent_operator(
    store: QueueCore, clock: Clock
) -> None:
    await store.enqueue(ctx("legal", skill="law"), OWNER)
    clock.advance(1)
    await store.enqueue(ctx("plain"), OWNER)
    await store.enqueue(ctx("complaint", queue="complaints"), OWNER)
    await on_duty(store, "novice")
    offer = await store.claim_next("novice", LEASE)
    assert offer is not None and offer.call_id == "plain"  # no skill "law"
    await on_duty(store, "lawyer", skills=["law"])
    offer = await store.claim_next("lawyer", LEASE)
    assert offer is not None and offer.call_id == "legal"
    await on_duty(store, "other", queues=["complaints"])
    offer = await store.claim_next("other", LEASE)
    assert offer is not None and offer.call_id == "complaint"
    assert offer.context.queue == "complaints"


async def test_a_caller_in_asterisks_own_queue_is_never_offered_to_our_operators(
    store: QueueCore, clock: Clock
) -> None:
    # followed over AMI: its audio is in Asterisk, whose queue members answer it
    await store.enqueue(ctx("sip", transport=Transport.ASTERISK_QUEUE), OWNER)
    clock.advance(1)
    await store.enqueue(ctx("web"), OWNER)
    await on_duty(store, "o1")
    offer = await store.claim_next("o1", LEASE)
    assert offer is not None and offer.call_id == "web"
    await on_duty(store, "o2")
    assert await store.claim_next("o2", LEASE) is None
    sip = await store.call("sip")
    assert sip is not None and sip.state is CallState.WAITING and sip.operator_id is None


async def test_a_declined_call_goes_back_to_its_place_and_not_to_the_same_operator(
    store: QueueCore, clock: Clock
) -> None:
    await store.enqueue(ctx("first"), OWNER)
    clock.advance(1)
    await store.enqueue(ctx("second"), OWNER)
    await on_duty(store, "o1")
    offer = await store.claim_next("o1", LEASE)
    assert offer is not None and offer.call_id == "first"
    await store.decline(offer.id)
    assert (await store.position("first")).place == 1  # type: ignore[union-attr]
    assert (await store.operator("o1")).state is OperatorState.AVAILABLE  # type: ignore[union-attr]
    again = await store.claim_next("o1", LEASE)
    assert again is not None and again.call_id == "second"
    await on_duty(store, "o2")
    other = await store.claim_next("o2", LEASE)
    assert other is not None and other.call_id == "first"
    with pytest.raises(OfferGone):
        await store.accept(offer.id)  # the old lease is gone
    with pytest.raises(OfferGone):
        await store.decline(offer.id)


async def test_a_lease_that_runs_out_returns_the_call_and_rests_the_operator(
    store: QueueCore, clock: Clock
) -> None:
    await store.enqueue(ctx("c1"), OWNER)
    await on_duty(store, "o1")
    offer = await store.claim_next("o1", LEASE)
    assert offer is not None
    clock.advance(LEASE - 1)
    assert await store.expire_leases() == []
    clock.advance(2)
    with pytest.raises(OfferGone):
        await store.accept(offer.id)  # too late, even before the sweep
    expired = await store.expire_leases()
    assert [o.id for o in expired] == [offer.id]
    assert (await store.operator("o1")).state is OperatorState.AWAY  # type: ignore[union-attr]
    call = await store.call("c1")
    assert call is not None and call.state is CallState.WAITING and call.operator_id is None
    await on_duty(store, "o2")
    fresh = await store.claim_next("o2", LEASE)
    assert fresh is not None and fresh.call_id == "c1"
    accepted = await store.accept(fresh.id)
    assert accepted.state is CallState.TALKING and accepted.operator_id == "o2"
    assert await store.position("c1") is None  # talking: no longer in line


async def test_an_operator_who_vanishes_gives_the_offer_back(
    store: QueueCore, clock: Clock
) -> None:
    await store.enqueue(ctx("c1"), OWNER)
    await on_duty(store, "o1")
    offer = await store.claim_next("o1", LEASE)
    assert offer is not None
    returned = await store.logout("o1")
    assert [o.call_id for o in returned] == ["c1"]
    assert (await store.operator("o1")).state is OperatorState.LOGGED_OUT  # type: ignore[union-attr]
    assert (await store.call("c1")).state is CallState.WAITING  # type: ignore[union-attr]
    with pytest.raises(OfferGone):
        await store.accept(offer.id)


async def test_abandoned_caller_becomes_a_callback_keeping_the_place(
    store: QueueCore, clock: Clock
) -> None:
    await store.enqueue(ctx("early", caller_number="+79001112233"), OWNER)
    clock.advance(5)
    await store.enqueue(ctx("late", caller_number="+79004445566"), OWNER)
    await store.enqueue(ctx("anonymous"), OWNER)
    clock.advance(30)
    late = await store.leave("late", WaitEnd.ABANDONED)
    early = await store.leave("early", WaitEnd.ABANDONED)
    assert await store.leave("anonymous", WaitEnd.ABANDONED) is None  # no number to call
    assert late is not None and early is not None
    assert early.reason is WaitEnd.ABANDONED and early.number == "+79001112233"
    assert [cb.call_id for cb in await store.callbacks(open_only=True)] == ["early", "late"]
    assert await store.waiting() == []
    assert await store.leave("late", WaitEnd.ABANDONED) is None  # a second hangup: nothing
    figures = await store.figures("operators", window_s=3600, service_level_s=20)
    assert figures.abandoned == 3 and figures.callbacks_due == 2 and figures.waiting_now == 0


async def test_caller_asks_for_a_callback_while_offered(store: QueueCore, clock: Clock) -> None:
    await store.enqueue(ctx("c1"), OWNER)
    await on_duty(store, "o1")
    offer = await store.claim_next("o1", LEASE)
    assert offer is not None
    with pytest.raises(InvalidState):
        await store.leave("c1", WaitEnd.CALLBACK_REQUESTED)  # no number known
    callback = await store.request_callback("c1", "+79990001122")
    assert callback.reason is WaitEnd.CALLBACK_REQUESTED
    assert (await store.operator("o1")).state is OperatorState.AVAILABLE  # type: ignore[union-attr]
    with pytest.raises(OfferGone):
        await store.accept(offer.id)


async def test_estimate_falls_back_then_follows_the_queue_history(
    store: QueueCore, clock: Clock
) -> None:
    for i in range(3):
        await store.enqueue(ctx(f"c{i}"), OWNER)
        clock.advance(1)
    assert (await store.position("c0")).eta_seconds is None  # type: ignore[union-attr]
    await on_duty(store, "o1")
    await on_duty(store, "o2")
    first = await store.position("c2")
    assert first is not None and not first.eta_from_history
    assert first.eta_seconds == pytest.approx(3 * store.default_handling_s / 2)
    offer = await store.claim_next("o1", LEASE)
    assert offer is not None
    await store.accept(offer.id)
    clock.advance(60)
    await store.finish(offer.call_id, Disposition.RESOLVED, "ответил")
    later = await store.position("c2")
    assert later is not None and later.eta_from_history and later.place == 2
    assert later.eta_seconds == pytest.approx(2 * 60 / 2)
    assert await store.recent_handling_s("operators", window_s=3600) == pytest.approx(60)


async def test_overflow_to_the_general_queue_keeps_the_place(
    store: QueueCore, clock: Clock
) -> None:
    await store.enqueue(ctx("old", queue="complaints", skill="law"), OWNER)
    clock.advance(10)
    await store.enqueue(ctx("general"), OWNER)
    clock.advance(50)
    await store.enqueue(ctx("fresh", queue="complaints"), OWNER)
    assert await store.overflow(60, "operators") == ["old"]
    assert await store.overflow(60, "operators") == []
    assert (await store.position("old")).queue == "operators"  # type: ignore[union-attr]
    assert (await store.position("old")).place == 1  # type: ignore[union-attr]
    await on_duty(store, "generalist")
    offer = await store.claim_next("generalist", LEASE)
    assert offer is not None and offer.call_id == "old"  # skill dropped on overflow


async def test_wrap_up_then_available_again(store: QueueCore, clock: Clock) -> None:
    await store.enqueue(ctx("c1", caller_number="+7900"), OWNER)
    await store.enqueue(ctx("c2"), OWNER)
    await on_duty(store, "o1")
    offer = await store.claim_next("o1", LEASE)
    assert offer is not None
    await store.accept(offer.id)
    with pytest.raises(InvalidState):
        await store.logout("o1")
    record = await store.finish("c1", Disposition.CALLBACK, "перезвонить с ответом юриста")
    assert isinstance(record, TalkRecord) and record.operator_id == "o1"
    assert (await store.operator("o1")).state is OperatorState.WRAP_UP  # type: ignore[union-attr]
    assert await store.claim_next("o1", LEASE) is None  # resting
    clock.advance(5)
    assert await store.end_wrap_up(10) == []
    clock.advance(5)
    assert await store.end_wrap_up(10) == ["o1"]
    nxt = await store.claim_next("o1", LEASE)
    assert nxt is not None and nxt.call_id == "c2"
    [callback] = await store.callbacks()
    assert callback.reason is Disposition.CALLBACK and callback.note.startswith("перезвонить")


async def test_caller_hangs_up_mid_talk_and_the_operator_still_closes_it(
    store: QueueCore, clock: Clock
) -> None:
    await store.enqueue(ctx("c1"), OWNER)
    await on_duty(store, "o1")
    offer = await store.claim_next("o1", LEASE)
    assert offer is not None
    await store.accept(offer.id)
    clock.advance(40)
    await store.leave("c1", WaitEnd.ABANDONED)
    assert (await store.operator("o1")).state is OperatorState.WRAP_UP  # type: ignore[union-attr]
    clock.advance(100)  # the notes take a while; the talk was 40 s
    record = await store.finish("c1", Disposition.ESCALATED, "жалоба")
    assert record.ended_at - record.answered_at == pytest.approx(40)
    assert await store.call("c1") is None


async def test_transfer_to_another_queue_and_back_to_the_bot(
    store: QueueCore, clock: Clock
) -> None:
    await store.enqueue(ctx("c1"), OWNER)
    await on_duty(store, "o1")
    await on_duty(store, "o2", queues=["complaints"])
    offer = await store.claim_next("o1", LEASE)
    assert offer is not None
    await store.accept(offer.id)
    position = await store.transfer("c1", "complaints", "к юристам")
    assert position is not None and position.queue == "complaints" and position.place == 1
    assert (await store.operator("o1")).state is OperatorState.WRAP_UP  # type: ignore[union-attr]
    second = await store.claim_next("o2", LEASE)
    assert second is not None and second.call_id == "c1"
    await store.accept(second.id)
    assert await store.transfer("c1", None) is None
    assert await store.call("c1") is None
    with pytest.raises(InvalidState):
        await store.finish("c2-unknown", Disposition.TRANSFERRED)


async def test_operator_states(store: QueueCore) -> None:
    login = OperatorLogin(id="o1", queues=["operators"])
    operator = await store.login(login)
    assert operator.state is OperatorState.AWAY
    with pytest.raises(InvalidState):
        await store.set_state("o1", OperatorState.TALKING)
    await store.set_state("o1", OperatorState.AVAILABLE)
    again = await store.login(login.model_copy(update={"skills": ["law"]}))
    assert again.state is OperatorState.AVAILABLE and again.skills == ["law"]
    await store.logout("o1")
    with pytest.raises(InvalidState):
        await store.set_state("o1", OperatorState.AVAILABLE)


async def test_enqueue_twice_keeps_the_first_place(store: QueueCore, clock: Clock) -> None:
    await store.enqueue(ctx("c1"), OWNER)
    clock.advance(5)
    with pytest.raises(AlreadyQueued):
        await store.enqueue(ctx("c1", priority=9), OWNER)
    call = await store.call("c1")
    assert call is not None and call.context.priority == 0


async def test_callback_attempts(store: QueueCore, clock: Clock) -> None:
    callback = await store.add_callback("+79001234567", "operators", WaitEnd.ABANDONED)
    clock.advance(10)
    retry = clock.now + 600
    tried = await store.record_callback_attempt(
        callback.id, CallbackOutcome.NO_ANSWER, retry_at=retry, note="не взяли трубку"
    )
    assert tried.attempts == 1 and tried.due_at == retry
    assert await store.callbacks(due_before=clock.now) == []
    assert [cb.id for cb in await store.callbacks(due_before=retry)] == [callback.id]
    done = await store.record_callback_attempt(callback.id, CallbackOutcome.DONE)
    assert done.attempts == 2 and done.outcome is CallbackOutcome.DONE
    with pytest.raises(InvalidState):
        await store.record_callback_attempt(callback.id, CallbackOutcome.DONE)
    figures = await store.figures("operators", window_s=3600, service_level_s=20)
    assert figures.callbacks_done == 1 and figures.callbacks_due == 0


async def test_a_stopped_gateway_loses_its_callers_to_callbacks(
    store: QueueCore, clock: Clock
) -> None:
    await store.enqueue(ctx("held-by-dead", caller_number="+7911"), "gw-dead")
    await store.enqueue(ctx("held-by-live"), "gw-live")
    clock.advance(20)
    await store.heartbeat("gw-live")
    assert await store.reap(15) == ["held-by-dead"]
    [callback] = await store.callbacks()
    assert callback.reason is WaitEnd.LOST and callback.number == "+7911"
    assert [c.call_id for c in await store.waiting()] == ["held-by-live"]


async def test_figures(store: QueueCore, clock: Clock) -> None:
    await on_duty(store, "o1")
    for i, wait in enumerate([5.0, 30.0]):
        await store.enqueue(ctx(f"c{i}"), OWNER)
        clock.advance(wait)
        offer = await store.claim_next("o1", LEASE)
        assert offer is not None
        await store.accept(offer.id)
        clock.advance(100)
        await store.finish(offer.call_id, Disposition.RESOLVED)
        await store.set_state("o1", OperatorState.AVAILABLE)
    await store.enqueue(ctx("gave-up"), OWNER)
    clock.advance(50)
    await store.leave("gave-up", WaitEnd.ABANDONED)
    await store.enqueue(ctx("now"), OWNER)
    clock.advance(7)
    f = await store.figures("operators", window_s=3600, service_level_s=20)
    assert (f.waiting_now, f.answered, f.abandoned) == (1, 2, 1)
    assert f.longest_wait_s == pytest.approx(7)
    assert f.asa_s == pytest.approx(17.5)
    assert f.abandonment_rate == pytest.approx(1 / 3)
    assert f.service_level == pytest.approx(1 / 3)
    assert f.aht_s == pytest.approx(100)
    assert f.operators_on_shift == 1


async def test_concurrent_operators_never_share_a_call(store: QueueCore) -> None:
    calls, operators = 60, 25
    for i in range(calls):
        await store.enqueue(ctx(f"c{i}"), OWNER)
    for i in range(operators):
        await on_duty(store, f"o{i}")
    claimed: list[str] = []
    offers = 0

    async def work(op_id: str) -> None:
        nonlocal offers
        while True:
            offer = await store.claim_next(op_id, LEASE)
            if offer is None:
                if not any(
                    c.state is CallState.WAITING and op_id not in c.declined_by
                    for c in await store.waiting()
                ) and not any(c.state is CallState.OFFERED for c in await store.waiting()):
                    return
                await asyncio.sleep(0)  # others hold offers that may come back
                continue
            offers += 1
            if offers % 3 == 0:
                await store.decline(offer.id)  # back in line; someone else takes it
                continue
            claimed.append(offer.call_id)
            await store.accept(offer.id)
            await store.finish(offer.call_id, Disposition.RESOLVED)
            await store.set_state(op_id, OperatorState.AVAILABLE)

    await asyncio.gather(*(work(f"o{i}") for i in range(operators)))
    assert sorted(claimed) == sorted(f"c{i}" for i in range(calls))


async def test_claims_in_a_batch_follow_routing_and_skip_who_cannot_take(
    store: QueueCore, clock: Clock
) -> None:
    for call_id in ["a", "b", "c"]:
        await store.enqueue(ctx(call_id), OWNER)
        clock.advance(1)
    await store.enqueue(ctx("legal", skill="law"), OWNER)
    for op in ["o1", "o2", "o3"]:
        await on_duty(store, op)
    await store.set_state("o2", OperatorState.AWAY)
    await on_duty(store, "lawyer", skills=["law"])
    offers = await store.claim_each(["o1", "o2", "o3", "lawyer", "o1"], LEASE)
    assert [(o.operator_id, o.call_id) for o in offers] == [
        ("o1", "a"),
        ("o3", "b"),
        ("lawyer", "c"),  # the longest waiting fits a lawyer too
    ]
    assert await store.claim_each(["o1", "o3"], LEASE) == []  # both hold an offer


async def test_batches_claimed_at_once_never_share_a_call(store: QueueCore) -> None:
    for i in range(30):
        await store.enqueue(ctx(f"c{i}"), OWNER)
    groups = [[f"g{g}o{i}" for i in range(5)] for g in range(4)]
    for op in (op for group in groups for op in group):
        await on_duty(store, op)
    batches = await asyncio.gather(*(store.claim_each(group, LEASE) for group in groups))
    claimed = [o.call_id for batch in batches for o in batch]
    assert len(claimed) == 20 and len(set(claimed)) == 20
