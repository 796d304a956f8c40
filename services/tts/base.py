"""The seam between the gateway and speech synthesis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol


class SpeechSynthesizer(Protocol):
    name: str

    async def synthesize(self, text: str, sample_rate: int) -> bytes:
        """Speak Russian `text`; 16-bit LE mono PCM at `sample_rate`."""
        ...

    def stream(self, text: str, sample_rate: int) -> AsyncIterator[bytes]:
        """Like `synthesize`, sentence by sentence: each chunk as soon as it is rendered.

        Joined, the chunks equal `synthesize(text, sample_rate)`.
        """
        ...

    def describe(self) -> dict[str, object]: ...
