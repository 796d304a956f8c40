"""Who takes a call's media leg next when a party hands it on (call/party.py)."""

from __future__ import annotations

from services.gateway.call.bot import BotParty
from services.gateway.call.leg import MediaLeg
from services.gateway.call.party import End, Ending, EndReason, Party, ToBot, ToOperator, ToQueue
from services.gateway.call.policy import CallPolicy
from services.gateway.engines import Engines


class GatewaySwitchboard:
    def __init__(self, engines: Engines, policy: CallPolicy) -> None:
        self.engines, self.policy = engines, policy

    def bot(self) -> BotParty:
        return BotParty(self.engines, self.policy)

    def next_party(self, leg: MediaLeg, handed: ToQueue | ToOperator | ToBot) -> Party | End:
        match handed:
            case ToQueue():  # the dialplan's Queue() takes the caller (AudioSocket), or nobody
                return End(Ending(EndReason.TRANSFER))
            case _:
                raise RuntimeError(f"nobody takes a call handed on as {handed}")
