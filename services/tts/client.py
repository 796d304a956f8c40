"""A SpeechSynthesizer that asks a standalone TTS service (`voicebot serve tts`) over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx


class TtsServiceError(RuntimeError):
    """The TTS service refused the request or is unreachable; the message says which."""


class HttpSynthesizer:
    name = "http"

    def __init__(self, url: str, speaker: str | None = None, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.speaker = speaker
        self._client = httpx.AsyncClient(base_url=self.url, timeout=timeout)
        self._remote = _remote_engine(self.url)

    def _body(self, text: str, sample_rate: int) -> dict[str, object]:
        body: dict[str, object] = {"text": text, "rate": sample_rate, "format": "pcm"}
        if self.speaker:
            body["speaker"] = self.speaker
        return body

    async def synthesize(self, text: str, sample_rate: int) -> bytes:
        return b"".join([chunk async for chunk in self.stream(text, sample_rate)])

    async def stream(self, text: str, sample_rate: int) -> AsyncIterator[bytes]:
        """Audio as the service renders it; chunks always hold whole 16-bit samples."""
        try:
            async with self._client.stream(
                "POST", "/v1/synthesize/stream", json=self._body(text, sample_rate)
            ) as response:
                if response.status_code != 200:
                    await response.aread()
                    raise TtsServiceError(
                        f"TTS service {self.url}: {response.status_code} {_detail(response)}"
                    )
                odd = b""
                async for data in response.aiter_bytes():
                    data = odd + data
                    cut = len(data) - len(data) % 2
                    odd = data[cut:]
                    if cut:
                        yield data[:cut]
        except httpx.TransportError as exc:
            raise TtsServiceError(f"TTS service {self.url} unreachable: {exc}") from exc

    async def prerender(self, texts: list[str], sample_rates: tuple[int, ...] = (8000,)) -> int:
        """Ask the service to render `texts` into its cache (it works in the background)."""
        response = await self._client.post(
            "/v1/prerender", json={"texts": texts, "rates": list(sample_rates)}
        )
        if response.status_code != 202:
            detail = _detail(response)
            raise TtsServiceError(f"TTS service {self.url}: {response.status_code} {detail}")
        return 0  # rendered remotely; the count is in the service's log

    def describe(self) -> dict[str, object]:
        """The remote engine as the service reported it at start (so /readyz shows Silero or
        eSpeak NG, not just «http»), plus where it runs."""
        return {**self._remote, "url": self.url, "transport": "http"}

    async def aclose(self) -> None:
        await self._client.aclose()


def _remote_engine(url: str) -> dict[str, object]:
    try:
        info = httpx.get(f"{url}/readyz", timeout=5.0).json()
        return dict(info.get("tts", info))
    except (httpx.HTTPError, ValueError) as exc:
        return {"engine": "unknown", "reason": f"TTS service {url} not reachable at start: {exc}"}


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail"))
    except ValueError:
        return response.text[:200]
