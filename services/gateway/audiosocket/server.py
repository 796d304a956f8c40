"""The AudioSocket TCP server: one connection is one call, adapted to the call engine.

Asterisk sends the UUID, then 20 ms audio frames without pause for the whole call, and expects
the same back: the call's pacer keeps sending silence while the bot is quiet. Every way a
connection can go wrong (bad framing, audio before the UUID, a slow or silent peer, a reset) ends
that call alone, logged with its id, its record saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import soxr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.logging import get_logger
from services.gateway.audiosocket.protocol import (
    HANGUP_FRAME,
    Frame,
    FrameDecoder,
    Kind,
    ProtocolError,
    audio_frame,
    rate_of_first_audio,
)
from services.gateway.call import events as ev
from services.gateway.call.leg import Audio, CallerInput, Digit, HangUp, MediaLeg
from services.gateway.call.party import RELEASED_BY_US, Ending, EndReason
from services.gateway.call.policy import CallPolicy
from services.gateway.call.record import CallRecord
from services.gateway.engines import Engines
from services.gateway.registry import CallRegistry

log = get_logger("gateway.audiosocket")
MAX_CALL_RATE = 48000  # the engines' highest rate; 96/192 kHz lines are resampled to it


class AudioSocketSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOICEBOT_AUDIOSOCKET_", extra="ignore")

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9092
    idle_timeout_s: float = 5.0  # Asterisk sends a frame every 20 ms; 5 s of nothing: it's gone
    frame_timeout_s: float = 1.0  # a frame must arrive whole within this (slow-loris guard)
    write_timeout_s: float = 2.0  # a peer that stops reading is gone too


class _Resampler:
    """Streaming soxr between the line's rate and the call's (identity when they match)."""

    def __init__(self, src: int, dst: int) -> None:
        self._stream = soxr.ResampleStream(src, dst, 1, dtype="int16") if src != dst else None

    def __call__(self, pcm: bytes, size: int | None = None) -> bytes:
        if self._stream is None:
            return pcm
        import numpy as np

        out = self._stream.resample_chunk(np.frombuffer(pcm, dtype="<i2")).astype("<i2").tobytes()
        return out if size is None else out[:size].ljust(size, b"\0")


class AudioSocketOutput:
    idle_silence = True

    def __init__(
        self,
        writer: asyncio.StreamWriter,
        kind: Kind,
        wire_rate: int,
        call_rate: int,
        timeout_s: float,
    ) -> None:
        self._writer, self._kind, self._timeout = writer, kind, timeout_s
        self._up = _Resampler(call_rate, wire_rate)
        self._frame_size = wire_rate // 50 * 2

    async def event(self, event: ev.Event) -> None:
        """Telephone peers get no events (the call record keeps them)."""

    async def audio(self, frame: bytes) -> None:
        if self._writer.transport.is_closing():
            raise ConnectionResetError("the peer is gone")
        self._writer.write(audio_frame(self._kind, self._up(frame, self._frame_size)))
        # Frames leave at once while the peer reads; only a backlog is waited on (50 times a
        # second per call, a timer and a wait each would cost more than the frame itself).
        if self._writer.transport.get_write_buffer_size():
            async with asyncio.timeout(self._timeout):
                await self._writer.drain()


class AudioSocketServer:
    def __init__(
        self,
        engines: Engines,
        registry: CallRegistry,
        policy: CallPolicy,
        settings: AudioSocketSettings,
    ) -> None:
        self._engines, self._registry, self._policy, self._settings = (
            engines,
            registry,
            policy,
            settings,
        )
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        assert self._server is not None
        host, port = self._server.sockets[0].getsockname()[:2]
        return f"{host}:{port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(
            self._accept, self._settings.host, self._settings.port
        )
        log.info("audiosocket_listening", address=self.address)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            self._connections.discard(task)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = writer.get_extra_info("peername")[:2]
        peer = f"{host}:{port}"
        frames = self._frames(reader)
        call_id = None
        try:
            first = await anext(frames)
            if first.kind is not Kind.UUID:
                raise ProtocolError(f"{first.kind.name} frame before the UUID")
            call_id = first.uuid
            early: list[Frame] = []  # DTMF before the first audio is kept, not lost
            while not (frame := await anext(frames)).is_audio:
                if frame.kind in (Kind.HANGUP, Kind.ERROR):
                    raise ProtocolError(f"{frame.kind.name.lower()} before any audio")
                early.append(frame)
        except (ProtocolError, TimeoutError, ConnectionError, StopAsyncIteration) as exc:
            reason = _reason(exc)
            log.warning("audiosocket_rejected", peer=peer, call_id=call_id, reason=reason)
            if call_id is not None:
                await asyncio.to_thread(
                    self._registry.store.save, _failed_record(call_id, peer, reason)
                )
            await _hangup(writer)
            return
        wire_rate = rate_of_first_audio(frame)
        call_rate = min(wire_rate, MAX_CALL_RATE)
        output = AudioSocketOutput(
            writer, frame.kind, wire_rate, call_rate, self._settings.write_timeout_s
        )
        leg = MediaLeg(
            call_id=call_id,
            caller_id=peer,
            sample_rate=call_rate,
            transport="audiosocket",
            output=output,
            policy=self._policy,
        )
        down = _Resampler(wire_rate, call_rate)
        await self._registry.run(leg, self._inputs([*early, frame], frames, down))
        if leg.ending is not None and leg.ending.reason in RELEASED_BY_US:
            await _hangup(writer)  # AudioSocket() returns and the dialplan goes on (Queue())

    async def _inputs(
        self, first: list[Frame], frames: AsyncIterator[Frame], down: _Resampler
    ) -> AsyncIterator[CallerInput]:
        async def all_frames() -> AsyncIterator[Frame]:
            for frame in first:
                yield frame
            async for frame in frames:
                yield frame

        try:
            async for frame in all_frames():
                if frame.is_audio:
                    yield Audio(down(frame.payload))
                elif frame.kind is Kind.DTMF:
                    yield Digit(frame.digit)
                elif frame.kind is Kind.HANGUP:
                    yield HangUp()
                    return
                elif frame.kind is Kind.ERROR:
                    yield HangUp(Ending(EndReason.PEER_GONE, f"asterisk error: {frame.error}"))
                    return
                else:
                    raise ProtocolError(f"{frame.kind.name} frame in the middle of a call")
        except (ProtocolError, TimeoutError, ConnectionError) as exc:
            log.warning("audiosocket_call_broken", reason=_reason(exc))
            broken = isinstance(exc, ProtocolError)
            kind = EndReason.PROTOCOL_ERROR if broken else EndReason.PEER_GONE
            yield HangUp(Ending(kind, _reason(exc)))

    async def _frames(self, reader: asyncio.StreamReader) -> AsyncIterator[Frame]:
        """Frames as they arrive; a peer that goes quiet, or dribbles one frame, times out."""
        decoder = FrameDecoder()
        frame_started = 0.0
        while True:
            if decoder.pending:
                timeout = frame_started + self._settings.frame_timeout_s - time.monotonic()
            else:
                timeout = self._settings.idle_timeout_s
            try:
                async with asyncio.timeout(max(timeout, 0.001)):  # no task per read, as wait_for
                    data = await reader.read(65536)
            except TimeoutError:
                what = "an incomplete frame" if decoder.pending else "no data"
                raise TimeoutError(
                    f"peer timeout: {what} for {self._timeout_of(decoder)} s"
                ) from None
            if not data:
                decoder.eof()
                return
            had_pending = decoder.pending
            frames = decoder.feed(data)
            if decoder.pending and (frames or not had_pending):
                frame_started = time.monotonic()  # a new frame began arriving
            for frame in frames:
                yield frame
            decoder.raise_pending()

    def _timeout_of(self, decoder: FrameDecoder) -> float:
        return self._settings.frame_timeout_s if decoder.pending else self._settings.idle_timeout_s


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ProtocolError):
        return f"protocol error: {exc}"
    if isinstance(exc, StopAsyncIteration):
        return "peer closed before any audio"
    if isinstance(exc, ConnectionError):
        return f"peer vanished: {type(exc).__name__}"
    return str(exc) or type(exc).__name__


def _failed_record(call_id: str, peer: str, reason: str) -> CallRecord:
    record = CallRecord.begin(call_id, peer, "audiosocket", 8000)
    record.outcome, record.end_reason, record.ended_at = "abandoned", reason, record.started_at
    return record


async def _hangup(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.write(HANGUP_FRAME)
        await asyncio.wait_for(writer.drain(), 1.0)
