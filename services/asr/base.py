"""The seam between the gateway and speech recognition.

The gateway talks to a `SpeechRecognizer` and never knows whether Vosk runs in this process or
behind the vosk-server WebSocket protocol.
"""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel


class Word(BaseModel):
    word: str
    start: float
    end: float
    conf: float = 1.0


class Hypothesis(BaseModel):
    """One recognizer reply: a partial while the caller speaks, a final at an endpoint."""

    text: str
    final: bool
    words: list[Word] = []


class RecognitionStream(Protocol):
    async def feed(self, pcm: bytes) -> Hypothesis:
        """Accept 16-bit LE mono PCM at the stream's rate; return the partial or a final."""
        ...

    async def finish(self) -> Hypothesis:
        """Flush: the final result for everything fed since the last final."""
        ...

    async def close(self) -> None: ...


class SpeechRecognizer(Protocol):
    name: str

    async def open_stream(
        self, sample_rate: int, phrases: list[str] | None = None
    ) -> RecognitionStream: ...

    def describe(self) -> dict[str, object]:
        """What /readyz shows: engine, model, loaded or why not."""
        ...
