"""Drive a call (a media leg answered by the bot) in-process: a queue of caller inputs in,
collected events and frames out."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from services.gateway.call import events as ev
from services.gateway.call.leg import CallerInput, MediaLeg
from services.gateway.call.policy import CallPolicy
from services.gateway.engines import Engines
from services.gateway.switchboard import GatewaySwitchboard, Queueing


class Collector:
    def __init__(self, idle_silence: bool = False) -> None:
        self.idle_silence = idle_silence
        self.events: list[ev.Event] = []
        self.frames: list[tuple[float, bytes]] = []
        self.changed = asyncio.Event()

    async def event(self, event: ev.Event) -> None:
        self.events.append(event)
        self.changed.set()

    async def audio(self, frame: bytes) -> None:
        self.frames.append((time.monotonic(), frame))

    def of(self, kind: str) -> list[ev.Event]:
        return [e for e in self.events if e.type == kind]

    async def wait_for(self, pred, timeout: float = 5.0) -> ev.Event:
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if pred(event):
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no matching event; got {[e.type for e in self.events]}")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)


class CallHarness:
    def __init__(
        self,
        engines: Engines,
        policy: CallPolicy | None = None,
        rate: int = 16000,
        idle_silence: bool = False,
        queueing: Queueing | None = None,
        caller_id: str = "test",
    ) -> None:
        self.out = Collector(idle_silence)
        self.inputs: asyncio.Queue[CallerInput | None] = asyncio.Queue()
        policy = policy or CallPolicy()
        self.leg = MediaLeg(
            call_id="t1",
            caller_id=caller_id,
            sample_rate=rate,
            transport="test",
            output=self.out,
            policy=policy,
        )
        self.switchboard = GatewaySwitchboard(engines, policy, queueing)
        self.call = self.switchboard.bot()
        self.task: asyncio.Task | None = None

    async def _gen(self) -> AsyncIterator[CallerInput]:
        while (item := await self.inputs.get()) is not None:
            yield item

    def start(self) -> None:
        self.task = asyncio.create_task(self.leg.run(self._gen(), self.call, self.switchboard))

    def send(self, item: CallerInput | None) -> None:
        self.inputs.put_nowait(item)

    async def wait_playback_end(self, turn: int, timeout: float = 5.0) -> ev.Event:
        return await self.out.wait_for(
            lambda e: e.type == "playback" and e.turn == turn and e.status != "started", timeout
        )
