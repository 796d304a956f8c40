"""Hot reload: a good edit is picked up, a broken one is rejected and the last good KB stays."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from services.dialog.api import router
from services.dialog.engine import DialogEngine
from services.dialog.loader import KBInvalid

BROKEN = "scenarios:\n  - id: heating\n    title: [Отопление\n"
COST = """\
scenarios:
  - id: line_cost
    title: Стоимость
    examples: [сколько стоит звонок, звонок платный]
    answers: ["Звонок бесплатный."]
"""


def test_first_load_of_a_broken_kb_raises_with_every_issue(write_kb) -> None:
    kb_dir = write_kb({"a.yaml": BROKEN})
    with pytest.raises(KBInvalid) as info:
        DialogEngine.load(kb_dir)
    issue = info.value.issues[0]
    assert issue.line == 4 and "line 3" in issue.message  # found at the end, opened on line 3


def test_broken_file_keeps_the_old_kb_and_reports_why(mini_kb: Path) -> None:
    engine = DialogEngine.load(mini_kb)
    before = engine.snapshot
    (mini_kb / "scenarios.yaml").write_text(BROKEN, encoding="utf-8")
    status = engine.reload()
    assert not status.last_reload_ok
    assert status.errors and status.errors[0].file.endswith("scenarios.yaml")
    assert status.errors[0].line == 4
    assert engine.snapshot is before and status.version == 1
    r = engine.new_session().respond("когда вы работаете")
    assert (r.decision, r.intent) == ("answer", "line_hours")


def test_good_edit_swaps_atomically_and_running_calls_keep_theirs(mini_kb: Path) -> None:
    engine = DialogEngine.load(mini_kb)
    call_in_progress = engine.new_session()
    (mini_kb / "cost.yaml").write_text(COST, encoding="utf-8")
    status = engine.reload()
    assert status.last_reload_ok and status.version == 2 and status.scenarios == 3
    assert engine.new_session().respond("сколько стоит звонок").intent == "line_cost"
    old = call_in_progress.respond("сколько стоит звонок")
    assert old.intent != "line_cost"  # the call keeps the KB it started with


def test_admin_endpoints(mini_kb: Path) -> None:
    engine = DialogEngine.load(mini_kb)
    app = FastAPI()
    app.state.engines = SimpleNamespace(dialog=engine)  # as the gateway keeps it
    app.include_router(router)
    client = TestClient(app)
    status = client.get("/v1/kb/status").json()
    assert (status["version"], status["scenarios"], status["errors"]) == (1, 2, [])

    (mini_kb / "scenarios.yaml").write_text(BROKEN, encoding="utf-8")
    rejected = client.post("/v1/kb/reload")
    assert rejected.status_code == 422
    assert rejected.json()["detail"]["errors"][0]["line"] == 4
    status = client.get("/v1/kb/status").json()
    assert status["version"] == 1 and not status["last_reload_ok"] and status["errors"]

    (mini_kb / "scenarios.yaml").unlink()
    (mini_kb / "cost.yaml").write_text(COST, encoding="utf-8")
    ok = client.post("/v1/kb/reload")
    assert ok.status_code == 200 and ok.json()["version"] == 2 and ok.json()["errors"] == []


async def test_file_watcher_reloads_on_change(mini_kb: Path) -> None:
    engine = DialogEngine.load(mini_kb)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.watch(stop, debounce_ms=50))
    await asyncio.sleep(0.5)  # let the watcher start
    (mini_kb / "cost.yaml").write_text(COST, encoding="utf-8")
    for _ in range(100):
        if engine.snapshot.version > 1:
            break
        await asyncio.sleep(0.1)
    assert engine.snapshot.version == 2 and "line_cost" in engine.snapshot.kb.scenarios

    (mini_kb / "cost.yaml").write_text(BROKEN, encoding="utf-8")
    for _ in range(100):
        if not engine.status().last_reload_ok:
            break
        await asyncio.sleep(0.1)
    assert not engine.status().last_reload_ok and engine.snapshot.version == 2
    stop.set()
    await asyncio.wait_for(task, 5)
