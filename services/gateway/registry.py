"""Live calls and finished call records: what /v1/calls serves and AudioSocket routing reads."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from services.gateway.call.engine import Call, CallerInput
from services.gateway.call.record import CallRecord, CallStore


class CallRegistry:
    def __init__(self, store: CallStore) -> None:
        self.store = store
        self.active: dict[str, Call] = {}

    async def run(self, call: Call, inputs: AsyncIterator[CallerInput]) -> CallRecord:
        """Run a call to its end and persist its record, however it ends."""
        self.active[call.call_id] = call
        try:
            return await call.run(inputs)
        finally:
            del self.active[call.call_id]
            await asyncio.to_thread(self.store.save, call.record)

    def get(self, call_id: str) -> CallRecord | None:
        if call := self.active.get(call_id):
            return call.record
        return self.store.get(call_id)
