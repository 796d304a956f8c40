"""An operator's side of a call: the caller's leg bridged to the operator's audio line.

    WAITING_LINE ──line up──► TALKING ◄──unhold── ON_HOLD (the caller hears music)
                                 │  └────hold────►
                                 ├── transferred ──► ToQueue (already in line)
                                 ├── back to the bot ──► ToBot
                                 ├── ended by the operator ──► End(OPERATOR_DONE)
                                 └── caller hangs up ──► leave: the talk ends, operator wraps up

Both directions are resampled with soxr between the caller's rate and the operator's. What
the operator sends is paced to the caller by the leg's pacer like the bot's voice.
"""

from __future__ import annotations

import asyncio
import contextlib
from enum import StrEnum
from typing import Any

from services.common.audio import frame_bytes
from services.common.logging import get_logger
from services.gateway.call import events as ev
from services.gateway.call.leg import Audio, HangUp, MediaLeg
from services.gateway.call.music import play_music
from services.gateway.call.party import End, Ending, EndReason, Next, ToBot, ToQueue
from services.gateway.call.resample import StreamResampler
from services.gateway.operator_audio import LineHold, OperatorLine, OperatorLines
from services.handoff.models import OperatorState, WaitEnd
from services.handoff.service import CallEvent, CallEventKind, HandoffService
from services.handoff.store import HandoffError

log = get_logger("gateway.bridge")
MAX_AHEAD_FRAMES = 25  # 500 ms of the operator's voice waiting for the caller


class BridgeState(StrEnum):
    WAITING_LINE = "waiting_line"  # accepted, the operator's audio socket not open (yet)
    TALKING = "talking"
    ON_HOLD = "on_hold"


class BridgeParty:
    def __init__(
        self,
        service: HandoffService,
        lines: OperatorLines,
        *,
        operator_id: str,
        queue: str,
        line_timeout_s: float = 10.0,
    ) -> None:
        self.state = BridgeState.WAITING_LINE
        self.operator_id, self.queue = operator_id, queue
        self._service, self._lines, self._line_timeout_s = service, lines, line_timeout_s
        self._line: OperatorLine | None = None
        self._music: asyncio.Task[None] | None = None

    async def run(self, leg: MediaLeg) -> Next:
        with self._service.call_feed(leg.call_id) as feed:
            line = await self._await_line(leg)
            if not isinstance(line, OperatorLine):
                return line
            self._line = line
            line.attach(leg.call_id, leg.sample_rate)
            leg.post(ev.OperatorStatus(status="connected", operator_id=self.operator_id))
            self.state = BridgeState.TALKING
            to_operator = StreamResampler(leg.sample_rate, line.sample_rate)
            voice = asyncio.create_task(self._from_operator(leg, line))
            reason = "ended"
            try:
                while True:
                    got = asyncio.ensure_future(leg.receive())
                    told = asyncio.ensure_future(feed.get())
                    lost = asyncio.ensure_future(line.closed.wait())
                    waiting: set[asyncio.Future[Any]] = {got, told, lost}
                    done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
                    for future in waiting - done:
                        future.cancel()
                    if got in done:
                        item = got.result()[1]
                        if isinstance(item, HangUp):
                            reason = "caller_hangup"
                            await self._service.leave(leg.call_id, WaitEnd.ABANDONED)
                            return End(item.ending)
                        if isinstance(item, Audio) and self.state is BridgeState.TALKING:
                            line.send_audio(to_operator(item.pcm))
                    if told in done and (handed := await self._on_event(leg, told.result())):
                        reason = told.result().kind.value
                        return handed
                    if lost in done:
                        reason = "operator_audio_lost"
                        return await self._back_in_line(leg, reason)
            finally:
                voice.cancel()
                await asyncio.gather(voice, return_exceptions=True)
                await self._hold_music(leg, False)
                line.detach(reason)
                leg.pacer.interrupt()
                leg.post(ev.OperatorStatus(status="released", operator_id=self.operator_id))

    async def _await_line(self, leg: MediaLeg) -> OperatorLine | Next:
        """The operator's audio socket (usually open already); the caller hears music."""
        await self._hold_music(leg, True)
        line = asyncio.ensure_future(self._lines.wait_for(self.operator_id, self._line_timeout_s))
        try:
            while True:
                got = asyncio.ensure_future(leg.receive())
                await asyncio.wait({line, got}, return_when=asyncio.FIRST_COMPLETED)
                if line.done():
                    got.cancel()
                    break
                if isinstance(item := got.result()[1], HangUp):
                    line.cancel()
                    await self._service.leave(leg.call_id, WaitEnd.ABANDONED)
                    return End(item.ending)
        finally:
            await self._hold_music(leg, False)
        return line.result() or await self._back_in_line(leg, "no_operator_audio")

    async def _back_in_line(self, leg: MediaLeg, reason: str) -> Next:
        """The operator cannot hear the caller: the caller goes back in line (not lost) and the
        operator away (they would be offered calls they cannot take)."""
        log.warning(reason, call_id=leg.call_id, operator=self.operator_id)
        position = await self._service.transfer(self.operator_id, self.queue)
        with contextlib.suppress(HandoffError):
            await self._service.set_state(self.operator_id, OperatorState.AWAY)
        return ToQueue(self.queue, reason, enqueued=position is not None)

    async def _on_event(self, leg: MediaLeg, event: CallEvent) -> Next | None:
        match event.kind:
            case CallEventKind.HOLD | CallEventKind.UNHOLD:
                on = event.kind is CallEventKind.HOLD
                if self._line is not None:
                    self._line.tell(LineHold(call_id=leg.call_id, on=on))
                status = "hold" if on else "unhold"
                leg.post(ev.OperatorStatus(status=status, operator_id=self.operator_id))
                self.state = BridgeState.ON_HOLD if on else BridgeState.TALKING
                await self._hold_music(leg, on)
            case CallEventKind.TRANSFERRED:
                queue = event.position.queue if event.position else self.queue
                return ToQueue(queue, "transfer", enqueued=True)
            case CallEventKind.RETURNED_TO_BOT:
                return ToBot()
            case CallEventKind.ENDED:
                return End(Ending(EndReason.OPERATOR_DONE))
        return None

    async def _hold_music(self, leg: MediaLeg, on: bool) -> None:
        if on and self._music is None:
            leg.pacer.interrupt()
            self._music = asyncio.create_task(play_music(leg.pacer))
        elif not on and self._music is not None:
            self._music.cancel()
            await asyncio.gather(self._music, return_exceptions=True)
            self._music = None

    async def _from_operator(self, leg: MediaLeg, line: OperatorLine) -> None:
        """The operator's voice to the caller in whole 20 ms frames, paced by the leg."""
        to_caller = StreamResampler(line.sample_rate, leg.sample_rate)
        size, pending = frame_bytes(leg.sample_rate), bytearray()
        while True:
            pending += to_caller(await line.operator_audio())
            cut = len(pending) - len(pending) % size
            # An operator's client that runs ahead of real time would delay the caller's ear
            # without end: past MAX_AHEAD_FRAMES queued, its audio is dropped.
            talking = self.state is BridgeState.TALKING
            if cut and talking and leg.pacer.backlog_frames < MAX_AHEAD_FRAMES:
                leg.pacer.play(bytes(pending[:cut]))
            del pending[:cut]
