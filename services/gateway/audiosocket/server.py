"""The AudioSocket TCP server: one connection is one call, adapted to the call engine.

Asterisk sends the UUID, then 20 ms audio frames while the caller's channel has media, and
expects audio back: the `AudioSocket()` application drops a call after 2 s with nothing on the
socket either way, so the call's pacer starts at once (at most FIRST_AUDIO_WAIT_S after the UUID,
to learn the line's rate) and keeps sending silence while the bot is quiet. The caller's side may
send nothing for a long time (silence suppression, a `Wait()`, hold): a quiet line is not a
hangup; only a hangup or error frame, a closed socket or a failed write ends the call. Every way a
connection can go wrong (bad framing, audio before the UUID, a slow or vanished peer, a reset)
ends that call alone, logged with its id, its record saying why.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import time
from collections.abc import AsyncIterator

from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.logging import get_logger
from services.gateway.asterisk.callers import CallerNumbers
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
from services.gateway.call.resample import StreamResampler
from services.gateway.engines import Engines
from services.gateway.registry import CallRegistry

log = get_logger("gateway.audiosocket")
MAX_CALL_RATE = 48000  # the engines' highest rate; 96/192 kHz lines are resampled to it
# Asterisk sends a connected channel's first audio within a frame or two; a caller whose media
# starts later is taken for the AudioSocket() application, always 8 kHz slin.
FIRST_AUDIO_WAIT_S = 0.2


class AudioSocketSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOICEBOT_AUDIOSOCKET_", extra="ignore")

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 9092
    # 0: no limit. A quiet caller (silence suppression, Wait(), hold) sends nothing for as long
    # as it likes; a vanished peer shows as a failed write (write_timeout_s), not as silence.
    idle_timeout_s: float = 0.0
    frame_timeout_s: float = 1.0  # a frame must arrive whole within this (slow-loris guard)
    # A peer that stops reading, or whose host vanished (TCP_USER_TIMEOUT: our frames unacked).
    write_timeout_s: float = 2.0


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
        self._up = StreamResampler(call_rate, wire_rate)
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
        callers: CallerNumbers | None = None,
    ) -> None:
        """`callers`: the numbers the dialplan posted (AudioSocket itself carries none)."""
        self._engines, self._registry, self._policy, self._settings = (
            engines,
            registry,
            policy,
            settings,
        )
        self._callers = callers or CallerNumbers()
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
        address = writer.get_extra_info("peername")  # None when it reset before we looked
        peer = f"{address[0]}:{address[1]}" if address else "unknown"
        _limit_unacked(writer, self._settings.write_timeout_s)
        frames = self._frames(reader)
        call_id = None
        waiting: asyncio.Task[Frame | None] | None = None
        early: list[Frame] = []  # DTMF before the first audio is kept, not lost
        first_audio: Frame | None = None
        try:
            try:  # Asterisk sends it on connecting
                async with asyncio.timeout(self._settings.frame_timeout_s):
                    first = await anext(frames)
            except TimeoutError:
                raise TimeoutError(f"no UUID for {self._settings.frame_timeout_s:g} s") from None
            if first.kind is not Kind.UUID:
                raise ProtocolError(f"{first.kind.name} frame before the UUID")
            call_id = first.uuid
            # A read not cancelled on time-out (that would close the generator): the call
            # goes on with it.
            waiting = asyncio.create_task(_next(frames))
            deadline = time.monotonic() + FIRST_AUDIO_WAIT_S
            while first_audio is None:
                await asyncio.wait({waiting}, timeout=max(deadline - time.monotonic(), 0))
                if not waiting.done():
                    break
                if (frame := waiting.result()) is None:
                    raise StopAsyncIteration
                waiting = asyncio.create_task(_next(frames))
                if frame.is_audio:
                    first_audio = frame
                elif frame.kind in (Kind.HANGUP, Kind.ERROR):
                    raise ProtocolError(f"{frame.kind.name.lower()} before any audio")
                else:
                    early.append(frame)
        except (ProtocolError, TimeoutError, ConnectionError, StopAsyncIteration) as exc:
            if waiting is not None:
                waiting.cancel()
            reason = _reason(exc)
            log.warning("audiosocket_rejected", peer=peer, call_id=call_id, reason=reason)
            if call_id is not None:
                await asyncio.to_thread(
                    self._registry.store.save, _failed_record(call_id, peer, reason)
                )
            await _hangup(writer)
            return
        if first_audio is None:  # late media: the AudioSocket() application's 8 kHz slin
            kind, wire_rate = Kind.AUDIO, 8000
        else:
            kind, wire_rate = first_audio.kind, rate_of_first_audio(first_audio)
            early.append(first_audio)
        call_rate = min(wire_rate, MAX_CALL_RATE)
        output = AudioSocketOutput(
            writer, kind, wire_rate, call_rate, self._settings.write_timeout_s
        )
        leg = MediaLeg(
            call_id=call_id,
            caller_id=self._callers.take(call_id) or peer,
            sample_rate=call_rate,
            transport="audiosocket",
            output=output,
            policy=self._policy,
        )
        assert waiting is not None
        await self._registry.run(leg, self._inputs(early, waiting, frames, wire_rate, call_rate))
        if leg.ending is not None and leg.ending.reason in RELEASED_BY_US:
            await _hangup(writer)  # AudioSocket() returns and the dialplan goes on (Queue())

    async def _inputs(
        self,
        early: list[Frame],
        waiting: asyncio.Task[Frame | None],
        frames: AsyncIterator[Frame],
        wire_rate: int,
        call_rate: int,
    ) -> AsyncIterator[CallerInput]:
        async def all_frames() -> AsyncIterator[Frame]:
            for frame in early:
                yield frame
            if (pending := await waiting) is not None:
                yield pending
                async for frame in frames:
                    yield frame

        down = StreamResampler(wire_rate, call_rate)
        try:
            async for frame in all_frames():
                if frame.is_audio:
                    if (rate := rate_of_first_audio(frame)) != wire_rate:
                        # Media that began after the call did, at another rate (the channel
                        # driver's c(slin16)): heard resampled; the bot still answers in 8 kHz.
                        wire_rate, down = rate, StreamResampler(rate, call_rate)
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
            elif self._settings.idle_timeout_s:
                timeout = self._settings.idle_timeout_s
            else:
                timeout = None  # a quiet line is not a hangup
            # No task per read, as wait_for would make.
            deadline = asyncio.timeout(None if timeout is None else max(timeout, 0.001))
            try:
                async with deadline:
                    data = await reader.read(65536)
            except TimeoutError:
                if not deadline.expired():  # ETIMEDOUT from the socket: see _reason
                    raise
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


def _limit_unacked(writer: asyncio.StreamWriter, timeout_s: float) -> None:
    """A peer whose host vanished acks nothing: the kernel fails the socket after `timeout_s`
    (TCP_USER_TIMEOUT, Linux) instead of retransmitting for ~15 minutes."""
    sock = writer.get_extra_info("socket")
    # Not on every platform; on a socket already reset the next read or write ends the call.
    with contextlib.suppress(OSError, ValueError, AttributeError):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, int(timeout_s * 1000))


async def _next(frames: AsyncIterator[Frame]) -> Frame | None:
    return await anext(frames, None)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ProtocolError):
        return f"protocol error: {exc}"
    if isinstance(exc, StopAsyncIteration):
        return "peer closed before any audio"
    if isinstance(exc, ConnectionError):
        return f"peer vanished: {type(exc).__name__}"
    if isinstance(exc, OSError) and exc.errno == errno.ETIMEDOUT:
        return "peer vanished: our audio went unacknowledged (TCP_USER_TIMEOUT)"
    return str(exc) or type(exc).__name__


def _failed_record(call_id: str, peer: str, reason: str) -> CallRecord:
    record = CallRecord.begin(call_id, peer, "audiosocket", 8000)
    record.outcome, record.end_reason, record.ended_at = "abandoned", reason, record.started_at
    return record


async def _hangup(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.write(HANGUP_FRAME)
        await asyncio.wait_for(writer.drain(), 1.0)
