"""The caller's number the dialplan posts before AudioSocket(): the route and its store."""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import httpx

from services.gateway.asterisk.callers import CallerNumbers
from services.gateway.audiosocket.protocol import Kind, audio_frame, uuid_frame

from .conftest import audiosocket_address
from .test_e2e_audiosocket import SILENCE_8K, RawPeer, record


def test_numbers_wait_a_bounded_time_in_bounded_number() -> None:
    now = [0.0]
    callers = CallerNumbers(ttl_s=60, limit=2, clock=lambda: now[0])
    callers.announce("a", "+7")
    now[0] = 61
    assert callers.take("a") is None  # expired: its AudioSocket call never came
    for call_id in "bcd":
        callers.announce(call_id, call_id)
    assert callers.take("b") is None and callers.take("c") == "c" and callers.take("c") is None
    assert callers.take("d") == "d"


def test_bad_numbers_and_ids_are_refused_with_the_reason(gateway: str) -> None:
    call = f"{gateway}/v1/calls/{uuid.uuid4()}/caller"
    for body in ("", "12; DROP", "7" * 40, "+7 916"):
        reply = httpx.post(call, content=body)
        assert reply.status_code == 422 and "not a caller number" in reply.json()["detail"]
    reply = httpx.post(f"{gateway}/v1/calls/not-a-uuid/caller", content="79161234567")
    assert reply.status_code == 422 and "UUID" in reply.json()["detail"]
    assert httpx.post(call, json={"number": "+79161234567"}).status_code == 204


async def test_the_posted_number_is_the_call_records(gateway: str) -> None:
    before = str(uuid.uuid4())  # posted before AudioSocket() connects, as the dialplan does
    reply = httpx.post(f"{gateway}/v1/calls/{before}/caller", content="+79161234567")
    assert reply.status_code == 204
    late = str(uuid.uuid4())  # posted while the call runs
    peers = []
    for call_id in (before, late):
        peer = await RawPeer.connect(audiosocket_address(gateway))
        await peer.send(uuid_frame(call_id) + audio_frame(Kind.AUDIO, SILENCE_8K))
        peers.append(peer)
    await asyncio.sleep(0.5)
    reply = await asyncio.to_thread(
        httpx.post, f"{gateway}/v1/calls/{late}/caller", content="84951234567"
    )
    assert reply.status_code == 204
    for peer in peers:
        peer.writer.close()
        await peer.closed()
    assert (await asyncio.to_thread(record, gateway, before))["caller_id"] == "+79161234567"
    assert (await asyncio.to_thread(record, gateway, late))["caller_id"] == "84951234567"


def test_readme_documents_every_ami_setting() -> None:
    from services.gateway.asterisk.ami import AmiSettings

    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"`(VOICEBOT_AMI_[A-Z_]+)`", readme))
    expected = {f"VOICEBOT_AMI_{name.upper()}" for name in AmiSettings.model_fields}
    assert expected <= documented, f"undocumented: {sorted(expected - documented)}"
