"""The seam between the gateway and speech synthesis."""

from __future__ import annotations

from typing import Protocol


class SpeechSynthesizer(Protocol):
    name: str

    async def synthesize(self, text: str, sample_rate: int) -> bytes:
        """Speak Russian `text`; 16-bit LE mono PCM at `sample_rate`."""
        ...

    def describe(self) -> dict[str, object]: ...
