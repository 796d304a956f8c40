"""AudioSocket framing, exactly as Asterisk implements it (res/res_audiosocket.c).

Every message: kind (1 byte), payload length (16-bit big-endian), payload. Asterisk sends the
call's UUID first (16 bytes), then audio every 20 ms, DTMF digits (one ASCII byte) and hangup or
error. It accepts only audio and hangup back: any other kind, or audio of length zero, makes it
end the call — so the encoder here can build nothing else.

The slin kinds 0x11-0x18 (Asterisk PR #1492, 2025) carry higher rates; before them every
format travelled as 0x10, so with `Dial(AudioSocket/…/c(slin16))` on an older Asterisk a 0x10
frame may hold 16 kHz audio: `rate_of_first_audio` tells by the size of the 20 ms frame.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from enum import IntEnum


class Kind(IntEnum):
    HANGUP = 0x00
    UUID = 0x01
    DTMF = 0x03
    AUDIO = 0x10  # slin, 8 kHz
    SLIN12 = 0x11
    SLIN16 = 0x12
    SLIN24 = 0x13
    SLIN32 = 0x14
    SLIN44 = 0x15
    SLIN48 = 0x16
    SLIN96 = 0x17
    SLIN192 = 0x18
    ERROR = 0xFF


# enum ast_audiosocket_msg_kind order: slin12, slin16, slin24, slin32, slin44, slin48, slin96,
# slin192 (Asterisk's slin44 format is 44.1 kHz).
AUDIO_RATES: dict[Kind, int] = {
    Kind.AUDIO: 8000,
    Kind.SLIN12: 12000,
    Kind.SLIN16: 16000,
    Kind.SLIN24: 24000,
    Kind.SLIN32: 32000,
    Kind.SLIN44: 44100,
    Kind.SLIN48: 48000,
    Kind.SLIN96: 96000,
    Kind.SLIN192: 192000,
}
AUDIO_KINDS = {rate: kind for kind, rate in AUDIO_RATES.items()}
HEADER = struct.Struct(">BH")
# 100 ms at the highest rate; anything bigger is not a 20 ms media frame but a broken peer.
MAX_PAYLOAD = 192000 * 2 // 10
DTMF_DIGITS = set(b"0123456789*#ABCD")
ASTERISK_ERRORS = {
    0x01: "hangup of calling party",
    0x02: "frame forwarding error",
    0x04: "memory error",
}


class ProtocolError(Exception):
    """The peer broke the framing; the call ends, with this reason in its record."""


@dataclass(frozen=True)
class Frame:
    kind: Kind
    payload: bytes

    @property
    def is_audio(self) -> bool:
        return self.kind in AUDIO_RATES

    @property
    def uuid(self) -> str:
        return str(uuid.UUID(bytes=self.payload))

    @property
    def digit(self) -> str:
        return chr(self.payload[0])

    @property
    def error(self) -> str:
        code = self.payload[0] if self.payload else 0
        return ASTERISK_ERRORS.get(code, f"error code {code:#04x}")


class FrameDecoder:
    """Incremental: feed bytes as they arrive, get whole frames; bad framing raises at once
    (a 64 KiB length is refused from its header, before any payload is buffered)."""

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        self._buf = bytearray()
        self._max = max_payload
        self._error: ProtocolError | None = None

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        """Whole frames in `data` (plus what was held back). Good frames before a bad one are
        returned first (the UUID names the call that broke); the error is raised next call."""
        self.raise_pending()
        self._buf += data
        frames: list[Frame] = []
        try:
            while len(self._buf) >= HEADER.size:
                raw_kind, length = HEADER.unpack_from(self._buf)
                kind = _check_header(raw_kind, length, self._max)
                if len(self._buf) < HEADER.size + length:
                    break
                payload = bytes(self._buf[HEADER.size : HEADER.size + length])
                del self._buf[: HEADER.size + length]
                frames.append(_check_payload(kind, payload))
        except ProtocolError as exc:
            self._buf.clear()
            if not frames:
                raise
            self._error = exc
        return frames

    def raise_pending(self) -> None:
        if self._error is not None:
            raise self._error

    def eof(self) -> None:
        """The peer closed: fine between frames, an error inside one."""
        self.raise_pending()
        if self._buf:
            raise ProtocolError(f"connection closed inside a frame ({len(self._buf)} bytes of it)")


def _check_header(raw_kind: int, length: int, max_payload: int) -> Kind:
    try:
        kind = Kind(raw_kind)
    except ValueError:
        raise ProtocolError(f"unknown frame kind {raw_kind:#04x}") from None
    if kind in AUDIO_RATES and length == 0:
        raise ProtocolError("zero-length audio frame")
    if length > max_payload:
        raise ProtocolError(f"{kind.name} frame of {length} bytes exceeds {max_payload}")
    if kind is Kind.UUID and length != 16:
        raise ProtocolError(f"UUID frame of {length} bytes, want 16")
    if kind is Kind.DTMF and length != 1:
        raise ProtocolError(f"DTMF frame of {length} bytes, want 1")
    return kind


def _check_payload(kind: Kind, payload: bytes) -> Frame:
    if kind in AUDIO_RATES and len(payload) % 2:
        raise ProtocolError(f"audio frame of {len(payload)} bytes is not whole 16-bit samples")
    if kind is Kind.DTMF and payload[0] not in DTMF_DIGITS:
        raise ProtocolError(f"DTMF frame with byte {payload[0]:#04x}, not a key")
    return Frame(kind, payload)


def rate_of_first_audio(frame: Frame) -> int:
    """The call's rate: from the kind, or for 0x10 from the 20 ms frame size (older Asterisk
    sends 0x10 whatever the channel's slin rate)."""
    if frame.kind is not Kind.AUDIO:
        return AUDIO_RATES[frame.kind]
    samples_20ms = len(frame.payload) // 2
    rate = samples_20ms * 50
    return rate if rate in AUDIO_KINDS else 8000


def audio_frame(kind: Kind, pcm: bytes) -> bytes:
    """Audio in the kind the call uses (an older Asterisk uses 0x10 whatever its rate)."""
    if not pcm:
        raise ValueError("Asterisk hangs up on zero-length audio; send silence instead")
    return HEADER.pack(kind, len(pcm)) + pcm


HANGUP_FRAME = HEADER.pack(Kind.HANGUP, 0)


def uuid_frame(call_uuid: str) -> bytes:
    """What Asterisk sends first (for the caller simulator and tests)."""
    return HEADER.pack(Kind.UUID, 16) + uuid.UUID(call_uuid).bytes


def dtmf_frame(digit: str) -> bytes:
    return HEADER.pack(Kind.DTMF, 1) + digit.encode("ascii")
