"""The service over both stores: offers pushed, leases, overflow, wrap-up, hand-ons."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from services.handoff.core import QueueCore
from services.handoff.models import (
    CallContext,
    Disposition,
    OfferEnd,
    OperatorLogin,
    OperatorState,
    WaitEnd,
)
from services.handoff.service import (
    CallEventKind,
    CallGone,
    Feed,
    HandoffService,
    OperatorEvent,
    OperatorEventKind,
)
from services.handoff.settings import HandoffSettings
from services.handoff.store import UnknownCall
from tests.handoff.conftest import Clock

SETTINGS = HandoffSettings(lease_s=10, overflow_after_s=60, wrap_up_s=5, owner_ttl_s=30)


@pytest.fixture
async def service(store: QueueCore, clock: Clock) -> AsyncIterator[HandoffService]:
    yield HandoffService(store, SETTINGS, clock=clock, owner="gw-a")


async def event(feed: Feed[OperatorEvent], kind: OperatorEventKind) -> OperatorEvent:
    while True:
        got = await asyncio.wait_for(feed.get(), 5)
        if got.kind is kind:
            return got


async def ready(service: HandoffService, op_id: str, queues: list[str] | None = None) -> None:
    await service.login(OperatorLogin(id=op_id, queues=queues or ["operators"]))
    await service.set_state(op_id, OperatorState.AVAILABLE)


async def test_offer_accept_hold_transfer_and_back(service: HandoffService) -> None:
    await ready(service, "anna")
    await ready(service, "lev", ["complaints"])
    async with service.operator_feed("anna") as anna, service.operator_feed("lev") as lev:
        await service.enqueue(CallContext(call_id="c1", queue="operators"))
        offer = (await event(anna, OperatorEventKind.OFFER)).offer
        assert offer is not None and offer.call_id == "c1"
        with service.call_feed("c1") as call:
            waiter = asyncio.create_task(service.wait_for_operator("c1"))
            context = await service.accept(offer.id)
            assert context.call_id == "c1"
            assert await asyncio.wait_for(waiter, 5) == "anna"
            assert (await call.get()).kind is CallEventKind.ANSWERED
            await service.hold("anna", True)
            assert (await call.get()).kind is CallEventKind.HOLD and service.on_hold("c1")
            await service.hold("anna", False)
            assert (await call.get()).kind is CallEventKind.UNHOLD
            position = await service.transfer("anna", "complaints", "жалоба")
            moved = await call.get()
            assert moved.kind is CallEventKind.TRANSFERRED and moved.position == position
            second = (await event(lev, OperatorEventKind.OFFER)).offer
            assert second is not None
            waiter = asyncio.create_task(service.wait_for_operator("c1"))
            await service.accept(second.id)
            assert await asyncio.wait_for(waiter, 5) == "lev"
            assert (await call.get()).kind is CallEventKind.ANSWERED
            assert await service.transfer("lev", None) is None
            assert (await call.get()).kind is CallEventKind.RETURNED_TO_BOT


async def test_a_lease_that_runs_out_goes_to_the_next_operator(
    service: HandoffService, clock: Clock
) -> None:
    await ready(service, "slow")
    async with service.operator_feed("slow") as slow:
        await service.enqueue(CallContext(call_id="c1", queue="operators"))
        offer = (await event(slow, OperatorEventKind.OFFER)).offer
        assert offer is not None
        await ready(service, "quick")
        async with service.operator_feed("quick") as quick:
            clock.advance(11)
            await service.tick()
            gone = await event(slow, OperatorEventKind.OFFER_WITHDRAWN)
            assert gone.offer_end is OfferEnd.EXPIRED
            state = await event(slow, OperatorEventKind.STATE)
            assert state.operator is not None and state.operator.state is OperatorState.AWAY
            again = (await event(quick, OperatorEventKind.OFFER)).offer
            assert again is not None and again.call_id == "c1"
            assert again.waited_s == pytest.approx(11)  # its place in line kept


async def test_overflow_then_wrap_up(service: HandoffService, clock: Clock) -> None:
    await ready(service, "general")
    async with service.operator_feed("general") as general:
        await service.enqueue(CallContext(call_id="c1", queue="complaints"))
        await service.enqueue(CallContext(call_id="c2", queue="operators"))
        offer = (await event(general, OperatorEventKind.OFFER)).offer
        assert offer is not None and offer.call_id == "c2"
        await service.accept(offer.id)
        clock.advance(61)
        await service.tick()  # c1 overflows, but "general" is talking
        assert (await service.position("c1")).queue == "operators"  # type: ignore[union-attr]
        await service.finish("general", Disposition.RESOLVED, "готово")
        clock.advance(4)
        await service.tick()
        assert general.get_nowait() is None  # still wrapping up
        clock.advance(1)
        await service.tick()
        back = await event(general, OperatorEventKind.STATE)
        assert back.operator is not None and back.operator.state is OperatorState.AVAILABLE
        overflowed = (await event(general, OperatorEventKind.OFFER)).offer
        assert overflowed is not None and overflowed.call_id == "c1"


async def test_operator_gone_and_caller_gone(service: HandoffService) -> None:
    await ready(service, "flaky")
    async with service.operator_feed("flaky") as flaky:
        await service.enqueue(CallContext(call_id="c1", queue="operators", caller_number="+7"))
        await event(flaky, OperatorEventKind.OFFER)
    # the console closed with the offer pending: the call is back in line, first
    assert (await service.position("c1")).place == 1  # type: ignore[union-attr]
    operator = await service.store.operator("flaky")
    assert operator is not None and operator.state is OperatorState.LOGGED_OUT
    waiter = asyncio.create_task(service.wait_for_operator("c1"))
    await asyncio.sleep(0)
    callback = await service.leave("c1", WaitEnd.ABANDONED)
    assert callback is not None and callback.number == "+7"
    with pytest.raises(CallGone):
        await asyncio.wait_for(waiter, 5)


async def test_an_answer_on_another_gateway_reaches_the_caller_s(
    service: HandoffService, clock: Clock
) -> None:
    other = HandoffService(service.store, SETTINGS, clock=clock, owner="gw-b")
    await ready(other, "remote")
    await service.enqueue(CallContext(call_id="c1", queue="operators"))
    waiter = asyncio.create_task(service.wait_for_operator("c1"))
    async with other.operator_feed("remote") as remote:  # the operator is on gateway b
        offer = (await event(remote, OperatorEventKind.OFFER)).offer
        assert offer is not None
        await other.accept(offer.id)
        await service.tick()  # gateway a notices on its tick
        assert await asyncio.wait_for(waiter, 5) == "remote"


async def test_a_late_wait_still_learns_who_answered(service: HandoffService) -> None:
    await ready(service, "fast")
    async with service.operator_feed("fast") as fast:
        await service.enqueue(CallContext(call_id="c1", queue="operators"))
        offer = (await event(fast, OperatorEventKind.OFFER)).offer
        assert offer is not None
        await service.accept(offer.id)
        await service.finish("fast", Disposition.RESOLVED)  # before the gateway waited
    assert await service.wait_for_operator("c1") == "fast"
    with pytest.raises(UnknownCall):
        await service.wait_for_operator("never-queued")


async def test_run_stops_when_cancelled(service: HandoffService) -> None:
    runner = asyncio.create_task(service.run())
    for _ in range(5):
        await asyncio.sleep(0)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(runner, 5)


class _Proxy:
    """The real store, with one step changed (a unit test of the service around it)."""

    def __init__(self, store: QueueCore) -> None:
        self._store = store

    def __getattr__(self, name: str) -> object:
        return getattr(self._store, name)


async def test_an_answer_that_lands_while_the_store_enqueues_still_reaches_the_caller(
    store: QueueCore, clock: Clock
) -> None:
    holder: list[HandoffService] = []

    class AnsweredMidEnqueue(_Proxy):
        # another task's dispatch offers the call while enqueue awaits; the operator takes it
        async def enqueue(self, context: CallContext, owner: str) -> object:
            position = await self._store.enqueue(context, owner)
            service = holder[0]
            offers = await service.dispatch()
            await service.accept(offers[0].id)
            return position

    service = HandoffService(AnsweredMidEnqueue(store), SETTINGS, clock=clock, owner="gw-a")  # type: ignore[arg-type]
    holder.append(service)
    await ready(service, "anna")
    async with service.operator_feed("anna"):
        await service.enqueue(CallContext(call_id="c1", queue="operators"))
        assert await asyncio.wait_for(service.wait_for_operator("c1"), 5) == "anna"


async def test_the_queue_keeps_ticking_after_a_failed_round(store: QueueCore, clock: Clock) -> None:
    beats: list[str] = []

    class FailsOnce(_Proxy):
        async def heartbeat(self, owner: str) -> None:
            beats.append(owner)
            if len(beats) == 1:
                raise ConnectionError("redis-server went away")
            await self._store.heartbeat(owner)

    settings = SETTINGS.model_copy(update={"tick_s": 0.01})
    service = HandoffService(FailsOnce(store), settings, clock=clock, owner="gw-a")  # type: ignore[arg-type]
    runner = asyncio.create_task(service.run())
    try:
        for _ in range(500):
            if len(beats) >= 3:
                break
            await asyncio.sleep(0.01)
    finally:
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
    assert len(beats) >= 3  # the failed first round did not end the loop


async def test_a_tick_that_reads_a_call_while_its_operator_accepts_goes_on(
    store: QueueCore, clock: Clock
) -> None:
    holder: list[HandoffService] = []
    accepting: list[str] = []

    class AcceptedMidRead(_Proxy):
        # the tick's check for answers from other gateways reads the call; meanwhile this
        # gateway's operator accepts it (the tick failed with InvalidStateError on Redis)
        async def call(self, call_id: str) -> object:
            if accepting:
                await holder[0].accept(accepting.pop())
            return await self._store.call(call_id)

    service = HandoffService(AcceptedMidRead(store), SETTINGS, clock=clock, owner="gw-a")  # type: ignore[arg-type]
    holder.append(service)
    await ready(service, "anna")
    async with service.operator_feed("anna") as anna:
        await service.enqueue(CallContext(call_id="c1", queue="operators"))
        offer = (await event(anna, OperatorEventKind.OFFER)).offer
        assert offer is not None
        accepting.append(offer.id)
        await service.tick()  # raised before
        assert await asyncio.wait_for(service.wait_for_operator("c1"), 5) == "anna"


async def test_a_burst_of_handoffs_shares_dispatch_rounds_and_every_call_is_offered(
    store: QueueCore, clock: Clock
) -> None:
    rounds: list[int] = []

    class CountedRounds(_Proxy):
        async def operators(self) -> object:  # one read per dispatch round
            rounds.append(1)
            await asyncio.sleep(0.01)  # a round that takes a while, as over the network
            return await self._store.operators()

    service = HandoffService(CountedRounds(store), SETTINGS, clock=clock, owner="gw-a")  # type: ignore[arg-type]
    operators = [f"op{n}" for n in range(10)]
    for op in operators:
        await ready(service, op)
    feeds = [service.operator_feed(op) for op in operators]
    opened = [await f.__aenter__() for f in feeds]
    try:
        rounds.clear()
        await asyncio.gather(
            *(service.enqueue(CallContext(call_id=f"c{n}", queue="operators")) for n in range(10))
        )
        offered = set()
        for feed in opened:
            got = await event(feed, OperatorEventKind.OFFER)
            assert got.offer is not None
            offered.add(got.offer.call_id)
        assert offered == {f"c{n}" for n in range(10)}
        assert len(rounds) <= 3  # one round per handoff before: 10
    finally:
        for f in feeds:
            await f.__aexit__(None, None, None)
