"""What the gateway tells a caller's client: one pydantic model per event type.

Every transport serialises these the same way (`event.model_dump(mode="json")`), so the
WebSocket protocol and the call record share one vocabulary.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from services.dialog.base import Alternative, Decision, Expect


class Started(BaseModel):
    type: Literal["started"] = "started"
    call_id: str
    sample_rate: int
    frame_ms: int
    degraded: bool
    inputs: list[str]  # what the caller may send: audio, text, dtmf


class StateChanged(BaseModel):
    type: Literal["state"] = "state"
    state: str


class Transcript(BaseModel):
    type: Literal["transcript"] = "transcript"
    turn: int
    text: str
    final: bool
    source: Literal["voice", "text", "dtmf"] = "voice"


class Intent(BaseModel):
    type: Literal["intent"] = "intent"
    turn: int
    intent: str | None
    score: float
    decision: Decision
    alternatives: list[Alternative] = []
    slots: dict[str, str] = {}
    expect: Expect | None = None  # how the gateway listens for the caller's next turn


class ReplyText(BaseModel):
    type: Literal["reply"] = "reply"
    turn: int
    text: str


class Playback(BaseModel):
    """Reply audio begins / ends; `interrupted` means barge-in: drop what is still buffered."""

    type: Literal["playback"] = "playback"
    turn: int
    status: Literal["started", "finished", "interrupted"]
    duration_ms: int = 0


class BargeIn(BaseModel):
    type: Literal["barge_in"] = "barge_in"
    turn: int


class Dtmf(BaseModel):
    type: Literal["dtmf"] = "dtmf"
    digit: str


class Handoff(BaseModel):
    type: Literal["handoff"] = "handoff"
    queue: str
    reason: str


class QueuePlace(BaseModel):
    """A waiting caller's place in an operator queue, as announced (`text`)."""

    type: Literal["queue"] = "queue"
    queue: str
    place: int
    eta_seconds: float | None
    text: str


class CallbackRequested(BaseModel):
    type: Literal["callback"] = "callback"
    number: str
    queue: str


class OperatorStatus(BaseModel):
    """The operator side of the call: connected (talking), hold / unhold, released."""

    type: Literal["operator"] = "operator"
    status: Literal["connected", "hold", "unhold", "released"]
    operator_id: str


class Error(BaseModel):
    type: Literal["error"] = "error"
    code: str
    message: str


class Hangup(BaseModel):
    type: Literal["hangup"] = "hangup"
    outcome: str
    reason: str


Event = (
    Started
    | StateChanged
    | Transcript
    | Intent
    | ReplyText
    | Playback
    | BargeIn
    | Dtmf
    | Handoff
    | QueuePlace
    | CallbackRequested
    | OperatorStatus
    | Error
    | Hangup
)
