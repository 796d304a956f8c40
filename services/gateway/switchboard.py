"""Who takes a call's media leg next when a party hands it on (call/party.py).

With the gateway's own queue (`VOICEBOT_CALL_HANDOFF_TO=gateway`, the default, and a handoff
service) the bot hands the caller to the hold party, the queue to an operator's bridge, the
operator back to the bot or to another queue. With `dialplan`, or without a queue, a handoff
ends the call here: AudioSocket() returns and Asterisk's Queue() takes the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.dialog.base import DialogSession
from services.gateway.call.bot import BotParty
from services.gateway.call.bridge import BridgeParty
from services.gateway.call.hold import Announce, HoldParty, call_context
from services.gateway.call.leg import MediaLeg
from services.gateway.call.party import End, Ending, EndReason, Party, ToBot, ToOperator, ToQueue
from services.gateway.call.policy import CallPolicy, HandoffTarget
from services.gateway.engines import Engines
from services.gateway.operator_audio import OperatorLines
from services.handoff.models import WaitEnd
from services.handoff.service import HandoffService


@dataclass
class Queueing:
    """The gateway's own queue: the handoff service, the operators' audio lines, the wording
    of the position announcements and how often they come."""

    service: HandoffService
    lines: OperatorLines
    announce: Announce
    interval_s: float


class GatewaySwitchboard:
    def __init__(
        self, engines: Engines, policy: CallPolicy, queueing: Queueing | None = None
    ) -> None:
        self.engines, self.policy = engines, policy
        self.queueing = queueing if policy.handoff_to is HandoffTarget.GATEWAY else None
        self._sessions: dict[str, DialogSession] = {}  # the conversation an operator may return

    def bot(self) -> BotParty:
        enqueue = self._enqueue if self.queueing is not None else None
        return BotParty(self.engines, self.policy, enqueue=enqueue)

    async def _enqueue(self, leg: MediaLeg, queue: str) -> bool:
        assert self.queueing is not None
        await self.queueing.service.enqueue(call_context(leg.record, queue))
        return True

    def next_party(self, leg: MediaLeg, handed: ToQueue | ToOperator | ToBot) -> Party | End:
        if isinstance(leg.party, BotParty):
            self._sessions[leg.call_id] = leg.party.session
        q = self.queueing
        if q is None:  # the dialplan's Queue() takes the caller (AudioSocket), or nobody
            return End(Ending(EndReason.TRANSFER))
        match handed:
            case ToQueue(queue=queue, enqueued=enqueued):
                return HoldParty(
                    q.service,
                    self.engines,
                    self.policy,
                    queue=queue,
                    announce=q.announce,
                    interval_s=q.interval_s,
                    enqueued=enqueued,
                )
            case ToOperator(operator_id=operator_id, queue=queue):
                return BridgeParty(q.service, q.lines, operator_id=operator_id, queue=queue)
            case ToBot():
                session = self._sessions.get(leg.call_id)
                return BotParty(
                    self.engines,
                    self.policy,
                    session=session,
                    opening=self.policy.back_to_bot_text,
                    enqueue=self._enqueue,
                )

    async def forget(self, call_id: str) -> None:
        """The call is over. Still in a queue (the caller hung up during the transfer notice):
        it leaves as abandoned, so the queue makes it a callback instead of offering a ghost."""
        self._sessions.pop(call_id, None)
        if self.queueing is not None:
            service = self.queueing.service
            if await service.store.call(call_id) is not None:
                await service.leave(call_id, WaitEnd.ABANDONED)
