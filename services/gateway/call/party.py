"""Who drives a call's media leg, and how each one hands it on.

A call is one `MediaLeg` (the transport's audio in and out, owned by the adapter for the life of
the connection) driven in turn by parties: the bot's conversation, the queue's hold loop, an
operator bridge. A party runs until it is done with the caller and says what comes next:

    bot ──ToQueue──► hold ──ToOperator──► bridge ──ToBot──► bot …
                                            └────ToQueue──► hold …
    any party ──End(ending)──► the call is over (the caller hung up, the bot said goodbye, …)

The switchboard turns each hand-on into the next party; endings are typed, never strings
compared across modules (the record keeps `Ending.text`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from services.gateway.call.leg import MediaLeg


class EndReason(StrEnum):
    CALLER_HANGUP = "caller_hangup"
    TRANSFER = "transfer"  # handed to a queue outside the gateway (the dialplan's Queue())
    BOT_GOODBYE = "bot_goodbye"
    SILENCE = "silence"
    CALLBACK = "callback"  # the caller left a callback request instead of waiting
    OPERATOR_DONE = "operator_done"  # an operator ended the conversation
    DISCONNECT = "disconnect"  # our writes to the caller's side failed
    PEER_GONE = "peer_gone"  # the transport broke: reset, timeout, an error frame
    PROTOCOL_ERROR = "protocol_error"  # the peer broke the framing
    ERROR = "error"  # our own failure
    CLOSED = "closed"


# Endings where the caller's side is still there and the gateway lets it go (AudioSocket sends
# its hangup frame then, and the dialplan carries on).
RELEASED_BY_US = frozenset(
    {
        EndReason.TRANSFER,
        EndReason.BOT_GOODBYE,
        EndReason.SILENCE,
        EndReason.CALLBACK,
        EndReason.OPERATOR_DONE,
        EndReason.PROTOCOL_ERROR,
    }
)


@dataclass(frozen=True)
class Ending:
    reason: EndReason
    detail: str = ""  # what broke, for the record ("peer timeout: no data for 5 s", …)

    @property
    def text(self) -> str:
        return self.detail or self.reason.value


@dataclass(frozen=True)
class End:
    ending: Ending


@dataclass(frozen=True)
class ToQueue:
    """The caller goes to an operator queue; the context (turns, slots, caller id) is the
    call's record. `enqueued`: already in line there (an operator's transfer)."""

    queue: str
    reason: str
    enqueued: bool = False


@dataclass(frozen=True)
class ToOperator:
    operator_id: str
    queue: str


@dataclass(frozen=True)
class ToBot:
    """An operator hands the caller back to the bot."""


Next = End | ToQueue | ToOperator | ToBot


class Party(Protocol):
    async def run(self, leg: MediaLeg) -> Next:
        """Drive the leg until done with the caller; never close the transport."""
        ...


class Switchboard(Protocol):
    def next_party(self, leg: MediaLeg, handed: ToQueue | ToOperator | ToBot) -> Party | End:
        """Who takes the leg next, or how the call ends here."""
        ...
