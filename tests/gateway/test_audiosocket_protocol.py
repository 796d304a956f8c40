"""AudioSocket framing against Asterisk's rules, and a hypothesis fuzz of the frame parser."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.gateway.audiosocket.protocol import (
    AUDIO_RATES,
    HANGUP_FRAME,
    HEADER,
    Frame,
    FrameDecoder,
    Kind,
    ProtocolError,
    audio_frame,
    dtmf_frame,
    rate_of_first_audio,
    uuid_frame,
)

CALL = "40325ec2-5efd-4bd3-805f-53576e581d13"


def test_kinds_match_asterisk():
    assert (Kind.HANGUP, Kind.UUID, Kind.DTMF, Kind.AUDIO, Kind.ERROR) == (
        0x00,
        0x01,
        0x03,
        0x10,
        0xFF,
    )
    assert [int(k) for k in AUDIO_RATES] == list(range(0x10, 0x19))
    assert list(AUDIO_RATES.values()) == [
        8000,
        12000,
        16000,
        24000,
        32000,
        44100,
        48000,
        96000,
        192000,
    ]
    assert HANGUP_FRAME == b"\x00\x00\x00"


def test_a_call_as_asterisk_sends_it_split_anywhere():
    stream = uuid_frame(CALL) + audio_frame(Kind.AUDIO, b"\x01\x00" * 160) + dtmf_frame("5")
    decoder, frames = FrameDecoder(), []
    for i in range(0, len(stream), 7):  # TCP may cut frames anywhere
        frames += decoder.feed(stream[i : i + 7])
    decoder.eof()
    assert [f.kind for f in frames] == [Kind.UUID, Kind.AUDIO, Kind.DTMF]
    assert frames[0].uuid == CALL and len(frames[1].payload) == 320 and frames[2].digit == "5"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x42\x00\x01x", "unknown frame kind 0x42"),
        (HEADER.pack(Kind.AUDIO, 0), "zero-length audio"),
        (HEADER.pack(Kind.SLIN16, 0), "zero-length audio"),
        (HEADER.pack(Kind.AUDIO, 0xFFFF), "exceeds"),  # a 64 KiB frame
        (HEADER.pack(Kind.UUID, 4) + b"abcd", "want 16"),
        (HEADER.pack(Kind.DTMF, 1) + b"x", "not a key"),
        (HEADER.pack(Kind.AUDIO, 3) + b"abc", "not whole 16-bit samples"),
    ],
)
def test_malformed_frames_are_refused_with_a_reason(data, message):
    with pytest.raises(ProtocolError, match=message):
        FrameDecoder().feed(data)


@pytest.mark.parametrize("tail", [b"\x10\x01", HEADER.pack(Kind.AUDIO, 320) + b"\0" * 100])
def test_truncated_header_or_payload_at_eof_is_an_error(tail):
    decoder = FrameDecoder()
    assert decoder.feed(tail) == []
    with pytest.raises(ProtocolError, match="closed inside a frame"):
        decoder.eof()


def test_rate_of_first_audio_by_kind_or_by_frame_size():
    assert rate_of_first_audio(Frame(Kind.AUDIO, b"\0" * 320)) == 8000
    assert rate_of_first_audio(Frame(Kind.AUDIO, b"\0" * 640)) == 16000  # older Asterisk, slin16
    assert rate_of_first_audio(Frame(Kind.SLIN16, b"\0" * 640)) == 16000
    assert rate_of_first_audio(Frame(Kind.SLIN44, b"\0" * 1764)) == 44100


def test_encoder_never_builds_zero_length_audio():
    with pytest.raises(ValueError, match="zero-length"):
        audio_frame(Kind.AUDIO, b"")


@settings(max_examples=400, deadline=None)
@given(st.lists(st.binary(max_size=64), max_size=20))
def test_fuzz_parser_only_ever_yields_valid_frames_or_protocol_errors(chunks):
    decoder = FrameDecoder()
    try:
        for chunk in chunks:
            for frame in decoder.feed(chunk):
                assert isinstance(frame.kind, Kind)
                if frame.is_audio:
                    assert frame.payload and len(frame.payload) % 2 == 0
        decoder.eof()
    except ProtocolError:
        pass


valid_frames = st.one_of(
    st.uuids().map(lambda u: uuid_frame(str(u))),
    st.sampled_from("0123456789*#").map(dtmf_frame),
    st.tuples(st.sampled_from(list(AUDIO_RATES)), st.integers(1, 400)).map(
        lambda kn: audio_frame(kn[0], b"\x01\x02" * kn[1])
    ),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(valid_frames, min_size=1, max_size=12), st.data())
def test_fuzz_valid_streams_parse_identically_however_they_are_cut(frames, data):
    stream = b"".join(frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    decoder, parsed = FrameDecoder(), []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        parsed += decoder.feed(stream[start:end])
    decoder.eof()
    assert b"".join(HEADER.pack(f.kind, len(f.payload)) + f.payload for f in parsed) == stream
    assert all(str(uuid.UUID(f.uuid)) for f in parsed if f.kind is Kind.UUID)
