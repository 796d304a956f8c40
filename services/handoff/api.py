"""The operator API: a FastAPI router the gateway mounts (documented in README.md).

HTTP for every step, and one WebSocket per operator that pushes offers and state changes the
moment they happen and takes the same steps as JSON commands, so a browser console needs nothing
else. Refused steps answer 404 (unknown operator, call, offer, callback) or 409 (the state does
not allow it), with the Russian message in `detail`; nothing changes then.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Literal

from fastapi import APIRouter, Body, FastAPI, Query, Request, WebSocket
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from starlette.websockets import WebSocketDisconnect

from services.handoff.models import (
    Callback,
    CallbackOutcome,
    CallContext,
    Disposition,
    Operator,
    OperatorLogin,
    OperatorState,
    Position,
    QueueFigures,
    TalkRecord,
    WaitingCall,
)
from services.handoff.service import Feed, HandoffService, OperatorEvent
from services.handoff.store import (
    HandoffError,
    UnknownCall,
    UnknownCallback,
    UnknownOperator,
)

NOT_FOUND = (UnknownOperator, UnknownCall, UnknownCallback)


class StateChange(BaseModel):
    state: OperatorState


class Finish(BaseModel):
    disposition: Disposition
    note: str = Field("", max_length=4000)


class Transfer(BaseModel):
    queue: str | None = Field(None, description="another queue; null: back to the bot")
    note: str = Field("", max_length=4000)


class Hold(BaseModel):
    on: bool


class Attempt(BaseModel):
    outcome: CallbackOutcome
    retry_at: float | None = None
    note: str | None = Field(None, max_length=4000)


class Command(BaseModel):
    """A step sent over the operator's WebSocket."""

    action: Literal["accept", "decline", "state", "hold", "finish", "transfer"]
    offer_id: str | None = None
    state: OperatorState | None = None
    on: bool | None = None
    disposition: Disposition | None = None
    queue: str | None = None
    note: str = ""


class Reply(BaseModel):
    """The WebSocket's answer to a command (events arrive as {"event": ...} objects)."""

    reply: str
    ok: bool
    detail: str = ""
    context: CallContext | None = None
    position: Position | None = None


COMMAND = TypeAdapter(Command)


def error_response(_: Request, exc: Exception) -> JSONResponse:
    status = 404 if isinstance(exc, NOT_FOUND) else 409
    return JSONResponse({"detail": str(exc)}, status_code=status)


def install_errors(app: FastAPI) -> None:
    """Map the queue's refusals to 404 / 409 (the gateway calls this with the router)."""
    app.add_exception_handler(HandoffError, error_response)


def make_router(service: HandoffService) -> APIRouter:
    router = APIRouter(prefix="/v1/handoff", tags=["handoff"])

    @router.post("/operators")
    async def login(body: OperatorLogin) -> Operator:
        return await service.login(body)

    @router.get("/operators")
    async def operators() -> list[Operator]:
        return await service.store.operators()

    @router.delete("/operators/{operator_id}")
    async def logout(operator_id: str) -> dict[str, bool]:
        await service.logout(operator_id)
        return {"ok": True}

    @router.put("/operators/{operator_id}/state")
    async def set_state(operator_id: str, body: StateChange) -> Operator:
        return await service.set_state(operator_id, body.state)

    @router.post("/offers/{offer_id}/accept")
    async def accept(offer_id: str) -> CallContext:
        return await service.accept(offer_id)

    @router.post("/offers/{offer_id}/decline")
    async def decline(offer_id: str) -> dict[str, bool]:
        await service.decline(offer_id)
        return {"ok": True}

    @router.post("/operators/{operator_id}/hold")
    async def hold(operator_id: str, body: Hold) -> dict[str, bool]:
        await service.hold(operator_id, body.on)
        return {"ok": True}

    @router.post("/operators/{operator_id}/finish")
    async def finish(operator_id: str, body: Finish) -> TalkRecord:
        return await service.finish(operator_id, body.disposition, body.note)

    @router.post("/operators/{operator_id}/transfer")
    async def transfer(operator_id: str, body: Transfer) -> Position | None:
        return await service.transfer(operator_id, body.queue, body.note)

    @router.get("/waiting")
    async def waiting(queue: str | None = None) -> list[WaitingCall]:
        return await service.store.waiting(queue)

    @router.get("/callbacks")
    async def callbacks(
        due_before: float | None = None, open_only: Annotated[bool, Query()] = False
    ) -> list[Callback]:
        return await service.store.callbacks(due_before=due_before, open_only=open_only)

    @router.post("/callbacks/{callback_id}/attempts")
    async def attempt(callback_id: str, body: Annotated[Attempt, Body()]) -> Callback:
        return await service.store.record_callback_attempt(
            callback_id, body.outcome, retry_at=body.retry_at, note=body.note
        )

    @router.get("/queues")
    async def figures() -> list[QueueFigures]:
        return [await service.figures(q) for q in await service.queues()]

    @router.get("/queues/{queue}")
    async def queue_figures(queue: str) -> QueueFigures:
        return await service.figures(queue)

    @router.websocket("/operators/{operator_id}/events")
    async def events(websocket: WebSocket, operator_id: str) -> None:
        await websocket.accept()
        try:
            async with service.operator_feed(operator_id) as feed:
                pusher = asyncio.create_task(_push(websocket, feed))
                try:
                    while True:
                        raw = await websocket.receive_text()
                        reply = await _command(service, operator_id, raw)
                        await websocket.send_text(reply.model_dump_json())
                finally:
                    pusher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await pusher
        except UnknownOperator as exc:
            await websocket.close(code=4404, reason=str(exc)[:120])
        except WebSocketDisconnect:
            pass

    return router


async def _push(websocket: WebSocket, feed: Feed[OperatorEvent]) -> None:
    async for event in feed:
        await websocket.send_text('{"event":' + event.model_dump_json() + "}")


async def _command(service: HandoffService, operator_id: str, raw: str) -> Reply:
    try:
        cmd = COMMAND.validate_json(raw)
    except ValidationError as exc:
        return Reply(
            reply="invalid", ok=False, detail=f"Неверная команда: {exc.errors()[0]['msg']}"
        )
    try:
        match cmd.action:
            case "accept" | "decline" if cmd.offer_id is None:
                return Reply(reply=cmd.action, ok=False, detail="Не указано offer_id")
            case "accept":
                context = await service.accept(cmd.offer_id or "")
                return Reply(reply="accept", ok=True, context=context)
            case "decline":
                await service.decline(cmd.offer_id or "")
            case "state":
                if cmd.state is None:
                    return Reply(reply="state", ok=False, detail="Не указано состояние")
                await service.set_state(operator_id, cmd.state)
            case "hold":
                await service.hold(operator_id, bool(cmd.on))
            case "finish":
                if cmd.disposition is None:
                    return Reply(reply="finish", ok=False, detail="Не указан итог разговора")
                await service.finish(operator_id, cmd.disposition, cmd.note)
            case "transfer":
                position = await service.transfer(operator_id, cmd.queue, cmd.note)
                return Reply(reply="transfer", ok=True, position=position)
    except HandoffError as exc:
        return Reply(reply=cmd.action, ok=False, detail=str(exc))
    return Reply(reply=cmd.action, ok=True)
