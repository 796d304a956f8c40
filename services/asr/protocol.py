"""The vosk-server WebSocket protocol: messages in, replies out (no I/O here).

Client → server: an optional text `{"config": {...}}` (no reply), binary audio chunks (exactly one
reply each, in order), `{"reset" : 1}` (final result, session goes on), `{"eof" : 1}` (final
result, session ends). Server → client: `{"partial": "..."}` or
`{"text": "...", "result": [{"word", "start", "end", "conf"}, ...]}`, or with `max_alternatives`
`{"alternatives": [{"text", "confidence", "result"}, ...]}`.

Our additions, which plain vosk-server clients never send: config keys `format` ("pcm16",
"mulaw", "alaw") and `endpointing` ({"silence_ms", "max_utterance_s"}), config sent again
mid-session to switch the phrase list or endpointing for the next utterance, and an error reply
`{"error": "...", "code": N}` just before the server closes the socket with close code N.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.asr.base import Alternative, Endpointing, Hypothesis, RecognizerOverloaded, Word
from services.asr.telephony import Encoding, bytes_per_sample, check_format

# WebSocket close codes (RFC 6455 §7.4.1)
UNSUPPORTED_DATA = 1003
INVALID_PAYLOAD = 1007
MESSAGE_TOO_BIG = 1009
INTERNAL_ERROR = 1011
TRY_AGAIN_LATER = 1013


class ProtocolError(Exception):
    def __init__(self, message: str, code: int = UNSUPPORTED_DATA) -> None:
        super().__init__(message)
        self.code = code


class SessionConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sample_rate: float = 8000  # vosk-server's default: telephone audio
    words: bool = True
    max_alternatives: int = Field(0, ge=0, le=20)
    phrase_list: list[str] | None = None
    format: Encoding = "pcm16"
    endpointing: Endpointing = Field(default_factory=Endpointing)

    @model_validator(mode="after")
    def _supported(self) -> SessionConfig:
        check_format(self.sample_rate, self.format)
        return self

    @property
    def rate(self) -> int:
        return int(self.sample_rate)

    @property
    def sample_bytes(self) -> int:
        return bytes_per_sample(self.format)


# Fixed once audio flows: the recognizer was built for them.
STREAM_FIXED = ("sample_rate", "format", "words", "max_alternatives")


def updated_config(current: SessionConfig, changes: Any, started: bool) -> SessionConfig:
    if not isinstance(changes, dict):
        raise ProtocolError('"config" must be a JSON object')
    try:
        new = SessionConfig.model_validate({**current.model_dump(), **changes})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors()
        )
        raise ProtocolError(f"bad config: {problems}") from None
    if started:
        fixed = [k for k in STREAM_FIXED if getattr(new, k) != getattr(current, k)]
        if fixed:
            raise ProtocolError(f"{', '.join(fixed)} cannot change once audio has started")
    return new


def parse_text(text: str) -> tuple[str, Any]:
    """A client's text message as ("config", changes) | ("eof", None) | ("reset", None)."""
    try:
        message = json.loads(text)
    except ValueError:
        raise ProtocolError(f"text message is not JSON: {text[:80]!r}") from None
    if not isinstance(message, dict) or len(message) != 1:
        raise ProtocolError('expected one of {"config": {...}}, {"eof" : 1}, {"reset" : 1}')
    ((key, value),) = message.items()
    if key not in ("config", "eof", "reset"):
        raise ProtocolError(f'unknown message "{key}"; expected "config", "eof" or "reset"')
    return key, value if key == "config" else None


def _words(words: list[Word], conf: bool = True) -> list[dict[str, Any]]:
    return [w.model_dump(exclude=set() if conf else {"conf"}) for w in words]


def encode_reply(hyp: Hypothesis, config: SessionConfig) -> str:
    if not hyp.final:
        return json.dumps({"partial": hyp.text}, ensure_ascii=False)
    if config.max_alternatives > 0:
        alternatives = [
            {"text": a.text, "confidence": a.confidence}
            | ({"result": _words(a.words, conf=False)} if config.words and a.words else {})
            for a in hyp.alternatives
        ]
        return json.dumps({"alternatives": alternatives}, ensure_ascii=False)
    reply: dict[str, Any] = {"text": hyp.text}
    if config.words and hyp.words:
        reply = {"result": _words(hyp.words), **reply}
    return json.dumps(reply, ensure_ascii=False)


def encode_error(message: str, code: int) -> str:
    return json.dumps({"error": message, "code": code}, ensure_ascii=False)


class RemoteError(Exception):
    """The ASR service refused a message (its error reply)."""


def decode_reply(text: str) -> Hypothesis:
    """A server reply as a Hypothesis (the remote client's side)."""
    reply = json.loads(text)
    if "error" in reply:
        if reply.get("code") == TRY_AGAIN_LATER:
            raise RecognizerOverloaded(reply["error"])
        raise RemoteError(reply["error"])
    if "partial" in reply:
        return Hypothesis(text=reply["partial"], final=False)
    if "alternatives" in reply:
        alternatives = [
            Alternative(
                text=a.get("text", ""),
                confidence=a.get("confidence", 0.0),
                words=[Word(**w) for w in a.get("result", [])],
            )
            for a in reply["alternatives"]
        ]
        best = alternatives[0] if alternatives else Alternative(text="", confidence=0.0)
        return Hypothesis(text=best.text, final=True, words=best.words, alternatives=alternatives)
    words = [Word(**w) for w in reply.get("result", [])]
    return Hypothesis(text=reply.get("text", ""), final=True, words=words)
