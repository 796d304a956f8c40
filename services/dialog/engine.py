"""The dialog engine: a compiled KB snapshot, per-call sessions, and atomic hot reload.

A `Snapshot` is immutable once built; `DialogEngine.reload()` builds a new one off to the side
and swaps a single reference, so a call never sees a half-loaded KB. Sessions keep the snapshot
they were created with for the whole call.
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import os
import pickle
import re
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import watchfiles
from pydantic import BaseModel
from threadpoolctl import threadpool_limits

from services.common.logging import get_logger
from services.dialog.base import Alternative
from services.dialog.calibrate import TrainingFailed
from services.dialog.entities import EntityIndex, Found
from services.dialog.loader import PLACEHOLDER, Issue, KnowledgeBase, require_kb
from services.dialog.matcher import Match, Matcher
from services.dialog.normalize import Normalizer
from services.dialog.schema import Scenario
from services.dialog.session import Session, SlotValue

log = get_logger("dialog")
WORD = re.compile(r"[^\W_]+")  # letters and digits of any script; hyphens split words
SLOT_MENTION_WEIGHT = 0.5  # keyword weight of a slot's entity mention for its scenario


@dataclass
class Snapshot:
    """A validated KB compiled for matching."""

    kb: KnowledgeBase
    warnings: list[Issue]
    normalizer: Normalizer
    entities: EntityIndex
    matcher: Matcher
    slot_entities: set[str]
    version: int
    loaded_at: float
    load_seconds: float
    example_owner: list[tuple[str, int]]  # matcher example n → (scenario, its example index)

    @classmethod
    def build(cls, kb: KnowledgeBase, warnings: list[Issue], version: int = 1) -> Snapshot:
        started = time.perf_counter()
        written = [  # the word forms editors wrote: slips are repaired towards them
            text
            for sc in kb.scenarios.values()
            for text in (sc.title, sc.topic or "", *sc.examples, *sc.keywords, *sc.in_context)
        ]
        written += [
            w for canonical, variants in kb.synonyms.items() for w in (canonical, *variants)
        ]
        normalizer = Normalizer(kb.synonyms, kb.settings.fillers, written)
        entities = EntityIndex(kb.entities, normalizer)
        slot_entities = {
            slot.entity for sc in kb.scenarios.values() for slot in sc.slots.values() if slot.entity
        }

        def tokens(text: str) -> list[str]:
            return entities.mask(normalizer.tokens(text), slot_entities)[0]

        examples, owners = [], []
        for sc in kb.scenarios.values():
            for i, text in enumerate(sc.examples):
                examples.append((sc.id, tokens(text)))
                owners.append((sc.id, i))
        keywords = {
            sc.id: {
                key: w for word, w in sc.keywords.items() if (key := tuple(normalizer.tokens(word)))
            }
            for sc in kb.scenarios.values()
        }
        for sc in kb.scenarios.values():  # naming a region is evidence for the scenario needing one
            for slot in sc.slots.values():
                if slot.entity:
                    keywords[sc.id][(f"@{slot.entity}",)] = SLOT_MENTION_WEIGHT
        contexts = {sc.id: [tokens(t) for t in sc.in_context] for sc in kb.scenarios.values()}
        # What else an editor wrote about a scenario is evidence too (not scored as a caller).
        extra = [
            (sc.id, toks)
            for sc in kb.scenarios.values()
            for text in (sc.title, sc.topic or "", *sc.keywords)
            if (toks := tokens(text))
        ]
        tests = [(sc.id, tokens(t)) for sc in kb.scenarios.values() for t in sc.tests]
        matcher = Matcher(
            examples,
            keywords,
            contexts,
            kb.settings.matching,
            extra=extra,
            tests=tests,
            normalize=tokens,
        )
        return cls(
            kb,
            warnings,
            normalizer,
            entities,
            matcher,
            slot_entities,
            version,
            time.time(),
            time.perf_counter() - started,
            owners,
        )

    def analyze(self, text: str) -> tuple[list[str], list[Found]]:
        """Normalized tokens with slot entities masked (`@region`), and the entities found."""
        return self.entities.mask(self.normalizer.tokens(text), self.slot_entities)

    def match(self, text: str, context: str | None = None) -> tuple[Match, list[Found]]:
        tokens, found = self.analyze(text)
        return self.matcher.match(tokens, context), found

    def alternatives(self, match: Match) -> list[Alternative]:
        """Every ranked scenario with the probability the KB's model gives it."""
        return [Alternative(intent=c.intent, score=c.score) for c in match.ranked]

    def scenario(self, intent: str) -> Scenario:
        return self.kb.scenarios[intent]

    def render(self, text: str, values: dict[str, SlotValue], scenario: Scenario) -> str:
        def fill(m: re.Match[str]) -> str:
            value, slot = values[m.group(1)], scenario.slots[m.group(1)]
            if isinstance(value, str):  # digits
                say = slot.digits.say if slot.digits else "number"
                return " ".join(value) if say == "digits" else str(int(value))
            if m.group(2) is None or slot.entity is None:
                return value.name
            defaults = self.kb.entities[slot.entity].defaults
            return value.attrs.get(m.group(2), defaults.get(m.group(2), ""))

        return PLACEHOLDER.sub(fill, text)

    def menu_options(self, menu: dict[str, str]) -> str:
        """«Запись к врачу — нажмите 1, отопление — нажмите 2 или транспорт — нажмите 3.»"""
        items = [
            self.kb.settings.menu_option.format(topic=self.scenario(target).display_topic, key=key)
            for key, target in sorted(menu.items())
        ]
        text = items[-1] if len(items) == 1 else f"{', '.join(items[:-1])} или {items[-1]}"
        return f"{text[:1].upper()}{text[1:]}."

    def entity_phrases(self, entity: str) -> list[str]:
        """Every name and synonym of an entity list as a recognizer spells words: lower case,
        no punctuation; with ё and as е (lexicons differ; Vosk ignores words it lacks)."""
        phrases = set()
        for value in self.kb.entities[entity].values:
            for form in (value.name, *value.synonyms):
                phrase = " ".join(WORD.findall(form.lower()))
                phrases.update({phrase, phrase.replace("ё", "е")} - {""})
        return sorted(phrases)


def _yaml_only(_change: watchfiles.Change, path: str) -> bool:
    return path.endswith((".yaml", ".yml"))


class KBStatus(BaseModel):
    directory: str
    version: int
    loaded_at: float
    load_seconds: float
    scenarios: int
    examples: int
    files: list[str]
    warnings: list[Issue]
    last_reload_ok: bool
    last_reload_at: float | None
    errors: list[Issue]  # why the last reload was rejected; empty when it succeeded


def _issues(exc: BaseException, kb_dir: Path) -> list[Issue]:
    """Why a KB was rejected, as editor-grade issues (errors only)."""
    issues = getattr(exc, "issues", None) or [
        Issue(
            severity="error",
            file=str(kb_dir),
            line=None,
            message=f"{type(exc).__name__}: {exc}",
            fix="give the scenarios examples with words callers say"
            if isinstance(exc, TrainingFailed)
            else "check the knowledge base directory",
        )
    ]
    return [i for i in issues if i.severity == "error"]


def _build(kb_dir: Path, version: int) -> Snapshot | list[Issue]:
    """Read, validate and train a KB: its snapshot, or the issues that reject it."""
    try:
        kb, warnings = require_kb(kb_dir)
        return Snapshot.build(kb, warnings, version)
    except Exception as exc:  # KBInvalid, an unreadable directory, training failed
        return _issues(exc, kb_dir)


def _build_pickled(kb_dir: Path, version: int) -> bytes:
    """`_build` in the worker, pickled there: this process unpickles it as `_unpickle` says."""
    return pickle.dumps(_build(kb_dir, version), protocol=pickle.HIGHEST_PROTOCOL)


def _unpickle(data: bytes) -> Snapshot | list[Issue]:
    """Unpickle a built snapshot with the cyclic collector off: its tens of thousands of new
    objects set off a full collection over both snapshots inside `pickle.loads`, which holds
    the GIL, and every call's match waited for it (bench/kb_speed.py, "during that reload").
    (Pickle's pure-Python unpickler would let calls run but convoys them on the GIL: worse.)"""
    collecting = gc.isenabled()
    gc.disable()
    try:
        built: Snapshot | list[Issue] = pickle.loads(data)
        return built
    finally:
        if collecting:
            gc.enable()


def _background() -> None:
    """The reload worker yields the CPU to calls: lowest priority, one BLAS thread (on two
    cores its BLAS threads took the core the calls' matches ran on)."""
    os.nice(19)
    threadpool_limits(1)


@cache
def _builder() -> ProcessPoolExecutor:
    """One worker process for reloads: training there leaves this process's cores and GIL to
    the calls in progress. A forkserver child (this process has threads; fork would copy
    their locks) with the dialog modules preloaded."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["services.dialog.engine"])
    return ProcessPoolExecutor(max_workers=1, mp_context=context, initializer=_background)


class DialogEngine:
    def __init__(self, kb_dir: Path, snapshot: Snapshot, *, isolate: bool = True):
        """`isolate`: reloads train in a worker process (False: in the calling thread)."""
        self.kb_dir = Path(kb_dir)
        self._snapshot = snapshot
        self._isolate = isolate
        self._lock = threading.Lock()
        self._errors: list[Issue] = []
        self._last_reload_at: float | None = None

    @classmethod
    def load(cls, kb_dir: Path | str, *, isolate: bool = True) -> DialogEngine:
        """Load and compile the KB; raises loader.KBInvalid (with every issue) when it is broken."""
        kb, warnings = require_kb(Path(kb_dir))
        snapshot = Snapshot.build(kb, warnings)
        log.info(
            "kb loaded",
            dir=str(kb_dir),
            scenarios=len(kb.scenarios),
            examples=len(snapshot.matcher),
            seconds=round(snapshot.load_seconds, 3),
        )
        return cls(Path(kb_dir), snapshot, isolate=isolate)

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    def new_session(self) -> Session:
        return Session(self._snapshot)

    def reload(self) -> KBStatus:
        """Re-read the directory and retrain; on any error keep the current KB and remember why.

        Blocks its caller (the file watcher and `POST /v1/kb/reload` call it in a thread);
        calls in progress keep matching on the snapshot they hold while the new one trains."""
        with self._lock:
            self._last_reload_at = time.time()
            version = self._snapshot.version + 1
            try:
                built = (
                    _unpickle(_builder().submit(_build_pickled, self.kb_dir, version).result())
                    if self._isolate
                    else _build(self.kb_dir, version)
                )
            except Exception as exc:  # the worker process died
                built = _issues(exc, self.kb_dir)
            if isinstance(built, list):
                self._errors = built
                log.error(
                    "kb reload rejected; keeping the previous KB",
                    version=self._snapshot.version,
                    errors=[str(i) for i in self._errors],
                )
                return self.status()
            self._snapshot = built
            self._errors = []
            log.info(
                "kb reloaded",
                version=built.version,
                scenarios=len(built.kb.scenarios),
                seconds=round(built.load_seconds, 3),
            )
            return self.status()

    async def watch(self, stop: asyncio.Event | None = None, debounce_ms: int = 400) -> None:
        """Reload whenever a YAML file of the KB changes, until `stop` is set (or cancelled)."""
        async for _changes in watchfiles.awatch(
            self.kb_dir, stop_event=stop, debounce=debounce_ms, watch_filter=_yaml_only
        ):
            await asyncio.to_thread(self.reload)

    def status(self) -> KBStatus:
        snap = self._snapshot
        return KBStatus(
            directory=str(self.kb_dir),
            version=snap.version,
            loaded_at=snap.loaded_at,
            load_seconds=round(snap.load_seconds, 4),
            scenarios=len(snap.kb.scenarios),
            examples=len(snap.matcher),
            files=snap.kb.files,
            warnings=snap.warnings,
            last_reload_ok=not self._errors,
            last_reload_at=self._last_reload_at,
            errors=self._errors,
        )

    def describe(self) -> dict[str, object]:
        """For /readyz: what is loaded."""
        status = self.status()
        return {
            "engine": "logistic regression fitted on the KB",
            "answer_threshold": self._snapshot.matcher.thresholds.answer,
            "kb_dir": status.directory,
            "kb_version": status.version,
            "scenarios": status.scenarios,
            "examples": status.examples,
            "last_reload_ok": status.last_reload_ok,
            "errors": len(status.errors),
        }
