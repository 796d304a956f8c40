"""The queue's storage interface: one Protocol, two backends.

`EmbeddedStore` (services/handoff/embedded.py) keeps the state in the process and persists it
to SQLite (the default: one gateway). `RedisStore` (services/handoff/redis_store.py) keeps it in
Redis, for several gateways sharing one queue. Both pass the same test suite
(tests/handoff/test_store.py).

Every method is one atomic step: two operators calling `claim_next` at once never get the same
call, an `accept` racing a lease's expiry either wins or raises `OfferGone`. Routing — which call
an operator gets — is the store's, because only the store can make it atomic:
the highest priority first, then the longest waiting, among the calls of the operator's queues
whose skill the operator has and that this operator has not declined.

Times come from the store's clock (`clock: Callable[[], float]`, wall time by default).
Errors are `HandoffError` subclasses with a Russian message for the operator's screen; a refused
step changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from services.handoff.models import (
    Callback,
    CallbackOutcome,
    CallContext,
    Disposition,
    Offer,
    Operator,
    OperatorLogin,
    OperatorState,
    Position,
    QueueFigures,
    TalkRecord,
    WaitEnd,
    WaitingCall,
)


class HandoffError(Exception):
    """A step the queue refuses; the message is for the operator (Russian)."""


class UnknownCall(HandoffError):
    def __init__(self, call_id: str) -> None:
        super().__init__(f"Звонок {call_id} не найден в очереди")
        self.call_id = call_id


class UnknownOperator(HandoffError):
    def __init__(self, operator_id: str) -> None:
        super().__init__(f"Оператор {operator_id} не в системе")
        self.operator_id = operator_id


class UnknownCallback(HandoffError):
    def __init__(self, callback_id: str) -> None:
        super().__init__(f"Обратный звонок {callback_id} не найден")
        self.callback_id = callback_id


class OfferGone(HandoffError):
    """The offer was declined, expired, or the caller left: nothing to accept."""

    def __init__(self, offer_id: str) -> None:
        super().__init__("Предложение уже недействительно: звонок вернулся в очередь или завершён")
        self.offer_id = offer_id


class InvalidState(HandoffError):
    """The step does not fit the call's or operator's state (finish a call not talking, …)."""


class AlreadyQueued(HandoffError):
    def __init__(self, call_id: str) -> None:
        super().__init__(f"Звонок {call_id} уже в очереди")
        self.call_id = call_id


class HandoffStore(Protocol):
    """The queue's state. One instance per process; several may share a Redis."""

    # --- callers -------------------------------------------------------------------------
    async def enqueue(self, context: CallContext, owner: str) -> Position:
        """Put a call in line (`owner`: the gateway instance that holds its media).

        Raises AlreadyQueued for a call already in a queue (its place stays as it was)."""
        ...

    async def call(self, call_id: str) -> WaitingCall | None:
        """The call as the queue holds it (waiting, offered or talking), or None."""
        ...

    async def waiting(self, queue: str | None = None) -> list[WaitingCall]:
        """Calls not yet talking (waiting or offered), in routing order; one queue or all."""
        ...

    async def position(self, call_id: str) -> Position | None:
        """Where a waiting or offered call stands; None once it is talking or gone."""
        ...

    async def leave(self, call_id: str, end: WaitEnd) -> Callback | None:
        """The caller leaves the line (`end` in models.CALLER_ENDS).

        ABANDONED with a known caller number, and CALLBACK_REQUESTED, make a callback task that
        keeps the place in line (returned). A pending offer is withdrawn (OfferEnd.CALLER_LEFT).
        On a talking call: the caller hung up mid-talk; the talk ends (CALLER_HUNG_UP) and the
        operator goes to wrap-up. ANSWERED is for Asterisk Queue() calls an agent took outside
        this queue. Unknown calls: None (a hangup after the call was already finished)."""
        ...

    async def request_callback(self, call_id: str, number: str) -> Callback:
        """The caller asks to be called back at `number` instead of waiting (leaves the line)."""
        ...

    async def add_callback(
        self,
        number: str,
        queue: str,
        reason: WaitEnd | Disposition,
        *,
        call_id: str | None = None,
        note: str = "",
        waited_since: float | None = None,
    ) -> Callback:
        """A callback task for a call the queue never held (an Asterisk Queue() abandon)."""
        ...

    # --- operators -----------------------------------------------------------------------
    async def login(self, login: OperatorLogin) -> Operator:
        """Log in (or update skills and queues of a logged-in operator); state: AWAY until the
        operator sets AVAILABLE — unless already logged in, when the state stays."""
        ...

    async def logout(self, operator_id: str) -> list[Offer]:
        """Log out: a pending offer goes back (OfferEnd.OPERATOR_LOST; returned). Refused while
        talking (InvalidState): finish or transfer first."""
        ...

    async def set_state(self, operator_id: str, state: OperatorState) -> Operator:
        """AVAILABLE or AWAY (models.SETTABLE_STATES); from wrap-up too (ends it early)."""
        ...

    async def operator(self, operator_id: str) -> Operator | None: ...

    async def operators(self) -> list[Operator]:
        """Every operator known, logged out ones included."""
        ...

    # --- routing and the lease -----------------------------------------------------------
    async def claim_next(self, operator_id: str, lease_s: float) -> Offer | None:
        """Atomically offer the next call to an AVAILABLE operator, leased for `lease_s`.

        None when the operator is not available or no call fits."""
        ...

    async def claim_each(self, operator_ids: Sequence[str], lease_s: float) -> list[Offer]:
        """`claim_next` for each operator in turn (each claim atomic on its own, not the
        whole batch); the offers made. Redis sends the batch in one round trip."""
        ...

    async def accept(self, offer_id: str) -> WaitingCall:
        """The operator takes the call: both are TALKING; the wait ends ANSWERED.

        Raises OfferGone when the lease is over (declined, expired, caller left)."""
        ...

    async def decline(self, offer_id: str) -> None:
        """The call goes back to its place; this operator is not offered it again; the
        operator is AVAILABLE. Raises OfferGone when there is nothing to decline."""
        ...

    async def expire_leases(self) -> list[Offer]:
        """Offers whose lease ran out: calls back to their place, their operators AWAY (an
        operator who does not answer gets no more calls until they say so)."""
        ...

    async def overflow(self, after_s: float, to_queue: str) -> list[str]:
        """Calls that have waited `after_s` in another queue move to `to_queue`, keeping their
        place by time and dropping the skill requirement; returns their ids."""
        ...

    async def end_wrap_up(self, wrap_up_s: float) -> list[str]:
        """Operators in wrap-up for `wrap_up_s` become AVAILABLE; returns their ids."""
        ...

    # --- ending a conversation ------------------------------------------------------------
    async def finish(self, call_id: str, disposition: Disposition, note: str = "") -> TalkRecord:
        """The operator ends the conversation (models.OPERATOR_DISPOSITIONS) and goes to
        wrap-up; CALLBACK makes a callback task for the caller's number. Also sets the
        disposition and note of a talk the caller already hung up on."""
        ...

    async def transfer(self, call_id: str, queue: str | None, note: str = "") -> Position | None:
        """Hand a talking call to another queue (back in line with a fresh place; returned) or,
        with `queue` None, back to the bot (None). The operator goes to wrap-up."""
        ...

    # --- callbacks -----------------------------------------------------------------------
    async def callbacks(
        self, *, due_before: float | None = None, open_only: bool = False
    ) -> list[Callback]:
        """Callback tasks, soonest due first."""
        ...

    async def record_callback_attempt(
        self,
        callback_id: str,
        outcome: CallbackOutcome,
        *,
        retry_at: float | None = None,
        note: str | None = None,
    ) -> Callback:
        """One try at a callback; NO_ANSWER / FAILED stay due (`retry_at`, default now)."""
        ...

    # --- gateways and figures ------------------------------------------------------------
    async def heartbeat(self, owner: str) -> None:
        """The gateway `owner` is alive (it holds its callers' media)."""
        ...

    async def reap(self, owner_ttl_s: float) -> list[str]:
        """Calls whose owner has not beaten for `owner_ttl_s` (a restart, a dead gateway): their
        wait ends LOST and, where the number is known, they become callbacks; returns ids."""
        ...

    async def figures(self, queue: str, *, window_s: float, service_level_s: float) -> QueueFigures:
        """The queue's figures over the last `window_s` of history."""
        ...

    async def recent_handling_s(self, queue: str, *, window_s: float) -> float | None:
        """Mean handling time of the queue's talks finished in the window; None: no history."""
        ...

    async def close(self) -> None: ...
