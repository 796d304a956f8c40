"""The AMI client's framing, and its login against a real Asterisk."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from services.gateway.asterisk.ami import AmiClient, AmiError, AmiSettings, Message, encode

from .asterisk_harness import Asterisk, asterisk_missing, running_asterisk, sample_manager


def test_channel_variables_are_read_in_both_forms() -> None:
    block = (
        "Event: AgentConnect\r\nQueue: staffed\r\nChannel: Local/s@direct-00000001;2\r\n"
        "ChanVariable: CALL_UUID=4f6c\r\nDestChanVariable: CALL_UUID=\r\n"
        "ChanVariable(OLD): 1=2\r\nHoldTime: 3\r\n\r\n"
    )
    message = Message.parse(block)
    assert message.event == "AgentConnect" and message["HoldTime"] == "3"
    assert message.variables == {"CALL_UUID": "4f6c", "OLD": "1=2"}
    assert message.dest_variables == {"CALL_UUID": ""}


def test_a_line_break_in_a_field_is_refused_not_sent() -> None:
    with pytest.raises(ValueError, match="line break"):
        encode("Originate", {"Channel": "Local/1@x\r\nAction: Command"}, {})
    assert encode("Ping", {"ActionID": "1"}, {"A": "b"}) == (
        b"Action: Ping\r\nActionID: 1\r\nVariable: A=b\r\n\r\n"
    )


async def test_an_action_while_down_fails_at_once() -> None:
    async def ignore(_: Message) -> None: ...

    client = AmiClient(AmiSettings(), ignore)
    with pytest.raises(AmiError, match="not connected"):
        await client.action("Ping")


@pytest.fixture(scope="module")
def asterisk() -> Iterator[Asterisk]:
    reason = asterisk_missing()
    if reason:
        pytest.skip(reason)
    with running_asterisk({"manager.conf": sample_manager()}) as instance:
        yield instance


async def _status_after_login(asterisk: Asterisk, secret: str) -> tuple[AmiClient, asyncio.Task]:
    async def ignore(_: Message) -> None: ...

    settings = AmiSettings(port=asterisk.ami_port, secret=secret, reconnect_s=0.2)
    client = AmiClient(settings, ignore)
    task = asyncio.create_task(client.run())
    deadline = time.monotonic() + 5
    while not client.connected.is_set() and client.last_error == "not connected yet":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    return client, task


async def test_a_wrong_secret_is_reported_and_retried(asterisk: Asterisk) -> None:
    client, task = await _status_after_login(asterisk, "wrong")
    try:
        assert not client.connected.is_set()
        assert client.status.startswith("down: AmiError: Login: Authentication failed")
    finally:
        task.cancel()


async def test_the_sample_user_may_originate_and_ping(asterisk: Asterisk) -> None:
    client, task = await _status_after_login(asterisk, "change-me")
    try:
        await asyncio.wait_for(client.connected.wait(), 5)
        assert (await client.action("Ping"))["Ping"] == "Pong"
        # Allowed by `write = originate`; it fails only because the extension does not exist.
        with pytest.raises(AmiError, match="Originate failed"):
            await client.action(
                "Originate", Channel="Local/1@nowhere/n", Application="Wait", Data="1"
            )
    finally:
        task.cancel()
