"""The seam between the gateway and the dialog engine: what one caller turn produces."""

from __future__ import annotations

from typing import Literal, Protocol

from pydantic import BaseModel

Decision = Literal["answer", "clarify", "handoff"]


class Alternative(BaseModel):
    intent: str
    score: float


class Reply(BaseModel):
    """The dialog engine's answer to one caller utterance."""

    text: str  # the caller's utterance as heard
    decision: Decision
    intent: str | None  # scenario id, or None when nothing matched
    score: float  # calibrated confidence 0..1
    answer: str  # what the bot says (as text to show)
    slots: dict[str, str] = {}
    alternatives: list[Alternative] = []
    handoff_queue: str | None = None  # set when decision == "handoff"
    handoff_skill: str | None = None  # operator skill the scenario asks for, if any
    handoff_reason: str | None = None
    end_call: bool = False  # goodbye: hang up after speaking


class DialogSession(Protocol):
    """Per-call dialog state (last answer, open topic, pending slot). One per call."""

    def greeting(self) -> str: ...

    def respond(self, utterance: str) -> Reply: ...
