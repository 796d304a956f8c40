"""eSpeak NG via ctypes on the library PyPI `espeakng-loader` ships (no root, no system package).

The library keeps global state (one voice, one callback), so the process opens it once and
every call into it holds one lock.
"""

from __future__ import annotations

import ctypes
import functools
import threading

import numpy as np

from services.common.audio import resample

AUDIO_OUTPUT_SYNCHRONOUS = 2
ESPEAK_CHARS_UTF8 = 1
POS_CHARACTER = 1
ESPEAK_RATE = 1
DEFAULT_WPM = 165  # a little slower than eSpeak's 175: clearer over a phone line

# Silero's speaker names mapped to eSpeak voice variants, so one configured speaker works on
# either engine. They only approximate the Silero voices (female/male, different timbres).
SPEAKERS: dict[str, str] = {
    "xenia": "ru+f3",
    "kseniya": "ru+f4",
    "baya": "ru+f2",
    "aidar": "ru+m3",
    "eugene": "ru+m2",
    "ru": "ru",
}

_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _Library:
    """The process's one eSpeak NG: initialised once, one synth callback, one lock.

    libespeak-ng keeps global state, so two handles would share it: a second
    `espeak_Initialize` or callback swap while another thread synthesises crashes the process.
    """

    def __init__(self) -> None:
        import espeakng_loader

        self.lock = threading.Lock()
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        data_path = espeakng_loader.get_data_path().encode()
        rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, 0)
        if rate <= 0:
            raise RuntimeError(f"eSpeak NG failed to initialise (data at {data_path.decode()})")
        self.native_rate: int = rate
        self.version = "espeak-ng " + lib.espeak_Info(None).decode()
        self._lib = lib
        self._chunks: list[bytes] = []
        # Referenced for the process's lifetime: the library calls it after we return.
        self._callback = _CALLBACK(self._collect)
        lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav: ctypes._Pointer, numsamples: int, _events: int) -> int:
        if numsamples > 0 and wav:
            self._chunks.append(ctypes.string_at(wav, numsamples * 2))
        return 0  # 0: continue synthesis

    def synth(self, data: bytes, voice: str, wpm: int) -> bytes:
        """NUL-terminated UTF-8 `data` → PCM at `native_rate`; callers are serialized."""
        with self.lock:
            self._chunks = []
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise RuntimeError(f"eSpeak NG has no voice {voice!r}")
            self._lib.espeak_SetParameter(ESPEAK_RATE, wpm, 0)
            err = self._lib.espeak_Synth(
                data, len(data), 0, POS_CHARACTER, 0, ESPEAK_CHARS_UTF8, None, None
            )
            if err != 0:
                raise RuntimeError(f"eSpeak NG synthesis failed (error {err})")
            pcm = b"".join(self._chunks)
            self._chunks = []
        return pcm


@functools.cache
def _library() -> _Library:
    return _Library()


class EspeakBackend:
    """Renders Russian text to 16-bit PCM with eSpeak NG; any number of these share one library."""

    name = "espeak"
    speakers = tuple(SPEAKERS)
    accepts_stress_marks = False

    def __init__(self) -> None:
        self._library = _library()
        self.native_rate: int = self._library.native_rate
        self.version: str = self._library.version

    def render(self, text: str, speaker: str, sample_rate: int, speed: float = 1.0) -> bytes:
        """Speak plain Russian `text`; 16-bit LE mono PCM at `sample_rate`."""
        voice = SPEAKERS.get(speaker)
        if voice is None:
            raise ValueError(
                f"unknown speaker {speaker!r}; eSpeak NG speakers: {', '.join(SPEAKERS)}"
            )
        # Silero stress marks mean nothing here.
        data = text.replace("+", "").encode("utf-8") + b"\0"
        pcm = self._library.synth(data, voice, round(DEFAULT_WPM * speed))
        return resample(_trim_silence(pcm), self.native_rate, sample_rate)

    def describe(self) -> dict[str, object]:
        return {"engine": self.name, "version": self.version, "native_rate": self.native_rate}


def _trim_silence(pcm: bytes, threshold: int = 64, keep: int = 1100) -> bytes:
    """Drop eSpeak's leading/trailing silence (keep ~50 ms) so joined sentences pace naturally."""
    samples = np.frombuffer(pcm, dtype="<i2")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > threshold)
    if loud.size == 0:
        return b""
    start, end = max(0, loud[0] - keep), min(samples.size, loud[-1] + keep)
    return samples[start:end].tobytes()
