"""The call record: a timeline of everything said and decided, kept for quality control."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from services.dialog.base import Expect

Outcome = Literal["in_progress", "answered", "transferred", "abandoned"]


class TurnRecord(BaseModel):
    turn: int
    source: Literal["voice", "text", "dtmf", "bot"]  # bot: greeting, reprompt, transfer notice
    transcript: str = ""
    intent: str | None = None
    score: float | None = None
    decision: str | None = None
    reply: str = ""
    slots: dict[str, str] = {}  # slot values known after this turn (region, payer code, …)
    # How this caller turn was listened for (a menu key, digits with a grammar of digit
    # words, …); None: as usual, the full language model.
    expect: Expect | None = None
    barged_in: bool = False
    # Voice turns: `endpoint` (speech end -> the frame that ended the turn arrived), `backlog`
    # (-> that frame was processed; >0 when recognition falls behind), `asr_final` (-> final
    # transcript) in ms; all turns: `matched`, `tts` (first audio rendered), `first_frame` (sent),
    # in ms from the end of the caller's turn (speech end / message arrival).
    latency_ms: dict[str, float] = {}


class TimelineEntry(BaseModel):
    t_ms: float  # since the call started
    event: dict[str, object]


class CallRecord(BaseModel):
    call_id: str
    caller_id: str = ""
    transport: str
    sample_rate: int
    started_at: float  # unix time
    ended_at: float | None = None
    outcome: Outcome = "in_progress"
    end_reason: str = ""
    handoff_queue: str | None = None
    handoff_reason: str | None = None
    handoff_skill: str | None = None  # the operator skill the dialog asked for
    turns: list[TurnRecord] = []
    timeline: list[TimelineEntry] = []
    recording: str | None = None  # stereo WAV: caller left, bot right
    # The outgoing audio clock: frames sent, worst lateness of a frame against its deadline,
    # lateness of the last frame (drift), schedule restarts after a stalled event loop.
    pacing: dict[str, float] = {}

    @classmethod
    def begin(cls, call_id: str, caller_id: str, transport: str, sample_rate: int) -> CallRecord:
        return cls(
            call_id=call_id,
            caller_id=caller_id,
            transport=transport,
            sample_rate=sample_rate,
            started_at=time.time(),
        )

    def note(self, event: dict[str, object]) -> None:
        self.timeline.append(
            TimelineEntry(t_ms=round((time.time() - self.started_at) * 1000, 1), event=event)
        )


class CallStore:
    """Finished calls in SQLite (one JSON document per call); thread-safe, one connection."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False)
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS calls (id TEXT PRIMARY KEY, caller_id TEXT,"
            " started_at REAL, outcome TEXT, record TEXT NOT NULL)"
        )
        self._db.commit()

    def save(self, record: CallRecord) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO calls VALUES (?, ?, ?, ?, ?)",
                (
                    record.call_id,
                    record.caller_id,
                    record.started_at,
                    record.outcome,
                    record.model_dump_json(),
                ),
            )
            self._db.commit()

    def get(self, call_id: str) -> CallRecord | None:
        with self._lock:
            row = self._db.execute("SELECT record FROM calls WHERE id = ?", (call_id,)).fetchone()
        return CallRecord.model_validate(json.loads(row[0])) if row else None

    def close(self) -> None:
        with self._lock:
            self._db.close()
