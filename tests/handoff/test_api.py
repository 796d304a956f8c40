"""The operator API through real uvicorn, httpx and a WebSocket client, on both backends."""

from __future__ import annotations

import asyncio
import json

import httpx
import websockets
from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, generate_latest

from services.handoff.api import install_errors, make_router
from services.handoff.core import QueueCore
from services.handoff.metrics import QueueCollector
from services.handoff.models import CallContext, OperatorLogin, Turn, WaitEnd
from services.handoff.service import HandoffService
from services.handoff.settings import HandoffSettings
from tests.handoff.conftest import Clock, serve_here


def build(service: HandoffService) -> FastAPI:
    app = FastAPI()
    app.include_router(make_router(service))
    install_errors(app)
    registry = CollectorRegistry()
    registry.register(QueueCollector(lambda: service.latest_figures))

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type="text/plain")

    return app


async def next_event(ws: websockets.ClientConnection) -> dict:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if "event" in message:
            return message["event"]


async def next_reply(ws: websockets.ClientConnection) -> dict:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if "reply" in message:
            return message


async def test_offer_accept_finish_over_the_api(store: QueueCore, clock: Clock) -> None:
    service = HandoffService(store, HandoffSettings(wrap_up_s=0), clock=clock)
    async with serve_here(build(service)) as port:
        base = f"http://127.0.0.1:{port}/v1/handoff"
        async with httpx.AsyncClient(base_url=base) as http:
            login = {"id": "anna", "name": "Анна", "queues": ["operators"], "skills": ["law"]}
            assert (await http.post("/operators", json=login)).json()["state"] == "away"
            async with websockets.connect(
                f"ws://127.0.0.1:{port}/v1/handoff/operators/anna/events"
            ) as ws:
                await ws.send(json.dumps({"action": "state", "state": "available"}))
                assert (await next_reply(ws))["ok"]
                context = CallContext(
                    call_id="call-1",
                    queue="operators",
                    caller_number="+79001234567",
                    skill="law",
                    turns=[Turn(who="caller", text="хочу подать жалобу", intent=None, score=0.2)],
                    slots={"district": "центральный"},
                )
                await service.enqueue(context)
                answered = asyncio.create_task(service.wait_for_operator("call-1"))
                event = await next_event(ws)
                assert event["kind"] == "offer"
                offer = event["offer"]
                assert offer["context"]["turns"][0]["text"] == "хочу подать жалобу"
                await ws.send(json.dumps({"action": "accept", "offer_id": offer["id"]}))
                reply = await next_reply(ws)
                assert reply["ok"] and reply["context"]["slots"] == {"district": "центральный"}
                assert await asyncio.wait_for(answered, 5) == "anna"
                again = await http.post(f"/offers/{offer['id']}/accept")
                assert again.status_code == 409 and "недействительно" in again.json()["detail"]
                r = await http.post(
                    "/operators/anna/finish", json={"disposition": "resolved", "note": "ок"}
                )
                assert r.status_code == 200 and r.json()["disposition"] == "resolved"
        async with httpx.AsyncClient(base_url=base) as http:
            missing = await http.post("/operators/nobody/finish", json={"disposition": "resolved"})
            assert missing.status_code == 404
            bad = await http.put("/operators/anna/state", json={"state": "talking"})
            assert bad.status_code in (404, 409)  # logged out when its socket closed
            figures = (await http.get("/queues/operators")).json()
            assert figures["answered"] == 1 and figures["waiting_now"] == 0
        await service.refresh_figures()
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        assert 'voicebot_queue_asa_seconds{queue="operators"} 0.0' in text


async def test_an_offer_withdrawn_when_the_caller_leaves(store: QueueCore, clock: Clock) -> None:
    service = HandoffService(store, clock=clock)
    await service.login(OperatorLogin(id="boris", queues=["operators"]))
    async with serve_here(build(service)) as port:
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/v1/handoff/operators/boris/events"
        ) as ws:
            await ws.send(json.dumps({"action": "state", "state": "available"}))
            await next_reply(ws)
            await service.enqueue(CallContext(call_id="c", queue="operators", caller_number="+7"))
            assert (await next_event(ws))["kind"] == "offer"
            callback = await service.leave("c", WaitEnd.ABANDONED)
            assert callback is not None
            withdrawn = await next_event(ws)
            assert (
                withdrawn["kind"] == "offer_withdrawn" and withdrawn["offer_end"] == "caller_left"
            )
            await ws.send("{not json")
            assert not (await next_reply(ws))["ok"]
        async with httpx.AsyncClient() as http:
            due = (
                await http.get(f"http://127.0.0.1:{port}/v1/handoff/callbacks?open_only=true")
            ).json()
        assert [cb["number"] for cb in due] == ["+7"]
