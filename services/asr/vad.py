"""The speech gate: feed the recognizer only while the caller may be speaking.

Callers are silent or listening most of a call; webrtcvad costs microseconds per frame where
the recognizer costs milliseconds. The gate keeps a short pre-roll so the first phoneme is not
clipped, and reports how long the caller has been silent so the stream can end the utterance.
"""

from __future__ import annotations

from collections import deque

import webrtcvad

VAD_RATES = frozenset({8000, 16000, 32000, 48000})


class SpeechGate:
    def __init__(
        self,
        sample_rate: int,
        frame_ms: int = 20,
        aggressiveness: int = 2,
        preroll_ms: int = 300,
        onset_window: int = 10,
        onset_voiced: int = 3,
    ) -> None:
        if sample_rate not in VAD_RATES:
            raise ValueError(f"webrtcvad needs one of {sorted(VAD_RATES)} Hz, not {sample_rate}")
        self._vad = webrtcvad.Vad(aggressiveness)
        self._rate = sample_rate
        self.frame_ms = frame_ms
        self._preroll: deque[bytes] = deque(maxlen=max(preroll_ms // frame_ms, onset_window))
        self._recent: deque[bool] = deque(maxlen=onset_window)
        self._onset_voiced = onset_voiced
        self.in_speech = False
        self.trailing_silence_ms = 0

    def push(self, frame: bytes) -> list[bytes]:
        """Frames to feed now: nothing while silent, pre-roll plus this frame at an onset."""
        voiced = self._vad.is_speech(frame, self._rate)
        if self.in_speech:
            self.trailing_silence_ms = 0 if voiced else self.trailing_silence_ms + self.frame_ms
            return [frame]
        self._preroll.append(frame)
        self._recent.append(voiced)
        if sum(self._recent) < self._onset_voiced:
            return []
        self.in_speech, self.trailing_silence_ms = True, 0
        frames = list(self._preroll)
        self._preroll.clear()
        self._recent.clear()
        return frames

    def close(self) -> None:
        """The utterance ended: wait for the next onset."""
        self.in_speech = False
        self.trailing_silence_ms = 0
