"""Speech recognition engines: embedded Vosk, or a client of a standalone ASR service.

One `vosk.Model` (hundreds of MB) is loaded once and shared by every stream; each stream has its
own `KaldiRecognizer`, decoded in the shared bounded pool so the event loop never blocks.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import vosk

from services.asr import graph, metrics
from services.asr.base import Endpointing, Hypothesis, SpeechRecognizer
from services.asr.decoder import Decoder, DecoderOptions, GrammarFactory, Kaldi, grammar_json
from services.asr.pool import DecoderPool
from services.asr.telephony import check_format
from services.common import native
from services.common.config import Settings


class ModelUnavailable(Exception):
    """The speech model is not installed; `reason` says how to get it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def model_sample_rate(model_path: Path) -> int:
    """The rate the model's features are computed at (Kaldi's default is 16 kHz)."""
    conf = model_path / "conf" / "mfcc.conf"
    text = conf.read_text() if conf.is_file() else ""
    match = re.search(r"--sample-frequency=(\d+)", text)
    return int(match.group(1)) if match else 16000


class VoskStream:
    """One call's recognition stream (implements base.RecognitionStream)."""

    def __init__(self, recognizer: VoskRecognizer, decoder: Decoder) -> None:
        self._recognizer, self._pool, self._decoder = recognizer, recognizer.pool, decoder
        self._closed = False

    async def feed(self, pcm: bytes) -> Hypothesis:
        if len(pcm) % 2:
            raise ValueError(f"odd-length PCM chunk ({len(pcm)} bytes): 16-bit samples expected")
        started = time.monotonic()
        hyp = await self._pool.run(
            self._decoder.accept, pcm, owner=self, urgent=self._decoder.winding_down
        )
        metrics.LAG.labels("final" if hyp.final else "partial").observe(time.monotonic() - started)
        if hyp.final:
            self._pool.settle(self)
        return hyp

    async def finish(self) -> Hypothesis:
        started = time.monotonic()
        try:
            hyp = await self._pool.run(self._decoder.flush, owner=self, urgent=True)
        finally:
            self._pool.settle(self)
        metrics.LAG.labels("final").observe(time.monotonic() - started)
        return hyp

    def expedite(self) -> None:
        self._pool.expedite(self)

    async def set_phrases(self, phrases: list[str] | None) -> None:
        self._decoder.set_phrases(phrases)

    async def set_endpointing(self, endpointing: Endpointing) -> None:
        self._decoder.set_endpointing(endpointing)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            kaldi = await self._pool.run(self._decoder.detach)
            self._recognizer.recycle(kaldi)
        finally:
            self._pool.settle(self)
            self._pool.release()


class VoskRecognizer:
    """Embedded Vosk (implements base.SpeechRecognizer)."""

    name = "vosk"

    def __init__(
        self,
        model_path: Path,
        pool: DecoderPool | None = None,
        keep_warm: int | None = None,
        static_graph: Path | None = None,
    ) -> None:
        """`keep_warm`: finished calls' recognizers kept for reuse (default: as many as
        `pool.max_streams`); on a lookahead graph each holds its expansion, ~100 MB with a
        small model. `static_graph`: a folder from `voicebot models compile-graph`; used for
        full-LM decoding when it was compiled from this model (see graph.py)."""
        if not (model_path / "am" / "final.mdl").is_file():
            raise ModelUnavailable(
                f"Vosk model not installed at {model_path}: run `voicebot models fetch` "
                "(or set VOICEBOT_ASR_MODEL to an unpacked Vosk model folder)"
            )
        vosk.SetLogLevel(-1)
        started = time.monotonic()
        self.model: vosk.Model = vosk.Model(str(model_path))
        self.model_path = model_path
        self.model_rate = model_sample_rate(model_path)
        # Runtime grammars need a lookahead model (HCLr.fst + Gr.fst), not a static HCLG.fst.
        self.grammar = (model_path / "graph" / "HCLr.fst").is_file()
        self.static_graph: Path | None = None
        self.static_graph_note = "none configured"
        self.full_model = self.model
        if static_graph is not None:
            try:
                graph.check(static_graph, model_path)
                self.full_model = vosk.Model(str(static_graph))
            except graph.GraphError as exc:
                self.static_graph_note = f"not used: {exc}"
            except Exception as exc:  # Vosk cannot load it (a damaged HCLG.fst): keep the old way
                self.static_graph_note = f"not used: Vosk could not load {static_graph}: {exc}"
            else:
                self.static_graph, self.static_graph_note = static_graph, "in use"
        self.load_s = time.monotonic() - started
        self.pool = pool or DecoderPool()
        self.keep_warm = self.pool.max_streams if keep_warm is None else keep_warm
        self._idle: list[Kaldi] = []
        self._idle_lock = threading.Lock()

    def _kaldi(self) -> Kaldi:
        with self._idle_lock:
            if self._idle:
                return self._idle.pop()
        return Kaldi(vosk.KaldiRecognizer(self.full_model, self.model_rate))

    def _grammar_kaldi(self, phrases: list[str]) -> Kaldi:
        return Kaldi(vosk.KaldiRecognizer(self.model, self.model_rate, grammar_json(phrases)))

    def recycle(self, kaldi: Kaldi) -> None:
        """Keep a finished stream's full-LM recognizer warm for the next call."""
        with self._idle_lock:
            if len(self._idle) < self.keep_warm:
                self._idle.append(kaldi)

    def _decoder(self, rate: int, options: DecoderOptions) -> Decoder:
        grammar: GrammarFactory = self._grammar_kaldi if self.grammar else None
        return Decoder(self._kaldi(), self.model_rate, rate, options, grammar)

    async def open_stream(
        self,
        sample_rate: int,
        phrases: list[str] | None = None,
        endpointing: Endpointing | None = None,
        *,
        words: bool = True,
        max_alternatives: int = 0,
    ) -> VoskStream:
        rate = check_format(sample_rate)
        self.pool.admit()
        try:
            options = DecoderOptions(phrases, endpointing or Endpointing(), words, max_alternatives)
            decoder = await self.pool.run(self._decoder, rate, options)
        except BaseException:
            self.pool.release()
            raise
        return VoskStream(self, decoder)

    def describe(self) -> dict[str, object]:
        return {
            "engine": "vosk",
            "mode": "embedded",
            "loaded": True,
            "model": str(self.model_path),
            "model_rate": self.model_rate,
            "grammar": self.grammar,
            "static_graph": str(self.static_graph) if self.static_graph else None,
            "static_graph_note": self.static_graph_note,
            "load_s": round(self.load_s, 2),
            "warm_recognizers": len(self._idle),
            "allocator": native.allocator_in_use(),
            "openblas_core": native.openblas_core(Path(vosk.__file__).parent / "libvosk.so"),
            # Differs from the above where the environment names other kernels (an admin's word).
            "openblas_cpu_pick": native.openblas_coretype(native.cpu_flags()),
            **self.pool.describe(),
        }


def load_recognizer(settings: Settings, pool: DecoderPool | None = None) -> SpeechRecognizer:
    """The recognizer the settings ask for: a standalone ASR service when `asr_url` is set,
    else Vosk in this process (ModelUnavailable when its model is not installed)."""
    if settings.asr_url:
        from services.asr.remote import RemoteRecognizer

        return RemoteRecognizer(settings.asr_url)
    return VoskRecognizer(settings.vosk_model_path, pool, static_graph=settings.vosk_graph_path)
