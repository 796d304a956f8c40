"""The caller's number, which AudioSocket does not carry: the dialplan POSTs it before connecting
(deploy/asterisk/extensions.conf):

    same => n,Set(NUM=${FILTER(0-9+*#,${CALLERID(num)})})
    same => n,Set(R=${CURL(${VOICEBOT_HTTP}/v1/calls/${CALL_UUID}/caller,${NUM})})

The body is the number itself (FILTER keeps it to digits, +, * and #, so nothing needs encoding;
Asterisk has no URI encoder without func_uri), or JSON `{"number": "..."}` from other clients.
The number waits here (bounded, for a short time) until the AudioSocket connection with that UUID
arrives; a call already running gets it in its record at once.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from collections.abc import Callable

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field, ValidationError

# What CALLERID(num) holds: digits, an international plus, the keypad's * and #.
NUMBER_PATTERN = r"^\+?[0-9*#]{1,32}$"


class CallerNumber(BaseModel):
    number: str = Field(pattern=NUMBER_PATTERN)


class CallerNumbers:
    """UUID → number, announced by the dialplan, taken by the AudioSocket server."""

    def __init__(
        self,
        *,
        ttl_s: float = 60.0,
        limit: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s, self._limit, self._clock = ttl_s, limit, clock
        self._numbers: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def announce(self, call_id: str, number: str) -> None:
        self._expire()
        self._numbers[call_id] = (self._clock() + self._ttl_s, number)
        self._numbers.move_to_end(call_id)
        while len(self._numbers) > self._limit:  # a flood of POSTs cannot grow it without end
            self._numbers.popitem(last=False)

    def take(self, call_id: str) -> str | None:
        self._expire()
        entry = self._numbers.pop(call_id, None)
        return entry[1] if entry else None

    def _expire(self) -> None:
        now = self._clock()
        while self._numbers and next(iter(self._numbers.values()))[0] <= now:
            self._numbers.popitem(last=False)


def caller_router(callers: CallerNumbers, set_on_active: Callable[[str, str], bool]) -> APIRouter:
    """`set_on_active(call_id, number)`: put the number on a call already running (True if so)."""
    router = APIRouter()

    @router.post("/v1/calls/{call_id}/caller", status_code=204)
    async def set_caller(call_id: str, request: Request) -> None:
        """The caller's number for an AudioSocket call: the body is the number (the dialplan's
        CURL()), or JSON `{"number": "..."}`. 204; 422 for what is not a number."""
        try:
            uuid.UUID(call_id)
        except ValueError:
            raise HTTPException(422, f"call id is not a UUID: {call_id[:64]!r}") from None
        body = await request.body()
        try:
            if request.headers.get("content-type", "").startswith("application/json"):
                caller = CallerNumber.model_validate_json(body)
            else:
                caller = CallerNumber(number=body.decode("utf-8", "replace").strip())
        except ValidationError as exc:
            raise HTTPException(422, f"not a caller number: {exc.errors()[0]['msg']}") from None
        if not set_on_active(call_id, caller.number):
            callers.announce(call_id, caller.number)

    return router
