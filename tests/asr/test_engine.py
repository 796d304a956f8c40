"""The embedded Vosk engine with the real Korean model and real speech (eSpeak NG Korean, and
Russian Asterisk prompts as real telephone speech the Korean model can only transcribe badly)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.asr import metrics
from services.asr.base import (
    ENDPOINT_DICTATION,
    ENDPOINT_SHORT,
    Endpointing,
    RecognizerOverloaded,
)
from services.asr.engine import ModelUnavailable, VoskRecognizer, load_recognizer
from services.asr.pool import DecoderPool
from services.common.audio import read_wav, split_frames
from services.common.config import Settings

from .helpers import Speech, finals, run_stream, silence, similarity

ASTERISK_RU = Path("/usr/share/asterisk/sounds/ru")


@pytest.mark.parametrize("rate", [8000, 16000])
async def test_speech_gives_partials_then_a_final_with_timed_words(
    recognizer: VoskRecognizer, sentence: Speech, rate: int
) -> None:
    lead = 1.0
    pcm = silence(lead, rate) + sentence.at(rate) + silence(1.5, rate)
    replies = await run_stream(recognizer, pcm, rate)

    [final] = finals(replies)
    assert final.text.strip()
    first_final = replies.index(final)
    assert any(r.text for r in replies[:first_final] if not r.final), "no partial before the final"
    words = final.words
    assert words and " ".join(w.word for w in words) == final.text
    for w in words:
        assert 0 <= w.start <= w.end and 0 < w.conf <= 1
    assert [w.start for w in words] == sorted(w.start for w in words)
    # Times are stream times although the VAD gate kept the leading silence from Kaldi.
    duration = len(pcm) / 2 / rate
    assert lead - 0.4 < words[0].start and words[-1].end <= duration


async def test_russian_telephone_prompt_8k_is_transcribed(recognizer: VoskRecognizer) -> None:
    path = ASTERISK_RU / "agent-loginok.wav"
    if not path.is_file():
        pytest.skip(f"{path} missing: install Debian asterisk-core-sounds-ru-wav")
    pcm, rate = read_wav(path)
    assert rate == 8000
    # The Korean model cannot judge Russian words: this shows 8 kHz telephone speech flows.
    assert finals(await run_stream(recognizer, pcm + silence(1, rate), rate))


async def test_vad_gate_keeps_silence_from_the_recognizer(
    recognizer: VoskRecognizer, sentence: Speech
) -> None:
    rate = 8000
    before = metrics.AUDIO_DECODED._value.get()
    replies = await run_stream(recognizer, silence(10, rate), rate)
    assert not finals(replies) and all(r.text == "" for r in replies)
    assert metrics.AUDIO_DECODED._value.get() - before < 0.5  # of 10 s

    before = metrics.AUDIO_DECODED._value.get()
    pcm = silence(5, rate) + sentence.at(rate) + silence(5, rate)
    assert finals(await run_stream(recognizer, pcm, rate))
    decoded = metrics.AUDIO_DECODED._value.get() - before
    speech_s = len(sentence.pcm8k) / 2 / rate
    assert speech_s < decoded < speech_s + 2.5  # speech plus padding, not the 10 s of silence


async def test_endpointing_is_chosen_per_turn(recognizer: VoskRecognizer, digits: Speech) -> None:
    rate = 8000
    pause = silence(0.8, rate)
    pcm = digits.at(rate) + pause + digits.at(rate) + silence(2.0, rate)

    short = await run_stream(recognizer, pcm, rate, endpointing=ENDPOINT_SHORT)
    dictation = await run_stream(recognizer, pcm, rate, endpointing=ENDPOINT_DICTATION)

    # A yes/no turn ends at the pause; a dictated number waits it out and comes as one final.
    assert len(finals(short[:-1])) >= 2
    assert len(finals(dictation[:-1])) == 1
    assert dictation[-1].text == ""  # the endpointer, not the flush, ended the utterance


async def test_stream_switches_endpointing_between_turns(
    recognizer: VoskRecognizer, digits: Speech
) -> None:
    rate = 8000
    turn = digits.at(rate) + silence(0.8, rate) + digits.at(rate) + silence(2.0, rate)
    stream = await recognizer.open_stream(rate, endpointing=ENDPOINT_DICTATION)
    try:
        first = [await stream.feed(c) for c in split_frames(turn, rate, 100)]
        await stream.set_endpointing(ENDPOINT_SHORT)
        second = [await stream.feed(c) for c in split_frames(turn, rate, 100)]
    finally:
        await stream.close()
    assert len(finals(first)) == 1 and len(finals(second)) >= 2


async def test_max_utterance_cuts_endless_speech(
    recognizer: VoskRecognizer, sentence: Speech
) -> None:
    rate = 8000
    talk = b"".join([sentence.at(rate)] * 3)  # ~12 s without a pause
    cap = Endpointing(silence_ms=2000, max_utterance_s=4)
    replies = await run_stream(recognizer, talk, rate, endpointing=cap)
    assert len(finals(replies[:-1])) >= 2


async def test_phrase_list_is_a_runtime_grammar_switchable_per_turn(
    recognizer: VoskRecognizer, sentence: Speech
) -> None:
    rate = 16000
    phrases = ["안녕하세요", "감사합니다", "네", "아니요"]
    turn = sentence.at(rate) + silence(1.5, rate)
    stream = await recognizer.open_stream(rate, phrases=phrases)
    try:
        biased = [await stream.feed(c) for c in split_frames(turn, rate, 100)]
        await stream.set_phrases(None)  # next turn: the full language model again
        free = [await stream.feed(c) for c in split_frames(turn, rate, 100)]
    finally:
        await stream.close()
    biased_words = {w for h in finals(biased) for w in h.text.split()}
    assert biased_words and biased_words <= set(phrases)
    free_words = {w for h in finals(free) for w in h.text.split()}
    assert free_words - set(phrases), "the grammar was not lifted"


async def test_concurrent_streams_hear_what_one_stream_alone_hears(
    korean_model_path: Path, sentence: Speech, digits: Speech
) -> None:
    """Every concurrent stream's transcript is closer to its own solo transcript than to any
    other stream's: no cross-talk, no lost audio. Not equality: on this low-confidence synthetic
    Korean speech, Vosk flips words between runs at times even with fresh recognizers
    (keep_warm=0, so no speaker adaptation carried over from a previous call)."""
    recognizer = VoskRecognizer(korean_model_path, DecoderPool(max_streams=8), keep_warm=0)
    inputs = [
        (sentence.at(8000) + silence(1, 8000), 8000),
        (digits.at(16000) + silence(1, 16000), 16000),
        (digits.at(8000) + silence(1, 8000), 8000),
        (sentence.at(16000) + silence(1, 16000), 16000),
    ]
    kinds = ["sentence", "digits", "digits", "sentence"]

    async def transcript(pcm: bytes, rate: int) -> str:
        return " ".join(h.text for h in finals(await run_stream(recognizer, pcm, rate)))

    alone = [await transcript(p, r) for p, r in inputs]
    together = await asyncio.gather(*(transcript(p, r) for p, r in inputs))
    assert all(alone)
    for i, text in enumerate(together):
        own = similarity(text, alone[i])
        assert text, f"stream {i} heard nothing"
        others = [similarity(text, alone[j]) for j in range(len(inputs)) if kinds[j] != kinds[i]]
        assert own > max(others)


async def test_pool_sheds_streams_beyond_capacity(korean_model_path: Path) -> None:
    pool = DecoderPool(workers=1, max_streams=2)
    pool.admit()
    pool.admit()
    with pytest.raises(RecognizerOverloaded, match="capacity"):
        pool.admit()
    pool.release()
    pool.admit()  # a freed slot is usable again


def test_missing_model_says_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailable) as err:
        load_recognizer(Settings(asr_model=tmp_path / "none", asr_url=None))
    assert "voicebot models fetch" in err.value.reason


async def test_odd_length_pcm_is_refused(recognizer: VoskRecognizer) -> None:
    stream = await recognizer.open_stream(8000)
    try:
        with pytest.raises(ValueError, match="odd-length"):
            await stream.feed(b"\0" * 321)
        assert not (await stream.feed(b"\0" * 320)).final  # the stream still works
    finally:
        await stream.close()


async def test_finished_calls_recognizers_serve_the_next_call_warm(
    recognizer: VoskRecognizer, sentence: Speech
) -> None:
    rate = 8000
    pcm = silence(0.5, rate) + sentence.at(rate) + silence(1.0, rate)
    first = finals(await run_stream(recognizer, pcm, rate))
    warm = recognizer.describe()["warm_recognizers"]
    assert isinstance(warm, int) and warm >= 1

    stream = await recognizer.open_stream(rate)  # takes a warm one
    assert recognizer.describe()["warm_recognizers"] == warm - 1
    replies = [await stream.feed(c) for c in split_frames(pcm, rate, 100)]
    replies.append(await stream.finish())
    await stream.close()
    assert recognizer.describe()["warm_recognizers"] == warm
    # Vosk counts time over a recognizer's whole life; the new call still gets its own times.
    # Not equal ones: Vosk may hear a short word more or less at the onset from run to run, but
    # a recognizer's past would shift every time by that earlier call's length (3 s here).
    second = finals(replies)
    duration = len(pcm) / 2 / rate
    assert second[0].words[0].start >= 0 and second[-1].words[-1].end <= duration
    assert abs(second[0].words[0].start - first[0].words[0].start) < 0.5
