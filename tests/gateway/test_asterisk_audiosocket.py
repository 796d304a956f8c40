"""AudioSocket through a real Asterisk: the sample dialplan, calls placed over AMI (no SIP).

The caller is the ;1 half of a Local channel (asterisk_harness.py): it records what it hears
(MixMonitor), waits, plays Russian prompts and presses keys; the ;2 half runs
deploy/asterisk/extensions.conf, extension 8800 (`AudioSocket()` into the test gateway).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from services.common.audio import read_wav
from services.gateway.asterisk.ami import AmiClient, AmiSettings, Message
from services.gateway.call.vad import rms_dbfs

from .asterisk_harness import (
    Asterisk,
    asterisk_missing,
    running_asterisk,
    sample_dialplan,
    sample_manager,
)
from .conftest import audiosocket_address

pytestmark = pytest.mark.skipif(asterisk_missing() is not None, reason=asterisk_missing() or "")

# The caller halves. REC: where MixMonitor keeps what the caller heard and said.
CALLERS = """
[caller]
; Media 3 s after the answer (a slow trunk): the line must stay up, the bot must get the key.
exten => late,1,Answer()
 same => n,MixMonitor(${REC})
 same => n,Wait(3)
 same => n,SendDTMF(0)
 same => n,Wait(4)
; Speaks, then is quiet for 6 s (silence suppression, a long Wait()), then presses 0.
exten => quiet,1,Answer()
 same => n,MixMonitor(${REC})
 same => n,Playback(hello)
 same => n,Wait(6)
 same => n,SendDTMF(0)
 same => n,Wait(4)
"""


class Events:
    """AMI events as they come, for a test to wait on."""

    def __init__(self) -> None:
        self.seen: list[Message] = []
        self._changed = asyncio.Event()

    async def __call__(self, message: Message) -> None:
        self.seen.append(message)
        self._changed.set()

    async def wait_for(self, pred, timeout: float = 10.0) -> Message:
        async with asyncio.timeout(timeout):
            while True:
                for message in self.seen:
                    if pred(message):
                        return message
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture(scope="module")
def asterisk(gateway: str) -> Iterator[Asterisk]:
    configs = {
        "extensions.conf": sample_dialplan(audiosocket_address(gateway), gateway) + CALLERS,
        "manager.conf": sample_manager(),
    }
    with running_asterisk(configs) as instance:
        yield instance


@pytest.fixture
async def ami(asterisk: Asterisk) -> AsyncIterator[tuple[AmiClient, Events]]:
    """The test's own AMI connection (user `test`, every event)."""
    events = Events()
    client = AmiClient(AmiSettings(port=asterisk.ami_port, username="test", secret="test"), events)
    task = asyncio.create_task(client.run())
    await asyncio.wait_for(client.connected.wait(), 10)
    yield client, events
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _call(ami: tuple[AmiClient, Events], script: str, rec: Path) -> str:
    """Place a call to 8800 whose caller half runs `script`; returns its CALL_UUID."""
    client, events = ami
    await client.action(
        "Originate",
        {"REC": str(rec)},
        Channel="Local/8800@hotline/n",
        Context="caller",
        Exten=script,
        Priority="1",
        CallerID="79161234567",
        Async="true",
    )
    varset = await events.wait_for(
        lambda m: m.event == "VarSet" and m.get("Variable") == "CALL_UUID"
    )
    return varset["Value"]


async def _caller_gone(events: Events) -> None:
    """The caller half hung up (MixMonitor has closed its file)."""
    await events.wait_for(
        lambda m: m.event == "Hangup" and m.get("Channel").endswith(";1"), timeout=20
    )


def finished_record(gateway: str, call_id: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = httpx.get(f"{gateway}/v1/calls/{call_id}")
        if reply.status_code == 200 and reply.json()["outcome"] != "in_progress":
            return reply.json()
        time.sleep(0.2)
    raise AssertionError(f"call {call_id} did not end in {timeout} s")


def heard_db(rec: Path, until_s: float) -> float:
    """The loudest 20 ms the caller heard in its first `until_s` seconds."""
    pcm, _ = read_wav(rec, 8000)
    frames = [pcm[i : i + 320] for i in range(0, min(len(pcm), int(until_s * 16000)), 320)]
    return max(rms_dbfs(f) for f in frames)


async def test_media_starting_3s_late_keeps_the_call_up(asterisk, ami, gateway, tmp_path):
    rec = tmp_path / "late.wav"
    call_id = await _call(ami, "late", rec)
    record = await asyncio.to_thread(finished_record, gateway, call_id)
    # Asterisk would drop the call after 2 s with nothing on the socket; it got the greeting.
    assert "Reached timeout" not in asterisk.log()
    assert record["outcome"] == "transferred" and record["handoff_reason"] == "dtmf"
    await _caller_gone(ami[1])
    assert heard_db(rec, 3.0) > -40, "the caller heard the greeting before its media started"


async def test_a_quiet_line_is_not_a_hangup(asterisk, ami, gateway, tmp_path):
    call_id = await _call(ami, "quiet", tmp_path / "quiet.wav")
    record = await asyncio.to_thread(finished_record, gateway, call_id)
    assert record["outcome"] == "transferred" and record["handoff_reason"] == "dtmf"
    assert "peer" not in record["end_reason"]
    dtmf = [e for e in record["timeline"] if e["event"]["type"] == "dtmf"]
    assert dtmf and dtmf[0]["t_ms"] > 6000  # pressed after the 6 s of quiet, still heard
