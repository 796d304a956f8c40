"""The in-process synthesizer on real eSpeak NG: sentences, streaming, cache, pre-rendering."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from services.common.audio import duration_s
from services.tts.cache import CacheKey, TtsCache
from services.tts.synthesizer import InvalidRequest, Synthesizer

from .conftest import CountingBackend

ANSWER = (
    "Телефон горячей линии 8-800-200-34-11. Мы работаем с 9:00 до 20:00. "
    "Звонок бесплатный для абонентов всех операторов РФ."
)


async def test_answer_is_normalized_split_and_spoken(
    synthesizer: Synthesizer, counting: CountingBackend
) -> None:
    pcm = await synthesizer.synthesize(ANSWER, 8000)
    assert counting.rendered == [
        "Телефон горячей линии восемь, восемьсот, двести, тридцать четыре, одиннадцать.",
        "Мы работаем с девяти до двадцати часов.",
        "Звонок бесплатный для абонентов всех операторов эр+эф.",
    ]
    assert 6 < duration_s(pcm, 8000) < 20
    assert np.abs(np.frombuffer(pcm, "<i2")).max() > 5000


async def test_stream_yields_first_sentence_before_the_rest_is_rendered(
    synthesizer: Synthesizer, counting: CountingBackend
) -> None:
    chunks, rendered_when_first_arrived = [], None
    async for pcm in synthesizer.stream(ANSWER, 16000):
        if not chunks:
            rendered_when_first_arrived = len(counting.rendered)
        chunks.append(pcm)
    assert len(chunks) == 3
    assert rendered_when_first_arrived is not None and rendered_when_first_arrived < 3
    assert b"".join(chunks) == await synthesizer.synthesize(ANSWER, 16000)  # now from cache


async def test_cache_hit_skips_the_engine(
    synthesizer: Synthesizer, counting: CountingBackend
) -> None:
    first = await synthesizer.synthesize(ANSWER, 8000)
    assert len(counting.rendered) == 3
    second = await synthesizer.synthesize(ANSWER, 8000)
    assert second == first
    assert len(counting.rendered) == 3
    assert synthesizer.cache is not None and synthesizer.cache.hits == 3
    await synthesizer.synthesize(ANSWER, 16000)  # another rate is another key
    assert len(counting.rendered) == 6


async def test_cache_survives_a_restart(counting: CountingBackend, cache_dir: Path) -> None:
    before = Synthesizer(counting, speaker="xenia", cache=TtsCache(cache_dir))
    pcm = await before.synthesize(ANSWER, 8000)
    before.close()
    counting.rendered.clear()

    after = Synthesizer(counting, speaker="xenia", cache=TtsCache(cache_dir))
    try:
        assert await after.synthesize(ANSWER, 8000) == pcm
        assert counting.rendered == []
    finally:
        after.close()


async def test_prerender_fills_the_cache_and_skips_slot_sentences(
    synthesizer: Synthesizer, counting: CountingBackend
) -> None:
    answers = [
        "Здравствуйте! Вы позвонили на горячую линию.",
        "Ваша заявка номер {ticket} принята. Ожидайте звонка оператора.",
        "",
    ]
    assert await synthesizer.prerender(answers, sample_rates=(8000, 16000)) == 6
    assert not any("{" in text or "ticket" in text for text in counting.rendered)
    counting.rendered.clear()
    await synthesizer.synthesize("Здравствуйте! Вы позвонили на горячую линию.", 8000)
    # A filled template: only the sentence with the slot value is new.
    await synthesizer.synthesize("Ваша заявка номер 25 принята. Ожидайте звонка оператора.", 16000)
    assert counting.rendered == ["Ваша заявка номер двадцать пять принята."]
    assert await synthesizer.prerender(answers) == 0  # all there already


@pytest.mark.parametrize(
    ("kwargs", "message", "status"),
    [
        (dict(text="   "), "empty text", 400),
        (dict(text="да. " * 2000), "text too long", 413),
        (dict(text="да", speaker="nobody"), "unknown speaker 'nobody'", 400),
        (dict(text="да", sample_rate=11025), "unsupported sample rate 11025", 400),
        (dict(ssml="<speak><audio src='x'/></speak>"), "unsupported SSML element <audio>", 400),
    ],
)
def test_bad_requests_are_clear(
    synthesizer: Synthesizer, kwargs: dict, message: str, status: int
) -> None:
    text = kwargs.pop("text", None)
    with pytest.raises(InvalidRequest, match=message) as err:
        synthesizer.plan(text, **kwargs)
    assert err.value.status == status


async def test_hanging_up_mid_stream_cancels_cleanly(synthesizer: Synthesizer) -> None:
    stream = synthesizer.stream(ANSWER + " " + ANSWER.replace("РФ", "России"), 8000)
    first = await stream.__anext__()
    assert first
    await stream.aclose()  # the caller hung up after the first sentence
    await asyncio.sleep(0.3)  # the sentence already rendering finishes and is cached, no error


async def test_parallel_callers_each_get_their_audio(synthesizer: Synthesizer) -> None:
    texts = [f"Ваш номер в очереди {n}." for n in range(2, 8)]
    results = await asyncio.gather(*(synthesizer.synthesize(t, 8000) for t in texts))
    assert all(duration_s(pcm, 8000) > 1.0 for pcm in results)


def test_cache_evicts_least_recently_used(cache_dir: Path) -> None:
    cache = TtsCache(cache_dir, max_bytes=2500)
    keys = [CacheKey(f"фраза {i}", "xenia", 8000, "v1") for i in range(3)]
    cache.put(keys[0], bytes(1000))
    cache.put(keys[1], bytes(1000))
    assert cache.get(keys[0]) is not None  # 0 is now more recent than 1
    cache.put(keys[2], bytes(1000))
    assert keys[1] not in cache and keys[0] in cache and keys[2] in cache
    assert cache.evictions == 1
    reopened = TtsCache(cache_dir, max_bytes=2500)
    assert reopened.describe()["entries"] == 2 and reopened.describe()["bytes"] == 2000


def test_new_engine_version_never_replays_old_audio(cache_dir: Path) -> None:
    cache = TtsCache(cache_dir)
    cache.put(CacheKey("да", "xenia", 8000, "espeak-ng 1.52.0"), b"\1\1")
    assert cache.get(CacheKey("да", "xenia", 8000, "silero v4_ru abc")) is None
