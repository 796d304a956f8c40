"""An AudioSocket caller through a real Asterisk talks to an operator's browser client.

The caller half of a Local channel (asterisk_harness.py) presses 0, then plays a 440 Hz tone
and records what it hears (MixMonitor's `r()`: the audio the channel receives); the operator's
console (test_e2e_operator.Console: the handoff API, its events WebSocket, the gateway's audio
WebSocket at 16 kHz) accepts the offer and sends 1 kHz. Each side must hear the other's tone at
its own rate: the gateway bridges the operator's audio onto the caller's AudioSocket.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import numpy as np
import pytest

from services.common.audio import read_wav, write_wav

from .asterisk_harness import (
    ami_session,
    asterisk_missing,
    call_bot,
    running_asterisk,
    sample_dialplan,
    sample_manager,
)
from .test_e2e_operator import CALLER_HZ, OPERATOR_HZ, Console, pitch, queue_gateway, tone

pytestmark = pytest.mark.skipif(asterisk_missing() is not None, reason=asterisk_missing() or "")

CALLER = """
[caller]
exten => operator,1,Answer()
 same => n,MixMonitor(${ALL},r(${HEARD}))
 same => n,Wait(1)
 same => n,SendDTMF(0)
 same => n,Wait(4)
 same => n,Playback(${TONE})
 same => n,Wait(6)
 same => n,Hangup()
"""


def tone_windows(pcm: bytes, rate: int, hz: float, window_s: float = 0.2) -> int:
    """How many consecutive loud windows of `pcm` (the longest run) have `hz` as their pitch."""
    size = int(rate * window_s) * 2
    run = best = 0
    for start in range(0, len(pcm) - size + 1, size):
        window = pcm[start : start + size]
        loud = np.abs(np.frombuffer(window, "<i2")).mean() > 500
        run = run + 1 if loud and abs(pitch(window, rate) - hz) < 20 else 0
        best = max(best, run)
    return best


async def test_audiosocket_caller_through_asterisk_talks_to_an_operator(
    gateway_settings, engines, tmp_path: Path
):
    tone_file = tmp_path / "tone440"
    write_wav(tone_file.with_suffix(".wav"), tone(CALLER_HZ, 8000, 1.5), 8000)
    heard = tmp_path / "heard.wav"
    async with queue_gateway(gateway_settings, engines, tmp_path) as (base, _, address):
        configs = {
            "extensions.conf": sample_dialplan(address, f"http://{base}") + CALLER,
            "manager.conf": sample_manager(),
        }
        with contextlib.ExitStack() as stack:
            asterisk = await asyncio.to_thread(stack.enter_context, running_asterisk(configs))
            try:
                anna = Console(base, "anna")
                await anna.login(["operators"], available=True)
                async with ami_session(asterisk) as ami:
                    variables = {
                        "ALL": str(tmp_path / "all.wav"),
                        "HEARD": str(heard),
                        "TONE": str(tone_file),
                    }
                    call_id = await call_bot(ami, "operator", variables)
                    offer = await anna.offer()
                    assert offer["call_id"] == call_id
                    assert offer["context"]["caller_number"] == "79161234567"  # the dialplan's
                    await anna.command(action="accept", offer_id=offer["id"])
                    await anna.line.wait(lambda e: e["type"] == "connected")
                    accepted = time.monotonic()
                    await anna.line.stream(tone(OPERATOR_HZ, 16000, 1.0), 16000)

                    # The caller's tone (played ~5 s after the answer) reaches the operator.
                    deadline = time.monotonic() + 10
                    while tone_windows(anna.line.audio_since(accepted), 16000, CALLER_HZ) < 4:
                        assert time.monotonic() < deadline, "the operator never heard 440 Hz"
                        await asyncio.sleep(0.2)
                    await anna.command(action="finish", disposition="resolved", note="тест")
                    _, events = ami
                    await events.wait_for(
                        lambda m: m.event == "Hangup" and m.get("Channel").endswith(";1"), 15
                    )
                    rejoined = [
                        m
                        for m in events.seen
                        if m.event == "QueueCallerJoin" and m.variables.get("CALL_UUID") == call_id
                    ]
                    assert rejoined == [], "served by an operator, then queued again"
                await anna.close()
            finally:
                await asyncio.to_thread(stack.close)
    pcm, rate = read_wav(heard, 8000)
    assert tone_windows(pcm, rate, OPERATOR_HZ) >= 3, "the caller never heard the operator's 1 kHz"
