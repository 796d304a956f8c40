"""Russian normalization, entity (slot) extraction and the spoken form of phone numbers."""

from __future__ import annotations

import pytest

from services.dialog.normalize import Normalizer


@pytest.fixture(scope="module")
def norm() -> Normalizer:
    return Normalizer({"батарея": ["радиатор"], "оператор": ["живой человек"]})


def test_fillers_case_yo_and_punctuation_go(norm: Normalizer) -> None:
    assert norm("Алло, девушка! Скажите, пожалуйста, э-э, ну... когда ЛИНИЯ работает?") == norm(
        "линия работает"
    )
    assert norm("Ещё") == norm("еще")


def test_lemmas_make_cases_equal(norm: Normalizer) -> None:
    assert norm("Тверская область") == norm("в Тверской области") == norm("из Тверской области")
    assert norm("холодные батареи") == norm("холодная батарея")


def test_number_words_become_digits(norm: Normalizer) -> None:
    assert norm("короткий номер сто двадцать два") == "короткий номер 122"
    assert norm("три два один ноль") == "3 2 1 0"


def test_kb_synonyms_apply_to_lemmas(norm: Normalizer) -> None:
    assert norm("радиаторы не греют") == norm("батареи не греют")
    assert norm("соедините с живым человеком") == "соединить оператор"


def test_negation_is_kept(norm: Normalizer) -> None:
    assert "не" in norm.tokens("не работает лифт")


@pytest.mark.parametrize(
    ("utterance", "region"),
    [
        ("Тверская область", "Тверская область"),
        ("горячая линия в Тверской области", "Тверская область"),
        ("я звоню из Тверской области", "Тверская область"),
        ("по тверской", "Тверская область"),
        ("в твери", "Тверская область"),
        ("тверской облости", "Тверская область"),  # misheard ending
        ("в Москве", "Москва"),
        ("Подмосковье", "Московская область"),
        ("в Московской области", "Московская область"),
        ("в Нижнем Новгороде", "Нижегородская область"),
        ("в Новгородской области", "Новгородская область"),
        ("из Республики Алтай", "Республика Алтай"),
        ("в Алтайском крае", "Алтайский край"),
        ("в Якутии", "Республика Саха (Якутия)"),
        ("в Санкт-Петербурге", "Санкт-Петербург"),
        ("Ханты-Мансийский автономный округ", "Ханты-Мансийский автономный округ"),
    ],
)
def test_region_slot_across_russian_cases(demo_engine, utterance: str, region: str) -> None:
    _, found = demo_engine.snapshot.analyze(utterance)
    assert [f.value.name for f in found] == [region]


def test_every_region_of_the_seed_is_in_the_kb_with_numbers(demo_engine) -> None:
    regions = demo_engine.snapshot.kb.entities["region"]
    assert len(regions.values) == 85  # every region the seed lists
    federal = regions.defaults["phones"]
    assert "8-800-2000-112" in federal and "122" in federal
    by_name = {v.name: v for v in regions.values}
    assert "phones" not in by_name["Республика Адыгея"].attrs  # «Только федеральные номера»
    assert "8-800-333-93-72" in by_name["Тверская область"].attrs["phones"]
    assert "8-495-870-45-09" in by_name["Москва"].attrs["phones"]
