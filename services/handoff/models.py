"""The queue's vocabulary: who waits, who answers, how each wait and talk ends.

Every state, reason and ending is an enum; every value that crosses a module or the network is
a pydantic model. Times are seconds on the store's clock (wall time by default: the embedded
store persists them and the Redis store shares them between gateways).

A call's life in the queue:

    enqueue ──► waiting ──claim_next──► offered ──accept──► talking ──finish──► (record)
                  ▲                         │                 │
                  └──decline / expire / ────┘                 ├──transfer──► waiting (other queue)
                     operator lost (same place in line)        └──to the bot──► (record)
    waiting / offered ──leave(ABANDONED with a number)──► callback task (keeps the place)
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class OperatorState(StrEnum):
    LOGGED_OUT = "logged_out"
    AVAILABLE = "available"  # free: the router may offer a call
    OFFERED = "offered"  # holds one offer's lease
    TALKING = "talking"  # on a call (on hold counts as talking)
    WRAP_UP = "wrap_up"  # after a call: notes; available again after the wrap-up time
    AWAY = "away"  # logged in, takes no calls (also where a lease that ran out puts them)


# States an operator may ask for; the rest are the router's to set.
SETTABLE_STATES = frozenset({OperatorState.AVAILABLE, OperatorState.AWAY})


class CallState(StrEnum):
    WAITING = "waiting"
    OFFERED = "offered"
    TALKING = "talking"
    WRAP_UP = "wrap_up"  # the caller hung up mid-talk; kept until the operator finishes


class WaitEnd(StrEnum):
    """How a caller's wait in a queue ended."""

    ANSWERED = "answered"  # an operator took it (ours, or an Asterisk Queue() agent)
    ABANDONED = "abandoned"  # the caller hung up waiting
    CALLBACK_REQUESTED = "callback_requested"  # the caller asked to be called back instead
    RETURNED_TO_BOT = "returned_to_bot"  # the caller chose to go back to the bot
    LOST = "lost"  # the gateway that held the caller stopped (restart, crash)


# Ends the caller chooses (`leave`); ANSWERED comes from `accept`, LOST from `reap`, except for
# calls in Asterisk's own Queue() (transport asterisk_queue), where the gateway reports ANSWERED.
CALLER_ENDS = frozenset(
    {WaitEnd.ABANDONED, WaitEnd.CALLBACK_REQUESTED, WaitEnd.RETURNED_TO_BOT, WaitEnd.ANSWERED}
)


class Disposition(StrEnum):
    """How an operator closed a conversation."""

    RESOLVED = "resolved"
    CALLBACK = "callback"  # the matter needs a call back: a callback task is made
    ESCALATED = "escalated"
    TRANSFERRED = "transferred"  # set by `transfer` to another queue
    RETURNED_TO_BOT = "returned_to_bot"  # set by `transfer` back to the bot
    CALLER_HUNG_UP = "caller_hung_up"  # the caller left mid-talk; the operator may still finish


# What an operator picks when ending a call; the rest are set by transfers and hangups.
OPERATOR_DISPOSITIONS = frozenset(
    {Disposition.RESOLVED, Disposition.CALLBACK, Disposition.ESCALATED}
)


class OfferEnd(StrEnum):
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"  # the lease ran out
    OPERATOR_LOST = "operator_lost"  # logged out / the connection went away
    CALLER_LEFT = "caller_left"  # the caller hung up while offered


class CallbackOutcome(StrEnum):
    PENDING = "pending"
    DONE = "done"
    NO_ANSWER = "no_answer"  # tried, nobody picked up: stays due for another try
    FAILED = "failed"  # tried, the call could not be placed: stays due for another try
    CANCELLED = "cancelled"


# Outcomes after which a callback is still due.
OPEN_CALLBACK = frozenset(
    {CallbackOutcome.PENDING, CallbackOutcome.NO_ANSWER, CallbackOutcome.FAILED}
)


class HandoffReason(StrEnum):
    """Why the bot handed the call on (the dialog's `handoff_reason`, typed)."""

    CALLER_ASKED = "caller_asked"  # said «оператор» or pressed 0 / *
    LOW_CONFIDENCE = "low_confidence"
    NOT_UNDERSTOOD = "not_understood"
    STILL_AMBIGUOUS = "still_ambiguous"
    CLARIFY_REFUSED = "clarify_refused"
    MENU_NOT_UNDERSTOOD = "menu_not_understood"
    SLOT_NOT_UNDERSTOOD = "slot_not_understood"
    SCENARIO = "scenario"  # the knowledge base's scenario hands on by design
    TRANSFER = "transfer"  # an operator transferred the call here
    OTHER = "other"

    @classmethod
    def parse(cls, raw: str | None) -> HandoffReason:
        """The dialog's reason string («scenario:intent», «low_confidence», …) as an enum."""
        if not raw:
            return cls.OTHER
        head = raw.split(":", 1)[0]
        try:
            return cls(_REASON_ALIASES.get(head, head))
        except ValueError:
            return cls.OTHER


# The dialog's and the gateway's own words for the same reasons (dialog.base.Reason, the call's
# "dtmf" for the operator key, "no_match" for the policy's limit of misunderstood turns).
_REASON_ALIASES = {
    "operator": HandoffReason.CALLER_ASKED,
    "dtmf": HandoffReason.CALLER_ASKED,
    "no_match": HandoffReason.NOT_UNDERSTOOD,
}


class Transport(StrEnum):
    WEBSOCKET = "websocket"  # the /call WebSocket: the gateway holds the caller
    AUDIOSOCKET = "audiosocket"  # Asterisk AudioSocket: the gateway holds the caller
    ASTERISK_QUEUE = "asterisk_queue"  # Asterisk's own Queue(): followed over AMI


class Turn(BaseModel):
    """One line of the conversation the operator sees before answering."""

    model_config = ConfigDict(frozen=True)

    who: Literal["caller", "bot"]
    text: str
    intent: str | None = None
    score: float | None = None
    decision: str | None = None  # the dialog's decision (answer, clarify, handoff)
    at: float | None = None


class CallContext(BaseModel):
    """What the bot knows about a call when it hands it on."""

    call_id: str = Field(min_length=1, max_length=200)
    queue: str = Field(min_length=1, max_length=100)
    caller_number: str | None = None
    skill: str | None = None  # an operator must have it; None: anyone serving the queue
    priority: int = Field(0, ge=0, le=100, description="higher is served first")
    reason: HandoffReason = HandoffReason.OTHER
    reason_detail: str | None = None  # the raw reason, e.g. «scenario:complaint»
    turns: list[Turn] = Field(default_factory=list)
    slots: dict[str, str] = Field(default_factory=dict)
    transport: Transport = Transport.WEBSOCKET


class WaitingCall(BaseModel):
    """A call in a queue: waiting, offered to an operator, or talking to one."""

    context: CallContext
    state: CallState = CallState.WAITING
    enqueued_at: float  # the place in line: kept across declines, expiries and overflow
    origin_queue: str  # the queue it first joined (overflow moves `context.queue`)
    owner: str  # the gateway instance that holds the caller's media
    operator_id: str | None = None  # offered to / talking with
    offer_id: str | None = None
    offered_at: float | None = None
    lease_until: float | None = None
    answered_at: float | None = None
    ended_at: float | None = None  # the caller hung up mid-talk
    declined_by: list[str] = Field(default_factory=list)  # not offered to them again

    @property
    def call_id(self) -> str:
        return self.context.call_id


class OperatorLogin(BaseModel):
    id: str = Field(min_length=1, max_length=100, pattern=r"^[\w.@-]+$")
    name: str = Field("", max_length=200)
    skills: list[str] = Field(default_factory=list)
    queues: list[str] = Field(min_length=1, description="the queues this operator serves")


class Operator(OperatorLogin):
    state: OperatorState = OperatorState.LOGGED_OUT
    since: float = 0.0  # when the state began
    call_id: str | None = None  # offered / talking / wrapping up


class Offer(BaseModel):
    """A lease: the operator accepts before `expires_at` or the call goes back to its place."""

    id: str
    call_id: str
    operator_id: str
    offered_at: float
    expires_at: float
    context: CallContext
    waited_s: float  # how long the caller had waited when offered


class Position(BaseModel):
    """Where a waiting caller stands, and the estimate they hear."""

    call_id: str
    queue: str
    place: int = Field(ge=1)  # 1-based among the queue's callers not yet talking
    eta_seconds: float | None  # None: nobody on shift to estimate by
    eta_from_history: bool  # False: no handled call yet; the settings' default handling time
    operators_on_shift: int


class Callback(BaseModel):
    id: str
    call_id: str | None  # None for a callback not born in the queue (e.g. added by hand)
    number: str = Field(min_length=1, max_length=40)
    queue: str
    due_at: float
    created_at: float
    waited_since: float | None = None  # the place in line it keeps (the wait's enqueued_at)
    attempts: int = 0
    outcome: CallbackOutcome = CallbackOutcome.PENDING
    last_attempt_at: float | None = None
    note: str = ""
    reason: WaitEnd | Disposition


class WaitRecord(BaseModel):
    """One ended wait in a queue, for the figures and the ETA."""

    call_id: str
    queue: str
    enqueued_at: float
    ended_at: float
    end: WaitEnd

    @property
    def waited_s(self) -> float:
        return self.ended_at - self.enqueued_at


class TalkRecord(BaseModel):
    """One finished (or transferred) conversation, for the figures and the supervisor."""

    call_id: str
    queue: str
    operator_id: str | None
    answered_at: float
    ended_at: float
    disposition: Disposition
    note: str = ""


class QueueFigures(BaseModel):
    """The key figures of a hotline queue, over the store's recent history window."""

    queue: str
    waiting_now: int
    longest_wait_s: float
    answered: int
    abandoned: int
    asa_s: float | None  # average speed of answer (mean wait of answered calls)
    abandonment_rate: float | None  # abandoned / (answered + abandoned)
    service_level: float | None  # share answered within `service_level_s`
    service_level_s: float
    aht_s: float | None  # average handling time of finished talks
    callbacks_due: int
    callbacks_done: int
    operators_on_shift: int
