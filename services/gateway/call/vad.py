"""Who is talking: Silero VAD over the caller's audio, with an echo guard for barge-in.

Every caller's audio passes through Silero (on ONNX Runtime), so one model serves all calls of
the process in batches: windows that arrive within `BATCH_TICK_S` of each other go through the
network together, each with its own call's recurrent state. Batching is what makes it cheap:
0.14 ms of CPU for one 32 ms window alone, ~0.05 ms each in a batch of 8, against 0.22 ms through
silero-vad's own per-stream wrapper (bench/results/call_latency.md). Near-silent windows (below
`QUIET_DBFS`) skip the model: a line that carries nothing but hiss costs almost nothing.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from services.common.audio import FRAME_MS, resample

QUIET_DBFS = -45.0
# How long a window may wait for others to share its batch: the VAD's answer comes this much
# later (barge-in and turn ends too), for a several-fold cheaper network run.
BATCH_TICK_S = 0.01
_FULL_SCALE_SQ = 32768.0**2


def rms_dbfs(pcm: bytes) -> float:
    """Loudness of 16-bit PCM in dB below full scale (-120 for digital silence)."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32)
    if samples.size == 0:
        return -120.0
    power = float(np.dot(samples, samples)) / samples.size / _FULL_SCALE_SQ
    return 10 * math.log10(power + 1e-12)


def load_vad_model() -> Any:  # silero_vad's OnnxWrapper; imported lazily (fast CLI start)
    from silero_vad import load_silero_vad

    return load_silero_vad(onnx=True)  # one thread per session: calls share the cores


@dataclass
class _Window:
    stream: VoiceActivity
    samples: np.ndarray
    done: asyncio.Future[float]


class SileroBatch:
    """The process's one Silero model, run over the windows of every call at once. Each call's
    recurrent state and context travel with its window (the network itself keeps none)."""

    def __init__(self, model: Any | None = None) -> None:
        self._session = (model or load_vad_model()).session  # silero-vad's ONNX session
        self._pending: dict[int, list[_Window]] = {}
        self._flush: asyncio.TimerHandle | None = None
        self.runs = self.windows = 0  # for /metrics-style accounting in tests and benchmarks

    async def probability(self, stream: VoiceActivity, samples: np.ndarray) -> float:
        loop = asyncio.get_running_loop()
        window = _Window(stream, samples, loop.create_future())
        self._pending.setdefault(stream.rate, []).append(window)
        if self._flush is None:
            self._flush = loop.call_later(BATCH_TICK_S, self._run)
        return await window.done

    def _run(self) -> None:
        self._flush = None
        pending, self._pending = self._pending, {}
        for rate, windows in pending.items():
            try:
                probabilities = self._infer(rate, windows)
            except Exception as exc:  # every waiting call hears of it; the next batch retries
                for window in windows:
                    if not window.done.done():
                        window.done.set_exception(exc)
                continue
            for window, p in zip(windows, probabilities, strict=True):
                if not window.done.done():  # its call may have ended meanwhile
                    window.done.set_result(float(p))

    def _infer(self, rate: int, windows: list[_Window]) -> np.ndarray:
        inputs = np.stack([np.concatenate([w.stream.context, w.samples]) for w in windows])
        state = np.concatenate([w.stream.state for w in windows], axis=1)
        out, new_state = self._session.run(
            None, {"input": inputs, "state": state, "sr": np.array(rate, dtype=np.int64)}
        )
        self.runs += 1
        self.windows += len(windows)
        context = windows[0].stream.context.size
        for n, window in enumerate(windows):
            window.stream.state = new_state[:, n : n + 1, :]
            window.stream.context = inputs[n, -context:]
        return out[:, 0]


class VoiceActivity:
    """Speech probability for each 20 ms frame of one call (the latest 32 ms Silero window
    covering it)."""

    def __init__(self, sample_rate: int, batch: SileroBatch) -> None:
        self._in_rate = sample_rate
        self.rate = 8000 if sample_rate == 8000 else 16000
        self._window = 256 if self.rate == 8000 else 512
        self._batch = batch
        self.state = np.zeros((2, 1, 128), dtype=np.float32)
        self.context = np.zeros(32 if self.rate == 8000 else 64, dtype=np.float32)
        self._buf = np.zeros(0, dtype=np.float32)
        self._prob = 0.0

    async def feed(self, pcm: bytes) -> float:
        pcm = resample(pcm, self._in_rate, self.rate)
        samples = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        self._buf = np.concatenate([self._buf, samples])
        while self._buf.size >= self._window:
            window, self._buf = self._buf[: self._window], self._buf[self._window :]
            power = float(np.dot(window, window)) / window.size
            if 10 * math.log10(power + 1e-12) < QUIET_DBFS:
                self._prob = 0.0
                continue
            self._prob = await self._batch.probability(self, window)
        return self._prob


@dataclass
class SpeechEdges:
    started: bool = False  # speech just lasted long enough to count (barge-in / turn start)
    ended: bool = False  # silence after counted speech just reached the endpoint


class SpeechTracker:
    """Turns per-frame probabilities into speech start / end, ignoring echo and short noises."""

    def __init__(
        self,
        *,
        threshold: float,
        threshold_speaking: float,
        min_speech_ms: int,
        endpoint_ms: int,
        echo_ratio: float,
    ) -> None:
        self.threshold, self.threshold_speaking = threshold, threshold_speaking
        self.min_speech_ms, self.endpoint_ms, self.echo_ratio = (
            min_speech_ms,
            endpoint_ms,
            echo_ratio,
        )
        self.speech_ms = 0
        self.silence_ms = 0
        self.in_speech = False
        self._levels: deque[float] = deque(maxlen=5)  # syllables pulse: compare 100 ms peaks

    def reset(self) -> None:
        self.speech_ms = self.silence_ms = 0
        self.in_speech = False

    def update(self, prob: float, level_db: float, echo_db: float | None) -> SpeechEdges:
        """`echo_db`: peak loudness of what the bot just played (None when it is quiet)."""
        self._levels.append(level_db)
        threshold = self.threshold if echo_db is None else self.threshold_speaking
        louder_than_echo = echo_db is None or max(self._levels) >= echo_db + 20 * np.log10(
            self.echo_ratio
        )
        edges = SpeechEdges()
        if prob >= threshold and louder_than_echo:
            self.speech_ms += FRAME_MS
            self.silence_ms = 0
            if not self.in_speech and self.speech_ms >= self.min_speech_ms:
                self.in_speech = edges.started = True
        else:
            self.silence_ms += FRAME_MS
            if not self.in_speech:
                self.speech_ms = 0
            elif self.silence_ms >= self.endpoint_ms:
                self.in_speech, self.speech_ms = False, 0
                edges.ended = True
        return edges
