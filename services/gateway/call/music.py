"""Hold music made here, so it ships with no licence to state: the theme of Beethoven's «Ode to
Joy» (public domain) on soft decaying sine tones, one loop of ~13 s."""

from __future__ import annotations

import asyncio
import functools

import numpy as np

from services.gateway.call.pacer import Pacer

# (semitones from A4, beats); the theme's first two phrases.
_E, _F, _G, _D, _C = -5, -4, -2, -7, -9
THEME = [
    *[(_E, 1), (_E, 1), (_F, 1), (_G, 1), (_G, 1), (_F, 1), (_E, 1), (_D, 1)],
    *[(_C, 1), (_C, 1), (_D, 1), (_E, 1), (_E, 1.5), (_D, 0.5), (_D, 2)],
    *[(_E, 1), (_E, 1), (_F, 1), (_G, 1), (_G, 1), (_F, 1), (_E, 1), (_D, 1)],
    *[(_C, 1), (_C, 1), (_D, 1), (_E, 1), (_D, 1.5), (_C, 0.5), (_C, 2)],
]
BEAT_S = 0.4
LEVEL = 0.12  # of full scale: about -21 dBFS, below the announcements' speech


@functools.lru_cache(maxsize=8)
def hold_music(sample_rate: int) -> bytes:
    """One loop of the melody as 16-bit mono PCM at `sample_rate`."""
    notes = []
    for semitones, beats in THEME:
        n = int(beats * BEAT_S * sample_rate)
        t = np.arange(n) / sample_rate
        freq = 440.0 * 2 ** (semitones / 12)
        tone = np.sin(2 * np.pi * freq * t) + 0.3 * np.sin(4 * np.pi * freq * t)
        envelope = np.minimum(t / 0.01, 1.0) * np.exp(-3.0 * t)  # a soft pluck, no click
        notes.append(tone * envelope)
    pcm = np.concatenate(notes)
    return (pcm / np.abs(pcm).max() * LEVEL * 32767).astype("<i2").tobytes()


async def play_music(pacer: Pacer) -> None:
    """Hold music on `pacer`, loop after loop, until cancelled (which stops it at once)."""
    music = hold_music(pacer.sample_rate)
    try:
        while True:
            await asyncio.shield(pacer.play(music).done)
    finally:
        pacer.interrupt()
