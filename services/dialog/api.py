"""Admin HTTP API for the knowledge base; the gateway mounts `router` into its app.

The engine is taken from `app.state.dialog`, else `app.state.engines.dialog` (the gateway's).
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, Request

from services.dialog.engine import DialogEngine, KBStatus

router = APIRouter(prefix="/v1/kb", tags=["knowledge base"])


def _engine(request: Request) -> DialogEngine:
    state = request.app.state
    engine = getattr(state, "dialog", None) or getattr(
        getattr(state, "engines", None), "dialog", None
    )
    if not isinstance(engine, DialogEngine):
        raise HTTPException(503, "dialog engine not loaded")
    return engine


@router.get("/status")
async def kb_status(request: Request) -> KBStatus:
    """The KB in force, its warnings, and the errors of the last rejected reload (if any)."""
    return _engine(request).status()


@router.post("/reload")
async def kb_reload(request: Request) -> KBStatus:
    """Re-read the KB now; a KB with errors is rejected (HTTP 422 with them), the old one stays."""
    status = await asyncio.to_thread(_engine(request).reload)
    if not status.last_reload_ok:
        raise HTTPException(422, detail=status.model_dump(mode="json"))
    return status
