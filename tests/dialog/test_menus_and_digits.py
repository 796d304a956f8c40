"""Key menus, digit slots and the per-turn expectation, through sessions of the demo KB."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from services.dialog.cli import kb_app
from services.dialog.engine import DialogEngine
from services.dialog.loader import load_kb

OPTIONS = (
    "Про запись к врачу — нажмите 1, про вопросы ЖКХ — нажмите 2, про передачу показаний "
    "прямо сейчас — нажмите 3, про вопросы о транспорте — нажмите 4 или про единую "
    "федеральную линию по коронавирусу — нажмите 5."
)


def test_menu_reads_its_options_from_the_topics(demo_engine: DialogEngine) -> None:
    s = demo_engine.new_session()
    r = s.respond("что вы умеете")
    assert (r.decision, r.intent) == ("answer", "menu")
    assert OPTIONS in r.answer and r.answer.endswith("Или задайте вопрос своими словами.")
    assert r.expect is not None and r.expect.kind == "menu"
    assert (r.expect.dtmf_max_length, r.expect.endpointing) == (1, "short")


@pytest.mark.parametrize("choice", ["4", "четыре", "четвёртый", "давайте четвертый", "номер 4"])
def test_menu_pick_by_key_or_spoken_number(demo_engine: DialogEngine, choice: str) -> None:
    s = demo_engine.new_session()
    s.respond("меню")
    r = s.respond(choice)
    assert (r.decision, r.intent) == ("answer", "transport"), choice
    assert "3210" in r.answer


def test_another_question_while_the_menu_is_open_is_matched_as_usual(demo_engine) -> None:
    s = demo_engine.new_session()
    s.respond("список тем")
    r = s.respond("сколько стоит звонок")
    assert (r.decision, r.intent) == ("answer", "line_cost")


def test_key_not_in_the_menu_retries_once_with_the_options_then_hands_off(demo_engine) -> None:
    s = demo_engine.new_session()
    s.respond("меню")
    r = s.respond("7")
    assert r.decision == "clarify" and r.answer == f"В меню нет такого номера. {OPTIONS}"
    assert r.expect is not None and r.expect.kind == "menu"
    r = s.respond("восемь")
    assert (r.decision, r.reason, r.handoff_queue) == (
        "handoff",
        "menu_not_understood",
        "operators",
    )


def test_main_menu_keys_work_from_the_greeting(demo_engine: DialogEngine) -> None:
    s = demo_engine.new_session()
    assert "нажмите 9" in s.greeting()
    expect = s.expecting()
    assert expect is not None and (expect.kind, expect.dtmf_max_length) == ("menu", 1)
    assert expect.endpointing == "default"  # a spoken question is as welcome as a key
    assert s.respond("2").intent == "housing_services"
    other = demo_engine.new_session()
    r = other.respond("9")  # not an option: the caller hears the menu
    assert r.intent == "menu" and OPTIONS in r.answer
    assert other.respond("1").intent == "doctor_appointment"


def test_meter_readings_by_keys_are_kept_and_said_back(demo_engine: DialogEngine) -> None:
    s = demo_engine.new_session()
    s.respond("меню")
    r = s.respond("3")
    assert (r.decision, r.intent) == ("clarify", "meter_submit")
    assert "код плательщика" in r.answer
    assert r.expect is not None and r.expect.model_dump() == {
        "kind": "digits",
        "slot": "payer",
        "dtmf_max_length": 10,
        "phrases": [
            *("ноль", "один", "два", "три", "четыре", "пять", "шесть", "семь", "восемь"),
            *("девять", "оператор", "повторите", "спасибо", "до свидания", "[unk]"),
        ],
        "endpointing": "dictation",
    }
    r = s.respond("0012345678")
    assert r.slots == {"payer": "0012345678"} and "холодной воды" in r.answer
    r = s.respond("123")
    assert r.slots == {"payer": "0012345678", "cold": "123"} and "горячей воды" in r.answer
    r = s.respond("0045")
    assert (r.decision, r.slots) == (
        "answer",
        {"payer": "0012345678", "cold": "123", "hot": "0045"},
    )
    # The code digit by digit (TTS would read 0012345678 as twelve million…), readings as numbers.
    assert "Код плательщика 0 0 1 2 3 4 5 6 7 8, холодная вода 123, горячая вода 45" in r.answer


def test_meter_readings_by_number_words(demo_engine: DialogEngine) -> None:
    s = demo_engine.new_session()
    assert s.respond("примите показания счетчиков").intent == "meter_submit"
    r = s.respond("один два три четыре пять шесть семь восемь девять ноль")
    assert r.slots == {"payer": "1234567890"}
    r = s.respond("сто двадцать три")
    assert r.slots["cold"] == "123"
    r = s.respond("сорок пять")
    assert r.decision == "answer" and r.slots == {"payer": "1234567890", "cold": "123", "hot": "45"}
    assert r.expect is None or r.expect.kind == "menu"  # back to the main menu, no grammar


def test_digits_out_of_bounds_retry_once_then_hand_off(demo_engine: DialogEngine) -> None:
    s = demo_engine.new_session()
    s.respond("примите показания")
    r = s.respond("12345")  # a code has 10 digits
    assert r.decision == "clarify" and r.answer.startswith("Не расслышал. Наберите")
    assert r.expect is not None and r.expect.slot == "payer"
    r = s.respond("123456789012")
    assert (r.decision, r.reason) == ("handoff", "slot_not_understood")


def test_operator_during_digit_entry_hands_off(demo_engine: DialogEngine) -> None:
    s = demo_engine.new_session()
    s.respond("примите показания")
    r = s.respond("соедините с оператором")
    assert r.decision == "handoff" and r.intent == "operator"


def test_informational_meter_scenario_offers_taking_them_now(demo_engine) -> None:
    s = demo_engine.new_session()
    r = s.respond("как передать показания счетчиков")
    assert r.intent == "meter_readings" and "539-25-25" in r.answer
    assert r.answer.endswith("Про передачу показаний прямо сейчас — нажмите 1.")
    assert s.respond("1").intent == "meter_submit"


def test_entity_slot_expects_its_names_and_operator(demo_engine: DialogEngine) -> None:
    s = demo_engine.new_session()
    r = s.respond("горячая линия по коронавирусу в моем регионе")
    assert r.expect is not None and (r.expect.kind, r.expect.slot) == ("entity", "region")
    phrases = r.expect.phrases or []
    assert {"тверская область", "тверь", "оператор", "[unk]"} <= set(phrases)
    assert r.expect.endpointing == "default"


def test_clarify_expects_a_short_answer(demo_engine: DialogEngine) -> None:
    r = demo_engine.new_session().respond("телефон")
    assert r.decision == "clarify" and r.expect is not None
    assert (r.expect.kind, r.expect.endpointing, r.expect.phrases) == ("clarify", "short", None)


TWO_SLOTS = """\
scenarios:
  - id: delivery
    title: Доставка
    examples: [когда привезут заказ, где мой заказ]
    slots:
      city: {entity: city, prompt: "Из какого вы города?"}
      shop: {entity: shop, prompt: "В каком магазине заказ?"}
      order: {digits: {min_length: 3, max_length: 5}, prompt: "Номер заказа?"}
    answers: ["{city}, {shop}, заказ {order}: привезём завтра."]
entities:
  city:
    values: [{name: Тверь}, {name: Омск}]
  shop:
    values: [{name: Ромашка}, {name: Лютик}]
"""


def test_filled_slots_are_remembered_across_turns(write_kb) -> None:
    engine = DialogEngine.load(write_kb({"kb.yaml": TWO_SLOTS}))
    s = engine.new_session()
    assert s.respond("где мой заказ").answer == "Из какого вы города?"
    r = s.respond("из Твери")
    assert (r.answer, r.slots) == ("В каком магазине заказ?", {"city": "Тверь"})
    r = s.respond("Ромашка")
    assert (r.answer, r.slots) == ("Номер заказа?", {"city": "Тверь", "shop": "Ромашка"})
    r = s.respond("четыреста двенадцать")
    assert r.answer == "Тверь, Ромашка, заказ 412: привезём завтра."


def _errors(write_kb, text: str) -> list[str]:
    kb, issues = load_kb(write_kb({"kb.yaml": text}))
    assert kb is None
    return [f"{i.file}:{i.line}: {i.message} | {i.fix}" for i in issues if i.severity == "error"]


MENU_KB = """\
settings:
  main_menu: {main}
scenarios:
  - id: topics
    title: Темы
    examples: [меню]
    answers: ["Выберите тему."]
    menu:
      1: hours
      {key}: {target}
  - id: hours
    title: Часы
    examples: [когда вы работаете]
    answers: ["Круглосуточно."]
"""


def test_menu_with_unknown_target_or_bad_key_is_rejected(write_kb) -> None:
    errors = _errors(write_kb, MENU_KB.format(main="topics", key=2, target="hour"))
    assert errors == [
        "kb/kb.yaml:10: scenario `topics`: menu key 2 opens unknown scenario `hour` "
        "| use the `id` of an existing scenario. Did you mean `hours`?"
    ]
    errors = _errors(write_kb, MENU_KB.format(main="topics", key=0, target="hours"))
    assert len(errors) == 1 and errors[0].startswith(
        "kb/kb.yaml:10: scenario `topics`: menu key `0`"
    )
    assert "0, * and # are kept" in errors[0]
    errors = _errors(write_kb, MENU_KB.format(main="topics", key='"12"', target="hours"))
    assert len(errors) == 1 and "menu key `12` is not a key 1..9" in errors[0]


def test_main_menu_must_name_a_scenario_with_a_menu(write_kb) -> None:
    errors = _errors(write_kb, MENU_KB.format(main="hours", key=2, target="hours"))
    assert errors == [
        "kb/kb.yaml:2: `main_menu: hours` is not a scenario with a `menu:` "
        "| name the scenario whose answer reads the main key menu"
    ]


SLOT_KB = """\
scenarios:
  - id: code
    title: Код
    examples: [мой код]
    slots:
      code: {slot}
    answers: ["Код {{code}}."]
entities:
  city:
    values: [{{name: Тверь}}]
"""


@pytest.mark.parametrize(
    ("slot", "message"),
    [
        (
            '{entity: city, digits: {max_length: 4}, prompt: "Код?"}',
            "slot `code` needs exactly one of `entity` and `digits`",
        ),
        ('{prompt: "Код?"}', "slot `code` needs exactly one of `entity` and `digits`"),
        (
            '{digits: {min_length: 6, max_length: 4}, prompt: "Код?"}',
            "slot `code`: min_length 6 is more than max_length 4",
        ),
    ],
)
def test_slot_needs_exactly_one_source(write_kb, slot: str, message: str) -> None:
    errors = _errors(write_kb, SLOT_KB.format(slot=slot))
    assert len(errors) == 1 and errors[0].startswith(f"kb/kb.yaml:6: scenario `code`: {message}")


def test_check_command_shows_menu_errors(write_kb) -> None:
    kb_dir = write_kb({"kb.yaml": MENU_KB.format(main="topics", key=3, target="x")})
    result = CliRunner().invoke(kb_app, ["check", str(kb_dir)])
    assert result.exit_code == 1
    assert "kb/kb.yaml:10: error: scenario `topics`: menu key 3 opens unknown scenario `x`" in (
        result.output
    )
