"""Asterisk's own Queue() after the bot, followed over AMI by the gateway — a real Asterisk.

The gateway runs with VOICEBOT_AMI_* pointed at the instance (the sample manager.conf user
`voicebot`, channelvars=CALL_UUID) and hands callers to the dialplan (`handoff_to=dialplan`). The
sample dialplan posts the caller's number (CURL) before `AudioSocket()`, reads the route after it
and puts the caller in `Queue(operators)`, a queue with nobody in it; `staffed` has an agent (a
Local channel that answers).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from live_server import free_port, serve_in_thread

from services.common.config import Settings
from services.gateway.app import create_app
from services.gateway.asterisk.ami import AmiClient, AmiSettings
from services.gateway.audiosocket.server import AudioSocketSettings
from services.gateway.call.policy import CallPolicy, HandoffTarget
from services.gateway.engines import Engines
from services.handoff.embedded import EmbeddedStore
from services.handoff.models import CallContext, Transport, WaitEnd
from services.handoff.service import HandoffService

from .asterisk_harness import (
    CALLER_NUMBER,
    DEPLOY,
    Asterisk,
    Events,
    ami_session,
    asterisk_missing,
    call_bot,
    finished_record,
    running_asterisk,
    sample_dialplan,
    sample_manager,
)
from .conftest import audiosocket_address

pytestmark = pytest.mark.skipif(asterisk_missing() is not None, reason=asterisk_missing() or "")

TEST_DIALPLAN = """
[caller]
; Asks for an operator at once (key 0), waits in Queue() a few seconds, gives up.
exten => abandon,1,Answer()
 same => n,Wait(1)
 same => n,SendDTMF(0)
 same => n,Wait(8)
 same => n,Hangup()
exten => wait,1,Answer()
 same => n,Wait(8)
 same => n,Hangup()

[direct]
; A caller put straight into the staffed queue, with a CALL_UUID like the bot's calls.
exten => s,1,Answer()
 same => n,Queue(staffed,t)
 same => n,Hangup()

[unstaffed]
exten => s,1,Answer()
 same => n,Queue(operators,t)
 same => n,Hangup()

[agents]
exten => agent,1,Answer()
 same => n,Wait(2)
 same => n,Hangup()

[callee]
; The callback's far end: 8... numbers are busy, the others ring and answer.
exten => _8X.,1,Busy(1)
exten => _X.,1,Answer()
 same => n,Wait(2)
 same => n,Hangup()

[callback-answered]
exten => _[a-z0-9].,1,Wait(1)
 same => n,Hangup()
"""

STAFFED = """
[staffed]
strategy = ringall
timeout = 5
member => Local/agent@agents/n
"""


@pytest.fixture(scope="module")
def ami_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def queue_gateway(
    gateway_settings: Settings,
    engines: Engines,
    ami_port: int,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """A gateway that follows Asterisk over AMI (it connects once Asterisk is up)."""
    settings = gateway_settings.model_copy(update={"data_dir": tmp_path_factory.mktemp("q")})
    ami = AmiSettings(
        enabled=True,
        port=ami_port,
        secret="change-me",  # the sample manager.conf's
        reconnect_s=0.2,
        poll_s=0.2,
        callback_channel="Local/{number}@callee/n",
        callback_context="callback-answered",
        callback_ring_s=5,
        callback_retry_s=0.5,
        callback_max_attempts=2,
    )
    app = create_app(
        settings,
        engines=engines,
        policy=CallPolicy(handoff_to=HandoffTarget.DIALPLAN),
        audiosocket=AudioSocketSettings(port=0),
        ami=ami,
    )
    with serve_in_thread(app) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def asterisk(queue_gateway: str, ami_port: int) -> Iterator[Asterisk]:
    dialplan = sample_dialplan(audiosocket_address(queue_gateway), queue_gateway)
    configs = {
        "extensions.conf": dialplan + TEST_DIALPLAN,
        "manager.conf": sample_manager(),
        "queues.conf": (DEPLOY / "queues.conf").read_text() + STAFFED,
    }
    with running_asterisk(configs, ami_port=ami_port) as instance:
        wait_until(lambda: asterisk_status(queue_gateway) == "connected", 10)
        yield instance


@pytest.fixture
async def ami(asterisk: Asterisk) -> AsyncIterator[tuple[AmiClient, Events]]:
    async with ami_session(asterisk) as session:
        yield session


def asterisk_status(gateway: str) -> str:
    return httpx.get(f"{gateway}/readyz").json()["asterisk"]["ami"]


def wait_until(pred, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def callbacks_of(gateway: str, call_id: str) -> list[dict]:
    reply = httpx.get(f"{gateway}/v1/handoff/callbacks")
    reply.raise_for_status()
    return [cb for cb in reply.json() if cb["call_id"] == call_id]


async def test_abandoned_in_queue_becomes_a_callback_placed_by_originate(
    asterisk, ami, queue_gateway
):
    _, events = ami
    call_id = await call_bot(ami, "abandon")
    join = await events.wait_for(
        lambda m: m.event == "QueueCallerJoin" and m.variables.get("CALL_UUID") == call_id, 15
    )
    assert join["Queue"] == "operators"

    def waiting() -> list[dict]:
        calls = httpx.get(f"{queue_gateway}/v1/handoff/waiting").json()
        return [c for c in calls if c["context"]["call_id"] == call_id]

    await asyncio.to_thread(wait_until, waiting, 5)
    (held,) = waiting()
    context = held["context"]  # what a console shows for the caller waiting in Asterisk
    assert context["transport"] == "asterisk_queue" and context["caller_number"] == CALLER_NUMBER
    assert context["reason_detail"] == "dtmf"  # key 0
    assert context["turns"] and context["turns"][0]["who"] == "bot"  # the greeting
    record = await asyncio.to_thread(finished_record, queue_gateway, call_id)
    # The dialplan told the gateway the number: the record has it, not 127.0.0.1:port.
    assert record["caller_id"] == CALLER_NUMBER
    assert record["outcome"] == "transferred" and record["handoff_queue"] == "operators"
    await events.wait_for(
        lambda m: m.event == "QueueCallerAbandon" and m.variables.get("CALL_UUID") == call_id, 15
    )

    def placed() -> bool:
        found = callbacks_of(queue_gateway, call_id)
        return bool(found) and found[0]["outcome"] != "pending"

    await asyncio.to_thread(wait_until, placed, 20)
    (callback,) = callbacks_of(queue_gateway, call_id)
    assert callback["number"] == CALLER_NUMBER and callback["reason"] == "abandoned"
    assert callback["queue"] == "operators"
    assert callback["outcome"] == "done" and callback["attempts"] == 1
    # Asterisk really dialled the number and the far end answered.
    await events.wait_for(
        lambda m: (
            m.event == "Newexten"
            and m.get("Context") == "callee"
            and m.get("Exten") == CALLER_NUMBER
            and m.get("Application") == "Answer"
        )
    )
    response = await events.wait_for(
        lambda m: m.event == "OriginateResponse" and m.get("ActionID").startswith("callback-"), 5
    )
    assert response["Response"] == "Success" and response["Channel"].startswith("Local/7916")


async def test_a_busy_callback_is_tried_again_then_cancelled_with_a_note(
    asterisk, ami, queue_gateway
):
    busy = "84950001122"
    call_id = await call_bot(ami, "abandon", caller_id=busy)

    def given_up() -> bool:
        found = callbacks_of(queue_gateway, call_id)
        return bool(found) and found[0]["outcome"] == "cancelled"

    await asyncio.to_thread(wait_until, given_up, 30)
    (callback,) = callbacks_of(queue_gateway, call_id)
    assert callback["number"] == busy and callback["attempts"] == 2
    assert callback["note"].splitlines() == [
        "не ответили (5)",  # 5: busy
        "не ответили (5)",
        "попыток: 2, больше не звоним",
    ]


async def test_an_agent_answering_ends_the_wait_answered(asterisk, ami, queue_gateway):
    client, events = ami
    call_id = str(uuid.uuid4())
    await client.action(
        "Originate",
        {"__CALL_UUID": call_id},
        Channel="Local/s@direct/n",
        Context="caller",
        Exten="wait",
        Priority="1",
        CallerID="74951234567",
        Async="true",
    )
    connect = await events.wait_for(
        lambda m: m.event == "AgentConnect" and m.variables.get("CALL_UUID") == call_id, 15
    )
    assert connect["Queue"] == "staffed"

    def answered() -> bool:
        figures = httpx.get(f"{queue_gateway}/v1/handoff/queues/staffed").json()
        return figures["answered"] == 1

    await asyncio.to_thread(wait_until, answered, 10)
    figures = httpx.get(f"{queue_gateway}/v1/handoff/queues/staffed").json()
    assert figures["abandoned"] == 0 and figures["waiting_now"] == 0
    assert figures["asa_s"] is not None and figures["asa_s"] < 5
    assert callbacks_of(queue_gateway, call_id) == []


async def test_asterisk_restart_is_reported_then_reconnected(asterisk, queue_gateway):
    asterisk.stop()
    await asyncio.to_thread(wait_until, lambda: asterisk_status(queue_gateway) != "connected", 10)
    ready = httpx.get(f"{queue_gateway}/readyz")
    assert ready.status_code == 200 and ready.json()["asterisk"]["ami"].startswith("down: ")
    asterisk.start()
    await asyncio.to_thread(wait_until, lambda: asterisk_status(queue_gateway) == "connected", 10)


@contextlib.asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """The app on this loop (its store lives here), on a free port."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        assert not task.done(), "the gateway did not start"
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)


async def test_a_gateway_that_connects_late_takes_the_queue_as_asterisk_holds_it(
    asterisk, ami, ami_port, gateway_settings, engines, tmp_path
):
    """Events missed while the link was down: a caller already waiting in Queue() is taken
    from QueueStatus; a followed caller who left unseen becomes a callback, not lost."""
    client, events = ami
    waiting_id, gone_id = str(uuid.uuid4()), str(uuid.uuid4())
    await client.action(
        "Originate",
        {"__CALL_UUID": waiting_id},
        Channel="Local/s@unstaffed/n",
        Context="caller",
        Exten="wait",
        Priority="1",
        CallerID="74950007788",
        Async="true",
    )
    await events.wait_for(
        lambda m: m.event == "QueueCallerJoin" and m.variables.get("CALL_UUID") == waiting_id
    )
    store = EmbeddedStore(tmp_path / "handoff.sqlite3")
    service = HandoffService(store, owner="late")
    gone = CallContext(
        call_id=gone_id,
        queue="operators",
        caller_number="74950009900",
        transport=Transport.ASTERISK_QUEUE,
    )
    await store.enqueue(gone, "late")  # followed before the link went down
    app = create_app(
        gateway_settings.model_copy(update={"data_dir": tmp_path}),
        engines=engines,
        policy=CallPolicy(handoff_to=HandoffTarget.DIALPLAN),
        audiosocket=AudioSocketSettings(port=0),
        ami=AmiSettings(
            enabled=True, port=ami_port, secret="change-me", reconnect_s=0.2, callbacks=False
        ),
        handoff=service,
    )
    try:
        async with serving(app):
            deadline = time.monotonic() + 10
            while not (
                [c for c in await store.waiting() if c.call_id == waiting_id]
                and [c for c in await store.callbacks() if c.call_id == gone_id]
            ):
                assert time.monotonic() < deadline, "the queue was not reconciled"
                await asyncio.sleep(0.1)
            (held,) = [c for c in await store.waiting() if c.call_id == waiting_id]
            assert held.context.transport is Transport.ASTERISK_QUEUE
            assert held.context.caller_number == "74950007788"
            (callback,) = [c for c in await store.callbacks() if c.call_id == gone_id]
            assert callback.number == "74950009900" and callback.reason is WaitEnd.ABANDONED
    finally:
        await store.close()
