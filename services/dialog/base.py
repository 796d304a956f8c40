"""The seam between the gateway and the dialog engine: what one caller turn produces."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, Protocol

from pydantic import BaseModel

Decision = Literal["answer", "clarify", "handoff"]


class Act(StrEnum):
    """Conversation acts every KB understands (services/dialog/acts.yaml), whatever its topic."""

    BYE = "bye"  # the caller says goodbye: a farewell, then the call ends
    THANKS = "thanks"
    YES = "yes"
    NO = "no"
    REPEAT = "repeat"  # say the last thing again
    HELLO = "hello"  # «алло, вы меня слышите?»
    OPERATOR = "operator"  # the caller asks for a person


class Reason(StrEnum):
    """Why a turn did not get a plain answer: why the call is handed off, or NOT_UNDERSTOOD."""

    SCENARIO = "scenario"  # the scenario's own `handoff:` (Reply.intent names it)
    OPERATOR = "operator"  # the caller asked for a person
    # Nothing understood: the bot asks to rephrase (decision "clarify"). The gateway counts
    # these in a row and hands the call off at its limit (CallPolicy.max_nomatch).
    NOT_UNDERSTOOD = "not_understood"
    CLARIFY_REFUSED = "clarify_refused"  # «нет» to «Вы имеете в виду … или …?»
    STILL_AMBIGUOUS = "still_ambiguous"  # ambiguous again right after a clarify question
    SLOT_NOT_UNDERSTOOD = "slot_not_understood"  # no slot value after one retry
    MENU_NOT_UNDERSTOOD = "menu_not_understood"  # a key not in the menu, twice


class Alternative(BaseModel):
    intent: str
    score: float


class Expect(BaseModel):
    """What the caller's next turn should be, so the gateway can listen for it (that turn only).

    `menu`: one key picks (no inter-digit wait); `digits`: a number keyed in, closed by "#",
    by `dtmf_max_length` keys or by the inter-digit pause ("0" is then a digit, not the
    operator); `entity` / `clarify`: a short spoken answer.
    """

    kind: Literal["menu", "digits", "entity", "clarify"]
    slot: str | None = None  # the slot being asked for
    dtmf_max_length: int | None = None  # the key entry is complete after this many keys
    phrases: list[str] | None = None  # recognizer grammar (with "[unk]"); None: full model
    endpointing: Literal["short", "default", "dictation"] = "default"


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
    reason: Reason | None = None  # set on handoffs and on NOT_UNDERSTOOD rephrase prompts
    act: Act | None = None  # the conversation act the caller's turn was, if it was one
    end_call: bool = False  # goodbye: hang up after speaking
    expect: Expect | None = None  # how to listen for the next caller turn; None: as usual


class DialogSession(Protocol):
    """Per-call dialog state (last answer, open topic, pending slot). One per call."""

    def greeting(self) -> str: ...

    def respond(self, utterance: str) -> Reply: ...

    def expecting(self) -> Expect | None:
        """How to listen for the next caller turn now (after the greeting: the main menu)."""
        ...
