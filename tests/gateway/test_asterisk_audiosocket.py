"""AudioSocket through a real Asterisk: the sample dialplan, calls placed over AMI (no SIP).

The caller is the ;1 half of a Local channel (asterisk_harness.py): it records what it hears
(MixMonitor), waits, plays Russian prompts and presses keys; the ;2 half runs
deploy/asterisk/extensions.conf, extension 8800 (`AudioSocket()` into the test gateway).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from services.common.audio import read_wav
from services.gateway.asterisk.ami import AmiClient
from services.gateway.call.vad import rms_dbfs

from .asterisk_harness import (
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
    async with ami_session(asterisk) as session:
        yield session


async def _caller_gone(events: Events) -> None:
    """The caller half hung up (MixMonitor has closed its file)."""
    await events.wait_for(
        lambda m: m.event == "Hangup" and m.get("Channel").endswith(";1"), timeout=20
    )


def heard_db(rec: Path, until_s: float) -> float:
    """The loudest 20 ms the caller heard in its first `until_s` seconds."""
    pcm, _ = read_wav(rec, 8000)
    frames = [pcm[i : i + 320] for i in range(0, min(len(pcm), int(until_s * 16000)), 320)]
    return max(rms_dbfs(f) for f in frames)


async def test_media_starting_3s_late_keeps_the_call_up(asterisk, ami, gateway, tmp_path):
    rec = tmp_path / "late.wav"
    call_id = await call_bot(ami, "late", {"REC": str(rec)})
    record = await asyncio.to_thread(finished_record, gateway, call_id)
    # Asterisk would drop the call after 2 s with nothing on the socket; it got the greeting.
    assert "Reached timeout" not in asterisk.log()
    assert record["outcome"] == "transferred" and record["handoff_reason"] == "dtmf"
    await _caller_gone(ami[1])
    assert heard_db(rec, 3.0) > -40, "the caller heard the greeting before its media started"


@pytest.mark.parametrize(("exten", "rate"), [("8800", 8000), ("8801", 16000)])
async def test_a_quiet_line_is_not_a_hangup(asterisk, ami, gateway, tmp_path, exten, rate):
    """8800: the AudioSocket() application; 8801: the channel driver, Dial(...c(slin16),,g)."""
    variables = {"REC": str(tmp_path / "quiet.wav")}
    call_id = await call_bot(ami, "quiet", variables, exten=exten)
    record = await asyncio.to_thread(finished_record, gateway, call_id)
    assert record["sample_rate"] == rate
    assert record["outcome"] == "transferred" and record["handoff_reason"] == "dtmf"
    assert "peer" not in record["end_reason"]
    dtmf = [e for e in record["timeline"] if e["event"]["type"] == "dtmf"]
    assert dtmf and dtmf[0]["t_ms"] > 6000  # pressed after the 6 s of quiet, still heard
