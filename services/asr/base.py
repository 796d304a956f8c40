"""The seam between the gateway and speech recognition.

The gateway talks to a `SpeechRecognizer` and never knows whether Vosk runs in this process or
behind the vosk-server WebSocket protocol.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, Field


class Word(BaseModel):
    word: str
    start: float
    end: float
    conf: float = 1.0


class Alternative(BaseModel):
    text: str
    confidence: float
    words: list[Word] = []


class Hypothesis(BaseModel):
    """One recognizer reply: a partial while the caller speaks, a final at an endpoint."""

    text: str
    final: bool
    words: list[Word] = []
    alternatives: list[Alternative] = []  # only when a stream asks for n-best


class Endpointing(BaseModel):
    """When a caller's utterance counts as finished; set per turn."""

    silence_ms: int = Field(600, ge=100, le=5000, description="trailing silence that ends it")
    max_utterance_s: float = Field(20.0, gt=0, le=120, description="hard cap on one utterance")


# Presets a dialog turn picks from: a yes/no answer ends fast, dictated digits pause between groups.
ENDPOINT_SHORT = Endpointing(silence_ms=300, max_utterance_s=5)
ENDPOINT_DEFAULT = Endpointing()
ENDPOINT_DICTATION = Endpointing(silence_ms=1500, max_utterance_s=30)


class RecognizerOverloaded(Exception):
    """The recognizer is saturated: shed this call (or chunk) rather than make every call lag."""


class RecognitionStream(Protocol):
    async def feed(self, pcm: bytes) -> Hypothesis:
        """Accept 16-bit LE mono PCM at the stream's rate; return the partial or a final."""
        ...

    async def finish(self) -> Hypothesis:
        """Flush: the final result for everything fed since the last final."""
        ...

    def expedite(self) -> None:
        """The caller stopped speaking: this stream's recognition, queued and coming, goes
        before that of callers still speaking, until its final. A hint; it may do nothing."""
        ...

    async def set_phrases(self, phrases: list[str] | None) -> None:
        """Bias recognition to these phrases (a runtime grammar) from the next utterance on;
        None restores the full language model."""
        ...

    async def set_endpointing(self, endpointing: Endpointing) -> None:
        """Endpointing for the next utterances (e.g. ENDPOINT_SHORT for a yes/no question)."""
        ...

    async def close(self) -> None: ...


class SpeechRecognizer(Protocol):
    name: str

    async def open_stream(
        self,
        sample_rate: int,
        phrases: list[str] | None = None,
        endpointing: Endpointing | None = None,
    ) -> RecognitionStream:
        """Raises RecognizerOverloaded when the service is saturated."""
        ...

    def describe(self) -> dict[str, object]:
        """What /readyz shows: engine, model, loaded or why not."""
        ...
