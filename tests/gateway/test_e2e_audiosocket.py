"""AudioSocket end to end: real TCP, the real engines, frames exactly as Asterisk sends them."""

from __future__ import annotations

import asyncio
import itertools
import socket
import struct
import time
import uuid

import httpx
import pytest

from services.common.audio import read_wav, split_frames
from services.gateway.audiosocket.protocol import (
    HEADER,
    FrameDecoder,
    Kind,
    audio_frame,
    dtmf_frame,
    uuid_frame,
)
from services.gateway.call.policy import CallPolicy, HandoffTarget
from services.gateway.simulator import AudioSocketCaller, Turn

from .conftest import active_calls, audiosocket_address

SILENCE_8K = b"\0" * 320


class RawPeer:
    """A hand-driven Asterisk: send exact bytes, collect what the gateway answers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.frames: list[tuple[float, int, int]] = []  # (time, kind, length)
        self.voiced = 0  # audio frames that are not silence
        self.task = asyncio.create_task(self._read())

    @classmethod
    async def connect(cls, address: str) -> RawPeer:
        host, port = address.rsplit(":", 1)
        return cls(*await asyncio.open_connection(host, int(port)))

    async def _read(self) -> None:
        decoder = FrameDecoder()
        while data := await self.reader.read(65536):
            for frame in decoder.feed(data):
                self.frames.append((time.monotonic(), frame.kind, len(frame.payload)))
                self.voiced += frame.is_audio and any(frame.payload)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def closed(self, timeout: float = 10) -> None:
        await asyncio.wait_for(self.task, timeout)

    def kinds(self) -> set[int]:
        return {kind for _, kind, _ in self.frames}


def record(gateway: str, call_id: str, tries: int = 50) -> dict:
    for _ in range(tries):
        reply = httpx.get(f"{gateway}/v1/calls/{call_id}")
        if reply.status_code == 200 and reply.json()["outcome"] != "in_progress":
            return reply.json()
        time.sleep(0.1)
    raise AssertionError(f"no finished record for {call_id}")


async def test_spoken_call_at_8khz_through_real_vosk(gateway, espeak_wav):
    wav = espeak_wav("안녕하세요. 오늘 날씨가 아주 좋습니다.", "ko", "as-ko")
    caller = AudioSocketCaller(audiosocket_address(gateway), gateway, sample_rate=8000)
    result = await caller.run([Turn("wav", str(wav))])
    turn = result.turns[0]
    assert turn.heard and any("\uac00" <= ch <= "\ud7a3" for ch in turn.heard)
    assert turn.reply and turn.latency_ms is not None and turn.reply_audio
    assert result.record["transport"] == "audiosocket" and result.record["sample_rate"] == 8000
    # The gateway talked back in 8 kHz slin: kind 0x10, 320-byte (20 ms) frames, never empty.
    sizes = {len(f) for _, f in caller.frames}
    assert sizes == {320}


async def test_line_is_never_quiet_frames_every_20ms(gateway):
    """Asterisk has no jitter buffer and hangs up after ~2 s of nothing: silence is sent too."""
    peer = await RawPeer.connect(audiosocket_address(gateway))
    await peer.send(uuid_frame(str(uuid.uuid4())))
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < 3.0:
        await peer.send(audio_frame(Kind.AUDIO, SILENCE_8K))
        n += 1
        await asyncio.sleep(max(0, start + n * 0.02 - time.monotonic()))
    times = [t for t, kind, _ in peer.frames if kind == Kind.AUDIO]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) >= 140  # ~150 frames in 3 s: greeting, then silence
    assert max(gaps) < 0.15  # (this process also runs the server, Vosk and the test client)
    assert peer.kinds() == {Kind.AUDIO}
    peer.writer.close()
    await peer.closed()


@pytest.mark.parametrize(
    ("kind", "size"),
    [
        (Kind.SLIN16, 640),
        (Kind.AUDIO, 640),
        (Kind.SLIN12, 480),
        (Kind.SLIN44, 1764),
        (Kind.SLIN96, 3840),
    ],
)
async def test_channel_driver_rates_are_answered_in_kind(gateway, kind, size):
    """Dial(AudioSocket/host:port/uuid/c(slin16)): 0x12 frames, or 0x10 from an older Asterisk;
    rates the TTS engine does not render (12, 44.1 kHz) are resampled, still audible."""
    peer = await RawPeer.connect(audiosocket_address(gateway))
    await peer.send(uuid_frame(str(uuid.uuid4())))
    for _ in range(60):
        await peer.send(audio_frame(kind, b"\0" * size))
        await asyncio.sleep(0.02)
    audio = [(k, n) for _, k, n in peer.frames if k != Kind.HANGUP]
    assert audio and set(audio) == {(kind, size)}
    assert peer.voiced, "the greeting is heard, not silence"
    peer.writer.close()
    await peer.closed()


async def test_dtmf_zero_transfers_by_hangup_and_route(gateway):
    call_id = str(uuid.uuid4())
    peer = await RawPeer.connect(audiosocket_address(gateway))
    await peer.send(uuid_frame(call_id))
    for n in range(300):
        if peer.task.done():
            break
        try:
            await peer.send(audio_frame(Kind.AUDIO, SILENCE_8K))
            if n == 20:
                await peer.send(dtmf_frame("0"))
        except ConnectionResetError:  # the gateway hung up between our check and this write
            break
        await asyncio.sleep(0.02)
    await peer.closed()
    assert peer.frames[-1][1] == Kind.HANGUP  # AudioSocket() returns 0; the dialplan goes on
    assert httpx.get(f"{gateway}/v1/calls/{call_id}/route").text == "operators"
    rec = record(gateway, call_id)
    assert rec["outcome"] == "transferred" and rec["handoff_reason"] == "dtmf"


async def test_silence_reprompts_then_transfers(gateway_with, engines):
    policy = CallPolicy(silence_timeout_s=1.0, max_reprompts=1, handoff_to=HandoffTarget.DIALPLAN)
    with gateway_with(policy) as url:
        caller = AudioSocketCaller(audiosocket_address(url), url)
        # Greeting, reprompt and notice take ~10 s of speech; the turn ends when the bot hangs up.
        result = await caller.run([Turn("silence", "40")])
    assert caller.hung_up.is_set()
    sources = [t["source"] for t in result.record["turns"]]
    assert sources == ["bot", "bot", "bot"]  # greeting, one reprompt, transfer notice
    assert (
        result.record["outcome"] == "transferred" and result.record["handoff_reason"] == "silence"
    )


async def test_barge_in_over_the_greeting(gateway, espeak_wav):
    wav = espeak_wav("안녕하세요. 오늘 날씨가 아주 좋습니다.", "ko", "as-barge")
    caller = AudioSocketCaller(audiosocket_address(gateway), gateway, sample_rate=8000)
    result = await caller.run([Turn("wav", str(wav), barge_in=True)])
    assert result.record["turns"][0]["barged_in"] is True
    assert any(e["event"]["type"] == "barge_in" for e in result.record["timeline"])
    assert result.turns[0].heard


BAD_INPUTS = {
    "unknown kind": HEADER.pack(0x42, 2) + b"\0\0",
    "zero-length audio": HEADER.pack(Kind.AUDIO, 0),
    "64 KiB frame": HEADER.pack(Kind.AUDIO, 0xFFFF) + b"\0" * 1000,
    "length beyond payload": HEADER.pack(Kind.AUDIO, 320) + b"\0" * 100,
    "truncated header": b"\x10\x01",
}


async def _good_call_alongside(address: str, seconds: float) -> list[float]:
    """A well-behaved call during the bad ones: its frames must keep coming every 20 ms."""
    peer = await RawPeer.connect(address)
    await peer.send(uuid_frame(str(uuid.uuid4())))
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        await peer.send(audio_frame(Kind.AUDIO, SILENCE_8K))
        n += 1
        await asyncio.sleep(max(0, start + n * 0.02 - time.monotonic()))
    times = [t for t, k, _ in peer.frames if k == Kind.AUDIO]
    peer.writer.close()
    await peer.closed()
    return times


async def test_bad_input_ends_only_that_call_and_its_record_says_why(gateway):
    address = audiosocket_address(gateway)
    good = asyncio.create_task(_good_call_alongside(address, 4.0))
    ids = {}
    for name, data in BAD_INPUTS.items():
        ids[name] = str(uuid.uuid4())
        peer = await RawPeer.connect(address)
        await peer.send(uuid_frame(ids[name]) + audio_frame(Kind.AUDIO, SILENCE_8K) + data)
        if name in ("length beyond payload", "truncated header"):
            peer.writer.write_eof()  # then the peer closes mid-frame
        await peer.closed()
    before_uuid = await RawPeer.connect(address)
    await before_uuid.send(audio_frame(Kind.AUDIO, SILENCE_8K))
    await before_uuid.closed()
    assert before_uuid.frames == [(before_uuid.frames[0][0], Kind.HANGUP, 0)]

    reasons = {name: record(gateway, call_id)["end_reason"] for name, call_id in ids.items()}
    assert "unknown frame kind 0x42" in reasons["unknown kind"]
    assert "zero-length audio" in reasons["zero-length audio"]
    assert "exceeds" in reasons["64 KiB frame"]
    assert "closed inside a frame" in reasons["length beyond payload"]
    assert "closed inside a frame" in reasons["truncated header"]
    assert all(r.startswith("protocol error") for r in reasons.values())

    times = await good
    times = [t for t in times if t > times[0] + 0.5]  # after its own set-up
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) > 150 and max(gaps) < 0.15  # the good call never stalled


async def test_slow_loris_and_vanishing_peers_are_cut_off(gateway):
    address = audiosocket_address(gateway)
    slow_id = str(uuid.uuid4())
    slow = await RawPeer.connect(address)
    await slow.send(uuid_frame(slow_id) + audio_frame(Kind.AUDIO, SILENCE_8K))
    frame = audio_frame(Kind.AUDIO, SILENCE_8K)
    with pytest.raises((ConnectionError, asyncio.TimeoutError)):
        async with asyncio.timeout(5):
            for i in range(len(frame)):  # one byte every 0.3 s: a frame would take 1.5 minutes
                await slow.send(frame[i : i + 1])
                await asyncio.sleep(0.3)
                if slow.task.done():
                    raise ConnectionError("gateway hung up")
    assert "incomplete frame" in record(gateway, slow_id)["end_reason"]

    gone_id = str(uuid.uuid4())
    gone = await RawPeer.connect(address)
    await gone.send(uuid_frame(gone_id) + audio_frame(Kind.AUDIO, SILENCE_8K) * 10)
    sock = gone.writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    gone.writer.transport.abort()  # a reset, no hangup frame
    await asyncio.sleep(0.1)  # abort() closes the socket on the loop's next turn
    rec = record(gateway, gone_id)
    # A reset reads as EOF, "vanished", or a failed write (a quiet line alone ends nothing).
    assert rec["end_reason"] in ("caller_hangup", "disconnect") or "vanished" in rec["end_reason"]
    deadline = time.monotonic() + 5
    while active_calls(gateway) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert active_calls(gateway) == 0


def test_a_peer_that_stops_acknowledging_is_cut_off_by_the_write_bound(gateway):
    """Neither reads nor sends, socket open (a stuck or vanished host; a quiet caller still
    reads): the kernel fails our socket once the audio goes unacknowledged for the write
    timeout (TCP_USER_TIMEOUT; a full receive window counts on Linux)."""
    host, port = audiosocket_address(gateway).rsplit(":", 1)
    call_id = str(uuid.uuid4())
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        sock.connect((host, int(port)))
        sock.sendall(uuid_frame(call_id) + audio_frame(Kind.AUDIO, SILENCE_8K))
        start = time.monotonic()
        rec = record(gateway, call_id, tries=100)
        assert time.monotonic() - start < 8  # write timeout 2 s, plus the window filling
    assert "unacknowledged" in rec["end_reason"] or "vanished" in rec["end_reason"]


def test_audio_before_uuid_is_logged_and_refused(gateway):
    host, port = audiosocket_address(gateway).rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(audio_frame(Kind.AUDIO, SILENCE_8K))
        assert sock.recv(16) == b"\x00\x00\x00"


def test_wav_helper_is_8khz_ready(espeak_wav):
    pcm, rate = read_wav(espeak_wav("테스트", "ko", "rate"), 8000)
    assert rate == 8000 and all(len(f) == 320 for f in split_frames(pcm, 8000))
