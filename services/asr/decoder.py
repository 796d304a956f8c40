"""One call's recognition, synchronous: VAD gate → resampler → Kaldi, with our own endpointing.

Runs in a pool thread (see engine.py). Vosk 0.3.45's Python API has no SetEndpointerMode /
SetEndpointerDelays, and a model's Kaldi endpoint rules are fixed in its model.conf, so the
utterance boundary is ours: the VAD's trailing-silence count against the turn's `Endpointing`.
Kaldi may still cut an utterance into segments at its own endpoints; those are kept and joined
into the one final the caller's turn gets.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import vosk

from services.asr import metrics
from services.asr.base import Alternative, Endpointing, Hypothesis, Word
from services.asr.vad import SpeechGate
from services.common.audio import SAMPLE_WIDTH, StreamResampler, frame_bytes

FRAME_MS = 20
# Kaldi's best path only moves once per nnet chunk (51 frames on the static graph, 21 on a
# model's own conf), so asking for it after every 20-100 ms of audio mostly re-reads the same
# words: partials are refreshed after this much new audio, or when Kaldi closed a segment.
PARTIAL_EVERY_S = 0.2


def grammar_json(phrases: list[str] | None) -> str:
    """Vosk's runtime grammar: a JSON list of phrases; "[]" is the model's full language model."""
    return json.dumps(phrases or [], ensure_ascii=False)


@dataclass
class Kaldi:
    """A KaldiRecognizer at the model's rate. The full-LM one is reused from call to call: on a
    lookahead graph a new one spends ~2 s of CPU expanding it, a reused one keeps that cache.
    Vosk's word times count audio fed since its creation, hence `fed_s`; `onsets` maps them
    back to stream time: (fed seconds, stream seconds) at each opening of the speech gate."""

    rec: vosk.KaldiRecognizer
    fed_s: float = 0.0
    onsets: list[tuple[float, float]] = field(default_factory=list)


# A recognizer restricted to these phrases (Vosk's runtime grammar); None: no grammar support.
GrammarFactory = Callable[[list[str]], Kaldi] | None


@dataclass
class DecoderOptions:
    phrases: list[str] | None = None
    endpointing: Endpointing = field(default_factory=Endpointing)
    words: bool = True
    max_alternatives: int = 0


@dataclass
class _Utterance:
    """Kaldi results of the utterance so far (segments cut by Kaldi's own endpointer)."""

    segments: list[dict] = field(default_factory=list)
    fed_ms: int = 0

    @property
    def text(self) -> str:
        return " ".join(t for t in (_text(s) for s in self.segments) if t)


def _text(result: dict) -> str:
    if "alternatives" in result:
        return result["alternatives"][0]["text"] if result["alternatives"] else ""
    return result.get("text", "")


class Decoder:
    """Not thread-safe by itself: every public method takes the decoder's lock."""

    def __init__(
        self,
        kaldi: Kaldi,
        model_rate: int,
        sample_rate: int,
        options: DecoderOptions,
        grammar: GrammarFactory = None,
    ) -> None:
        """`kaldi`: the stream's full-LM recognizer. A turn with phrases decodes on its own
        grammar recognizer from `grammar`, so the full one keeps its warm graph cache."""
        self._lock = threading.Lock()
        self._model_rate, self._rate = model_rate, sample_rate
        self._options = options
        self._grammar = grammar
        self.kaldi = kaldi
        kaldi.onsets = [(kaldi.fed_s, 0.0)]
        self._active = kaldi
        self._configure(kaldi)
        self._gate = SpeechGate(sample_rate, frame_ms=FRAME_MS)
        self._resampler = (
            StreamResampler(sample_rate, model_rate) if sample_rate != model_rate else None
        )
        self._frame = frame_bytes(sample_rate, FRAME_MS)
        self._buffer = b""
        self._utt = _Utterance()
        self._running = False  # Kaldi holds audio since its last result: no grammar switch now
        self._partial = ""
        self._unreported_s = 0.0  # audio decoded since the partial was last read
        self._stream_frames = 0
        self._pending_phrases: tuple[list[str] | None] | None = None
        if options.phrases:
            self._pending_phrases = (options.phrases,)
            self._apply_phrases()

    # --- per-turn settings (apply from the next utterance) -------------------------------

    # Plain assignments: called from the event loop, they must not wait for a decode in progress.
    def set_phrases(self, phrases: list[str] | None) -> None:
        self._pending_phrases = (phrases,)

    def set_endpointing(self, endpointing: Endpointing) -> None:
        self._options.endpointing = endpointing

    @property
    def winding_down(self) -> bool:
        """The caller is not speaking now (the gate is shut, or open on trailing silence): the
        next chunk is cheap, or likely to end the utterance. Read without the lock: a hint."""
        return not self._gate.in_speech or self._gate.trailing_silence_ms > 0

    # --- audio ----------------------------------------------------------------------------

    def accept(self, pcm: bytes) -> Hypothesis:
        """Take a chunk of 16-bit PCM at the stream rate; the final if an utterance ended in
        it (several ending in one chunk are joined), else the current partial."""
        with self._lock:
            metrics.AUDIO_IN.inc(len(pcm) / SAMPLE_WIDTH / self._rate)
            # Vosk can switch grammars only between utterances (mid-utterance it aborts).
            if self._pending_phrases is not None and not self._running and not self._gate.in_speech:
                self._apply_phrases()
            data = self._buffer + pcm
            whole = len(data) - len(data) % self._frame
            self._buffer = data[whole:]
            final: Hypothesis | None = None
            batch = bytearray()
            limits = self._options.endpointing
            for start in range(0, whole, self._frame):
                self._stream_frames += 1
                was_open = self._gate.in_speech
                frames = self._gate.push(data[start : start + self._frame])
                if not frames:
                    continue
                if not was_open:
                    self._mark_onset(len(frames), len(batch))
                for frame in frames:
                    batch += frame
                self._utt.fed_ms += FRAME_MS * len(frames)
                ended = self._gate.trailing_silence_ms >= limits.silence_ms
                if ended or self._utt.fed_ms >= limits.max_utterance_s * 1000:
                    self._decode(bytes(batch))
                    batch.clear()
                    ended_utterance = self._finalize()
                    # A noise burst that opened the gate but held no words is not a turn.
                    if ended_utterance.text:
                        final = _join(final, ended_utterance)
                    if ended:
                        self._gate.close()
            self._decode(bytes(batch))
            return final or self._current_partial()

    def flush(self) -> Hypothesis:
        """End of the caller's turn (or stream): the final for everything fed so far."""
        with self._lock:
            if self._gate.in_speech and self._buffer:
                self._decode(self._buffer)
            self._buffer = b""
            self._gate.close()
            return self._finalize()

    def detach(self) -> Kaldi:
        """End the stream; the full-LM recognizer, back at an utterance boundary, may serve
        another."""
        with self._lock:
            self._finalize()
            return self.kaldi

    # --- internals ------------------------------------------------------------------------

    def _seconds(self, nbytes: int) -> float:
        return nbytes / SAMPLE_WIDTH / self._rate

    def _configure(self, kaldi: Kaldi) -> None:
        kaldi.rec.SetWords(self._options.words)
        kaldi.rec.SetMaxAlternatives(self._options.max_alternatives)

    def _mark_onset(self, preroll_frames: int, batched: int) -> None:
        stream_s = (self._stream_frames - preroll_frames) * FRAME_MS / 1000
        self._active.onsets.append((self._active.fed_s + self._seconds(batched), stream_s))

    def _decode(self, pcm: bytes, tail: bool = False) -> None:
        seconds = self._seconds(len(pcm))
        self._active.fed_s += seconds
        metrics.AUDIO_DECODED.inc(seconds)
        if self._resampler is not None:
            pcm = self._resampler.push(pcm) if pcm else b""
            if tail:
                pcm += self._resampler.flush()
        if not pcm:
            return
        self._running = True
        self._unreported_s += seconds
        if self._active.rec.AcceptWaveform(pcm):
            self._utt.segments.append(json.loads(self._active.rec.Result()))
            self._running = False
            self._unreported_s = PARTIAL_EVERY_S

    def _finalize(self) -> Hypothesis:
        self._decode(b"", tail=True)
        self._utt.segments.append(json.loads(self._active.rec.FinalResult()))
        self._running = False
        hyp = self._hypothesis(self._utt.segments)
        self._utt = _Utterance()
        self._partial, self._unreported_s = "", 0.0
        if self._pending_phrases is not None:
            self._apply_phrases()
        return hyp

    def _apply_phrases(self) -> None:
        assert self._pending_phrases is not None
        (phrases,) = self._pending_phrases
        self._pending_phrases = None
        self._options.phrases = phrases
        if phrases and self._grammar is not None:
            self._active = self._grammar(phrases)
            self._active.onsets = [(0.0, self._stream_frames * FRAME_MS / 1000)]
            self._configure(self._active)
        else:
            self._active = self.kaldi

    def _current_partial(self) -> Hypothesis:
        if self._unreported_s >= PARTIAL_EVERY_S - 1e-9:
            current = json.loads(self._active.rec.PartialResult()).get("partial", "")
            self._partial = " ".join(t for t in (self._utt.text, current) if t)
            self._unreported_s = 0.0
        return Hypothesis(text=self._partial, final=False)

    def _to_stream_time(self, t: float) -> float:
        shift = 0.0
        for fed_s, stream_s in self._active.onsets:
            if fed_s > t + 1e-6:
                break
            shift = stream_s - fed_s
        return round(t + shift, 3) + 0.0  # never -0.0

    def _words(self, items: list[dict]) -> list[Word]:
        return [
            Word(
                word=w["word"],
                start=self._to_stream_time(w["start"]),
                end=self._to_stream_time(w["end"]),
                conf=w.get("conf", 1.0),
            )
            for w in items
        ]

    def _hypothesis(self, segments: list[dict]) -> Hypothesis:
        text = " ".join(t for t in (_text(s) for s in segments) if t)
        if self._options.max_alternatives <= 0:
            words = [w for s in segments for w in self._words(s.get("result", []))]
            return Hypothesis(text=text, final=True, words=words)
        # n-best of the last segment, each prefixed by the best of the earlier ones
        *head, last = segments
        prefix_text = " ".join(t for t in (_text(s) for s in head) if t)
        prefix_words = [w for s in head for w in self._words(_best(s).get("result", []))]
        alternatives = [
            Alternative(
                text=" ".join(t for t in (prefix_text, alt.get("text", "")) if t),
                confidence=alt.get("confidence", 0.0),
                words=prefix_words + self._words(alt.get("result", [])),
            )
            for alt in last.get("alternatives", [])
        ]
        best = alternatives[0] if alternatives else Alternative(text=text, confidence=0.0)
        return Hypothesis(text=best.text, final=True, words=best.words, alternatives=alternatives)


def _best(result: dict) -> dict:
    alternatives = result.get("alternatives") or [{}]
    return alternatives[0]


def _join(first: Hypothesis | None, second: Hypothesis) -> Hypothesis:
    """Two utterances that ended within one chunk travel as one final (nothing dropped)."""
    if first is None:
        return second
    return Hypothesis(
        text=" ".join(t for t in (first.text, second.text) if t),
        final=True,
        words=first.words + second.words,
        alternatives=second.alternatives,
    )
