"""Live calls and finished call records: what /v1/calls serves and AudioSocket routing reads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from services.gateway.call.leg import CallerInput, MediaLeg
from services.gateway.call.record import CallRecord, CallStore
from services.gateway.switchboard import GatewaySwitchboard


class CallRegistry:
    def __init__(self, store: CallStore, switchboard: GatewaySwitchboard) -> None:
        self.store = store
        self.switchboard = switchboard
        self.active: dict[str, MediaLeg] = {}

    async def run(self, leg: MediaLeg, inputs: AsyncIterator[CallerInput]) -> CallRecord:
        """Answer with the bot, hand the leg on as the parties decide, and persist the call's
        record, however it ends."""
        self.active[leg.call_id] = leg
        try:
            return await leg.run(inputs, self.switchboard.bot(), self.switchboard)
        finally:
            del self.active[leg.call_id]
            await self.switchboard.forget(leg.call_id)
            await asyncio.to_thread(self.store.save, leg.record)

    def get(self, call_id: str) -> CallRecord | None:
        if leg := self.active.get(call_id):
            return leg.record
        return self.store.get(call_id)
