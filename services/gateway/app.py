"""The gateway as one FastAPI app: `/call` WebSocket, softphone page, health, call records.

Engines load once in the lifespan (off the event loop); a missing ASR model degrades the bot
to typed and DTMF input instead of failing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException, WebSocket
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from services.common.config import Settings, get_settings
from services.common.logging import get_logger
from services.gateway.asterisk.ami import AmiSettings
from services.gateway.asterisk.callers import CallerNumbers, caller_router
from services.gateway.asterisk.queues import AsteriskQueues
from services.gateway.audiosocket.server import AudioSocketServer, AudioSocketSettings
from services.gateway.call.policy import CallPolicy, HandoffTarget
from services.gateway.call.record import CallRecord, CallStore
from services.gateway.engines import Engines, load_engines
from services.gateway.operator_audio import OperatorLines, serve_operator_audio
from services.gateway.registry import CallRegistry
from services.gateway.switchboard import GatewaySwitchboard, Queueing
from services.gateway.ws import serve_websocket_call
from services.handoff.announce import announcement
from services.handoff.api import install_errors, make_router
from services.handoff.factory import open_service
from services.handoff.metrics import QueueCollector
from services.handoff.service import HandoffService
from services.handoff.settings import HandoffSettings

log = get_logger("gateway")
STATIC = Path(__file__).parent / "static"


def create_app(
    settings: Settings | None = None,
    *,
    engines: Engines | None = None,
    policy: CallPolicy | None = None,
    audiosocket: AudioSocketSettings | None = None,
    ami: AmiSettings | None = None,
    handoff: HandoffService | None = None,
) -> FastAPI:
    """`engines`: already loaded ones (tests share one set across apps); else loaded at startup.
    `handoff`: the operator queue (else opened from VOICEBOT_HANDOFF_* when the gateway keeps
    its own queue, `VOICEBOT_CALL_HANDOFF_TO=gateway`)."""
    settings = settings or get_settings()
    policy = policy or CallPolicy()
    audiosocket = audiosocket or AudioSocketSettings()
    ami = ami or AmiSettings()
    callers = CallerNumbers()
    service, owned = handoff, False
    # Asterisk's own Queue() followed over AMI (ami.enabled) keeps its waits and callbacks there.
    if service is None and (policy.handoff_to is HandoffTarget.GATEWAY or ami.enabled):
        service, owned = open_service(HandoffSettings(), settings.data_dir), True
    queueing = None
    if service is not None:
        interval = service.settings.announce_interval_s
        queueing = Queueing(service, OperatorLines(), announcement, interval)
    queue_metrics = CollectorRegistry()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.engines = engines or await asyncio.to_thread(load_engines, settings)
        ticker = asyncio.create_task(queueing.service.run()) if queueing else None
        switchboard = GatewaySwitchboard(app.state.engines, policy, queueing)
        store = CallStore(settings.data_dir / "calls.sqlite3")
        app.state.registry = CallRegistry(store, switchboard)
        app.state.audiosocket = None
        if audiosocket.enabled:
            app.state.audiosocket = AudioSocketServer(
                app.state.engines, app.state.registry, policy, audiosocket, callers
            )
            await app.state.audiosocket.start()
        app.state.asterisk = None
        if ami.enabled and queueing is not None:
            app.state.asterisk = _follow_asterisk(app, ami, queueing.service)
        watcher = _start_kb_watcher(app.state.engines)
        log.info("ready", degraded=app.state.engines.degraded)
        try:
            yield
        finally:
            if app.state.audiosocket is not None:
                await app.state.audiosocket.close()
            if app.state.asterisk is not None:
                await app.state.asterisk.close()
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
            app.state.registry.store.close()
            if ticker is not None:
                ticker.cancel()
                await asyncio.gather(ticker, return_exceptions=True)
            if queueing is not None and owned:
                await queueing.service.store.close()

    app = FastAPI(title="Горячая линия — gateway", lifespan=lifespan)
    app.state.queueing = queueing
    _mount_kb_router(app)
    app.include_router(
        caller_router(callers, lambda call_id, number: _set_caller(app, call_id, number))
    )
    if queueing is not None:  # the operator API (services/handoff/README.md)
        app.include_router(make_router(queueing.service))
        install_errors(app)
        queue_metrics.register(QueueCollector(lambda: queueing.service.latest_figures))

    @app.get("/metrics")
    async def metrics() -> Response:
        """Prometheus: the embedded recognizer's streams, lag and pool saturation, the rest of
        this process's registry, and the operator queues' figures."""
        body = generate_latest() + generate_latest(queue_metrics)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        engines_: Engines | None = getattr(app.state, "engines", None)
        if engines_ is None:
            return JSONResponse({"ready": False, "reason": "engines are loading"}, status_code=503)
        return JSONResponse(
            {
                "ready": True,
                "degraded": bool(engines_.degraded),
                "reasons": engines_.degraded,
                "inputs": ["audio", "text", "dtmf"] if engines_.recognizer else ["text", "dtmf"],
                "engines": engines_.describe(),
                "active_calls": len(app.state.registry.active),
                "tasks": len(asyncio.all_tasks()),  # a leak shows here first
                "audiosocket": app.state.audiosocket.address if app.state.audiosocket else None,
                # Asterisk's own Queue() followed over AMI: "down: ..." while unreachable.
                "asterisk": app.state.asterisk.status if app.state.asterisk else None,
            }
        )

    @app.websocket("/call")
    async def call(ws: WebSocket) -> None:
        await serve_websocket_call(ws, app.state.registry, policy)

    @app.websocket("/v1/operators/{operator_id}/audio")
    async def operator_audio(ws: WebSocket, operator_id: str) -> None:
        queueing: Queueing | None = app.state.queueing
        if queueing is None:
            await ws.close(code=1008, reason="the gateway keeps no operator queue")
            return
        await serve_operator_audio(ws, operator_id, queueing.lines, queueing.service)

    @app.get("/v1/calls/{call_id}")
    async def call_record(call_id: str) -> CallRecord:
        record = await asyncio.to_thread(app.state.registry.get, call_id)
        if record is None:
            raise HTTPException(404, f"no call {call_id}")
        return record

    @app.get("/v1/calls/{call_id}/route", response_class=PlainTextResponse)
    async def call_route(call_id: str) -> str:
        """Where Asterisk sends a caller after AudioSocket() returns: a queue name, or empty
        (plain text, for the dialplan's CURL())."""
        record = await asyncio.to_thread(app.state.registry.get, call_id)
        if record is None:
            raise HTTPException(404, f"no call {call_id}")
        return record.handoff_queue or ""

    @app.get("/", include_in_schema=False)
    async def softphone() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _set_caller(app: FastAPI, call_id: str, number: str) -> bool:
    """The caller's number on a call already running (the dialplan posted it late)."""
    leg = app.state.registry.active.get(call_id)
    if leg is not None:
        leg.record.caller_id = number
    return leg is not None


def _follow_asterisk(app: FastAPI, ami: AmiSettings, service: HandoffService) -> AsteriskQueues:
    """Follow Asterisk's Queue() over AMI into the operator queue's store."""

    async def record(call_id: str) -> CallRecord | None:
        return await asyncio.to_thread(app.state.registry.get, call_id)

    # Asterisk holds these callers' media, not this process: they are owned (and kept alive in
    # the store) by the Asterisk, so a gateway restart does not reap them as lost; the login's
    # reconciliation settles what happened meanwhile.
    owner = f"asterisk@{ami.host}:{ami.port}"
    queues = AsteriskQueues(ami, service.store, owner, record)
    queues.start()
    return queues


def _mount_kb_router(app: FastAPI) -> None:
    """The dialog package's KB editing API, when it provides one (`services.dialog.api.router`)."""
    try:
        module = importlib.import_module("services.dialog.api")
    except ModuleNotFoundError:
        return
    app.include_router(module.router)


def _start_kb_watcher(engines: Engines) -> asyncio.Task[None] | None:
    """Reload the knowledge base when its files change (the dialog engine keeps the last good
    one on a bad edit)."""
    watch = getattr(engines.dialog, "watch", None)
    return asyncio.create_task(watch()) if watch is not None else None
