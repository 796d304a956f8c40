"""The in-process SpeechSynthesizer: normalize, split into sentences, render off the event loop
in a bounded pool, cache every sentence on disk, and stream sentence by sentence.

Caching per sentence is what makes templated answers cheap: the fixed sentences of an answer
are rendered once; only the sentence holding a slot value is new (and is then cached per value).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from services.common.logging import get_logger
from services.tts.cache import CacheKey, TtsCache
from services.tts.normalize import add_stress, normalize, split_sentences
from services.tts.ssml import Part, parse_ssml

log = get_logger("tts")

SAMPLE_RATES = (8000, 16000, 24000, 48000)
MAX_TEXT_CHARS = 5000
SENTENCE_GAP_MS = 120  # eSpeak/Silero trim their edges; a short gap keeps sentences apart


class Backend(Protocol):
    """One engine rendering one sentence (blocking; called from pool threads)."""

    name: str
    version: str
    speakers: tuple[str, ...]
    accepts_stress_marks: bool

    def render(self, text: str, speaker: str, sample_rate: int, speed: float = 1.0) -> bytes: ...

    def describe(self) -> dict[str, object]: ...


class InvalidRequest(ValueError):
    """Empty or too long text, unknown speaker, unsupported rate, bad SSML: the caller's fault."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Chunk:
    """One unit to render: a normalized sentence at `speed`, or a pause."""

    text: str = ""
    pause_ms: int = 0
    speed: float = 1.0


@dataclass(frozen=True)
class Plan:
    chunks: tuple[Chunk, ...]
    speaker: str
    sample_rate: int


class Synthesizer:
    """Implements services.tts.base.SpeechSynthesizer on an eSpeak NG or Silero backend."""

    def __init__(
        self,
        backend: Backend,
        *,
        speaker: str,
        cache: TtsCache | None = None,
        workers: int = 2,
        reason: str = "",
        degraded: bool = False,
    ) -> None:
        self.backend = backend
        self.name = backend.name
        self.cache = cache
        self.reason = reason
        self.degraded = degraded
        self.workers = workers
        self.default_speaker = speaker if speaker in backend.speakers else backend.speakers[0]
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tts")
        self._prepare = lru_cache(maxsize=4096)(self._prepare_uncached)

    # --- planning: validation and normalization (cheap, memoized) ------------------------------

    def plan(
        self,
        text: str | None = None,
        *,
        ssml: str | None = None,
        sample_rate: int = 8000,
        speaker: str | None = None,
    ) -> Plan:
        """Validate a request and turn it into sentences; raises InvalidRequest."""
        if sample_rate not in SAMPLE_RATES:
            rates = ", ".join(map(str, SAMPLE_RATES))
            raise InvalidRequest(f"unsupported sample rate {sample_rate}; use one of {rates}")
        speaker = speaker or self.default_speaker
        if speaker not in self.backend.speakers:
            known = ", ".join(self.backend.speakers)
            raise InvalidRequest(f"unknown speaker {speaker!r}; {self.name} speakers: {known}")
        source = ssml if ssml is not None else text
        if source is None or not source.strip():
            raise InvalidRequest("empty text: nothing to say")
        if len(source) > MAX_TEXT_CHARS:
            raise InvalidRequest(
                f"text too long ({len(source)} characters; at most {MAX_TEXT_CHARS})", status=413
            )
        if ssml is not None:
            try:
                parts = parse_ssml(ssml)
            except ValueError as exc:
                raise InvalidRequest(str(exc)) from exc
        else:
            parts = [Part(text or "")]
        chunks: list[Chunk] = []
        for part in parts:
            if part.pause_ms:
                chunks.append(Chunk(pause_ms=part.pause_ms))
            else:
                chunks.extend(Chunk(s, speed=part.speed) for s in self._prepare(part.text))
        if not chunks:
            raise InvalidRequest("nothing to say after normalization")
        return Plan(tuple(chunks), speaker, sample_rate)

    def normalized(self, text: str) -> str:
        """What the engine is given for `text` (`voicebot tts --print-normalized`)."""
        return " ".join(self._prepare(text))

    def _prepare_uncached(self, text: str) -> tuple[str, ...]:
        words = normalize(text)
        if self.backend.accepts_stress_marks:
            words = add_stress(words)
        return tuple(split_sentences(words))

    # --- rendering -------------------------------------------------------------------------------

    def _key(self, chunk: Chunk, plan: Plan) -> CacheKey:
        return CacheKey(
            chunk.text, plan.speaker, plan.sample_rate, self.backend.version, chunk.speed
        )

    def _render_blocking(self, chunk: Chunk, plan: Plan) -> bytes:
        pcm = self.backend.render(chunk.text, plan.speaker, plan.sample_rate, chunk.speed)
        pcm += _silence(SENTENCE_GAP_MS, plan.sample_rate)
        if self.cache is not None:
            self.cache.put(self._key(chunk, plan), pcm)
        return pcm

    async def _render(self, chunk: Chunk, plan: Plan) -> bytes:
        if chunk.pause_ms:
            return _silence(chunk.pause_ms, plan.sample_rate)
        if self.cache is not None and (pcm := self.cache.get(self._key(chunk, plan))) is not None:
            return pcm
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._render_blocking, chunk, plan)

    async def render_plan(self, plan: Plan) -> AsyncIterator[bytes]:
        """Sentence by sentence; the next sentence renders while this one is being played."""
        upcoming = iter(plan.chunks)
        running: deque[asyncio.Future[bytes]] = deque()

        def start_next() -> None:
            if (chunk := next(upcoming, None)) is not None:
                running.append(asyncio.ensure_future(self._render(chunk, plan)))

        start_next()
        start_next()
        try:
            while running:
                pcm = await running.popleft()
                start_next()
                yield pcm
        finally:  # the caller hung up: drop what is still rendering
            for future in running:
                future.cancel()

    async def aplan(
        self,
        text: str | None = None,
        *,
        ssml: str | None = None,
        sample_rate: int = 8000,
        speaker: str | None = None,
    ) -> Plan:
        """`plan` off the event loop: stress marking runs a small neural net per sentence."""
        return await asyncio.to_thread(
            self.plan, text, ssml=ssml, sample_rate=sample_rate, speaker=speaker
        )

    async def stream(
        self, text: str, sample_rate: int, speaker: str | None = None
    ) -> AsyncIterator[bytes]:
        plan = await self.aplan(text, sample_rate=sample_rate, speaker=speaker)
        async for pcm in self.render_plan(plan):
            yield pcm

    async def synthesize(self, text: str, sample_rate: int, speaker: str | None = None) -> bytes:
        return b"".join([pcm async for pcm in self.stream(text, sample_rate, speaker)])

    # --- pre-rendering ---------------------------------------------------------------------------

    async def prerender(
        self,
        texts: Iterable[str],
        sample_rates: Iterable[int] = (8000,),
        speaker: str | None = None,
    ) -> int:
        """Render every sentence of `texts` into the cache; returns how many were new.

        Sentences holding a template slot (`{…}`) are skipped: they render per value on first
        use. Bad texts are logged and skipped, never fatal. Uses one pool worker at most.
        """
        if self.cache is None:
            return 0
        rendered = 0
        for rate in sample_rates:
            for text in texts:
                fixed = " ".join(s for s in _sentences(text) if "{" not in s)
                if not fixed.strip():
                    continue
                try:
                    plan = await self.aplan(fixed, sample_rate=rate, speaker=speaker)
                except InvalidRequest as exc:
                    log.warning("prerender.skip", text=text[:60], reason=str(exc))
                    continue
                for chunk in plan.chunks:
                    if chunk.pause_ms or self._key(chunk, plan) in self.cache:
                        continue
                    # One sentence at a time: pre-rendering holds at most one pool worker, so
                    # live calls always find one free.
                    loop = asyncio.get_running_loop()
                    await loop.run_in_executor(self._pool, self._render_blocking, chunk, plan)
                    rendered += 1
        log.info("prerender.done", rendered=rendered, cache=self.cache.describe())
        return rendered

    def describe(self) -> dict[str, object]:
        return {
            **self.backend.describe(),
            "engine": self.name,
            "reason": self.reason,
            "degraded": self.degraded,
            "speaker": self.default_speaker,
            "speakers": list(self.backend.speakers),
            "sample_rates": list(SAMPLE_RATES),
            "workers": self.workers,
            "cache": self.cache.describe() if self.cache is not None else None,
        }

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _sentences(text: str) -> list[str]:
    """Split raw text at sentence ends (before normalization) to find the slot-free ones."""
    return [s for s in split_sentences(text.replace("\n", " ")) if s]


def _silence(ms: int, sample_rate: int) -> bytes:
    return bytes(sample_rate * ms // 1000 * 2)
