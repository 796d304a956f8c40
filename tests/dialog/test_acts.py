"""Conversation acts on a KB that defines none, the KB's overrides, act words beside a question."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from services.dialog.acts import builtin
from services.dialog.base import Act, Reason
from services.dialog.engine import DialogEngine
from services.dialog.loader import load_kb

# Three scenarios of a bank card line and nothing about conversation.
PLAIN = """\
settings:
  handoff_queue: bank_operators
scenarios:
  - id: line_hours
    title: Режим работы линии
    examples: [когда работает линия, во сколько работает горячая линия, вы работаете ночью]
    answers: ["Линия работает круглосуточно."]
  - id: atm_card
    title: Банкомат не вернул карту
    examples: [банкомат забрал карту, банкомат не отдал карту, карту зажевал банкомат]
    answers: ["Позвоните по номеру на банкомате, карту вернут в отделении."]
  - id: pin
    title: ПИН-код
    examples: [забыл пин код, как сменить пин код, пин код заблокирован]
    answers: ["ПИН-код можно сменить в приложении банка."]
    followup: "Подсказать что-то ещё?"
"""


@pytest.fixture
def plain(write_kb: Callable[..., Path]) -> DialogEngine:
    return DialogEngine.load(write_kb({"kb.yaml": PLAIN}))


@pytest.mark.parametrize(
    "text",
    [
        "пока",
        "до свидания",
        "понятно спасибо пока",
        "всё спасибо",
        "ну всё, до свидания",
        "спасибо большое за помощь всего доброго",
        "больше вопросов нет",
    ],
)
def test_goodbye_on_a_kb_without_one_ends_the_call(plain: DialogEngine, text: str) -> None:
    r = plain.new_session().respond(text)
    assert (r.act, r.decision, r.end_call) == (Act.BYE, "answer", True), r
    assert r.answer in builtin().acts[Act.BYE].answers


def test_goodbye_is_never_handed_off_even_with_a_question_open(plain: DialogEngine) -> None:
    s = plain.new_session()
    assert s.respond("банкомат").decision in ("clarify", "answer")
    for opened in ("как сменить пин код", "когда работает линия"):
        s.respond(opened)
        r = s.respond("понятно спасибо пока")
        assert r.decision != "handoff" and r.end_call


@pytest.mark.parametrize(
    "text",
    [
        "оператора",
        "человека",
        "хочу поговорить со специалистом",
        "соедините меня с живым человеком",
        "позовите оператора",
        "не хочу говорить с роботом",
    ],
)
def test_operator_goes_to_the_kbs_default_queue(plain: DialogEngine, text: str) -> None:
    r = plain.new_session().respond(text)
    assert (r.act, r.decision, r.reason) == (Act.OPERATOR, "handoff", Reason.OPERATOR)
    assert r.handoff_queue == "bank_operators"


def test_thanks_alone_offers_more_help_and_no_then_ends_politely(plain: DialogEngine) -> None:
    s = plain.new_session()
    r = s.respond("спасибо")
    assert (r.act, r.answer, r.end_call) == (
        Act.THANKS,
        "Пожалуйста! Могу ещё чем-нибудь помочь?",
        False,
    )
    r = s.respond("нет")
    assert (r.act, r.decision, r.end_call) == (Act.NO, "answer", True)


def test_yes_after_an_offer_asks_for_the_question(plain: DialogEngine) -> None:
    s = plain.new_session()
    assert s.respond("как сменить пин код").answer.endswith("Подсказать что-то ещё?")
    r = s.respond("да")
    assert (r.act, r.answer) == (Act.YES, builtin().texts.yes_after_offer)
    assert s.respond("банкомат забрал карту").intent == "atm_card"


def test_yes_and_no_with_nothing_open_get_a_sensible_reply(plain: DialogEngine) -> None:
    for text in ("да", "нет", "ага", "нет не надо"):
        r = plain.new_session().respond(text)
        assert r.act in (Act.YES, Act.NO) and r.decision == "answer" and not r.end_call, r
        assert r.reason is None


def test_repeat_and_hello(plain: DialogEngine) -> None:
    s = plain.new_session()
    s.greeting()
    first = s.respond("банкомат забрал карту")
    again = s.respond("что? повторите пожалуйста")
    assert (again.act, again.answer) == (Act.REPEAT, first.answer)
    r = s.respond("алло вы меня слышите")
    assert (r.act, r.answer) == (Act.HELLO, "Да, я вас слышу. Задайте ваш вопрос.")


def test_hello_while_a_question_is_open_says_it_again(plain: DialogEngine) -> None:
    s = plain.new_session()
    offered = s.respond("забыл пин код")
    r = s.respond("алло алло")
    assert r.answer == f"Да, я вас слышу. {offered.answer}"
    assert s.respond("нет спасибо").end_call  # the offer is still open


@pytest.mark.parametrize(
    ("text", "question", "intent"),
    [
        ("спасибо а когда работает линия", "а когда работает линия", "line_hours"),
        (
            "да я хотел спросить про пин код забыл его",
            "я хотел спросить про пин код забыл его",
            "pin",
        ),
        ("оператор банкомата забрал карту", "банкомата забрал карту", "atm_card"),
        ("алло здравствуйте у меня банкомат забрал карту", "банкомат забрал карту", "atm_card"),
        ("нет подождите как сменить пин код", "как сменить пин код", "pin"),
    ],
)
def test_act_words_beside_a_question_leave_the_question(
    plain: DialogEngine, text: str, question: str, intent: str
) -> None:
    """Not the act, and the matcher decides as on the question alone (however sure it is)."""
    r = plain.new_session().respond(text)
    bare = plain.new_session().respond(question)
    assert r.act is None and r.alternatives[0].intent == intent, r
    assert (r.decision, r.intent) == (bare.decision, bare.intent), (r, bare)


def test_a_kb_overrides_and_extends_acts(write_kb: Callable[..., Path]) -> None:
    kb = write_kb(
        {
            "kb.yaml": PLAIN,
            "acts.yaml": """\
            scenarios:
              - id: farewell
                title: Прощание
                act: bye
                examples: [отбой]
                answers: ["Спасибо, что позвонили в наш банк!"]
              - id: people
                title: Оператор
                act: operator
                handoff: {queue: vip}
              - id: sure
                title: Да
                act: yes
            """,
        }
    )
    engine = DialogEngine.load(kb)
    r = engine.new_session().respond("отбой")  # an editor's extra phrase
    assert (r.act, r.intent, r.answer, r.end_call) == (
        Act.BYE,
        "farewell",
        "Спасибо, что позвонили в наш банк!",
        True,
    )
    assert engine.new_session().respond("до свидания").answer == r.answer
    r = engine.new_session().respond("оператора")
    assert (r.intent, r.handoff_queue, r.answer) == (
        "people",
        "vip",
        builtin().acts[Act.OPERATOR].answers[0],
    )
    assert engine.new_session().respond("да").act is Act.YES  # `act: yes` unquoted


def test_the_demo_kbs_own_act_scenarios_are_its_overrides(demo_engine: DialogEngine) -> None:
    acts = demo_engine.snapshot.kb.acts
    assert acts.linked == {"goodbye": Act.BYE, "repeat": Act.REPEAT, "operator": Act.OPERATOR}
    r = demo_engine.new_session().respond("понятно спасибо пока")
    assert (r.intent, r.end_call) == ("goodbye", True)
    r = demo_engine.new_session().respond("хочу поговорить со специалистом")
    assert (r.intent, r.decision, r.reason) == ("operator", "handoff", Reason.OPERATOR)


def test_scenarios_whose_examples_are_an_act_are_linked_to_it(write_kb) -> None:
    kb = write_kb(
        {
            "kb.yaml": PLAIN
            + """\
  - id: bye_bye
    title: Прощание
    examples: [до свидания, всего доброго, спасибо пока]
    answers: ["До новых встреч!"]
"""
        }
    )
    r = DialogEngine.load(kb).new_session().respond("пока")
    assert (r.intent, r.answer, r.end_call) == ("bye_bye", "До новых встреч!", True)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("act: bye\n    handoff: {queue: x}", "a goodbye is never transferred"),
        ("act: repeat\n    action: end_call", "contradict"),
        ("act: hello\n    handoff: {queue: x}", "cannot hand the call off"),
    ],
)
def test_act_scenarios_are_checked(write_kb, extra: str, message: str) -> None:
    kb = write_kb(
        {
            "kb.yaml": PLAIN
            + f"""\
  - id: special
    title: Особый
    {extra}
"""
        }
    )
    loaded, issues = load_kb(kb)
    assert loaded is None
    assert any(message in i.message and i.line for i in issues), issues


def test_one_scenario_per_act(write_kb) -> None:
    kb = write_kb(
        {
            "kb.yaml": PLAIN
            + """\
  - id: bye1
    title: Прощание
    act: bye
  - id: bye2
    title: Прощание ещё
    act: bye
"""
        }
    )
    loaded, issues = load_kb(kb)
    assert loaded is None and any("already scenario `bye1`" in i.message for i in issues)


@pytest.mark.parametrize(
    ("text", "act"),
    [("спосибо", Act.THANKS), ("повтарите пажалуйста", Act.REPEAT), ("опиратора", Act.OPERATOR)],
)
def test_misheard_act_words_are_compared_by_sound(plain: DialogEngine, text: str, act: Act) -> None:
    assert plain.new_session().respond(text).act is act


def test_real_words_that_sound_near_an_act_word_stay_words(plain: DialogEngine) -> None:
    assert plain.new_session().respond("у меня вопрос по работе").act is None  # not «робот»


def test_a_person_named_beside_other_words_is_asked_for_only_with_a_request(
    plain: DialogEngine,
) -> None:
    r = plain.new_session().respond("позовите сотрудника банка")
    assert (r.act, r.reason) == (Act.OPERATOR, Reason.OPERATOR)
    for text in ("сотрудник банка сказал что лимит уменьшат", "хочу помогать людям"):
        assert plain.new_session().respond(text).act is None, text


def test_yes_to_a_clarify_question_asks_again_once(demo_engine: DialogEngine) -> None:
    s = demo_engine.new_session()
    asked = s.respond("телефон")
    assert asked.decision == "clarify"
    again = s.respond("да")
    assert (again.decision, again.act) == ("clarify", Act.YES)
    assert again.answer.startswith("Уточните, пожалуйста: ")
    r = s.respond("ага")
    assert (r.decision, r.reason) == ("handoff", Reason.STILL_AMBIGUOUS)


def test_no_to_a_clarify_question_is_a_refusal(demo_engine: DialogEngine) -> None:
    s = demo_engine.new_session()
    assert s.respond("телефон").decision == "clarify"
    r = s.respond("нет")
    assert (r.decision, r.reason) == ("handoff", Reason.CLARIFY_REFUSED)


def test_goodbye_while_a_slot_is_asked_ends_the_call(demo_engine: DialogEngine) -> None:
    s = demo_engine.new_session()
    assert s.respond("горячая линия по коронавирусу в моем регионе").answer == "В каком регионе?"
    r = s.respond("ой ладно не надо до свидания")
    assert (r.decision, r.end_call, r.act) == ("answer", True, Act.BYE)


def test_repeat_keeps_the_slot_question_open(demo_engine: DialogEngine) -> None:
    s = demo_engine.new_session()
    asked = s.respond("горячая линия по коронавирусу в моем регионе")
    assert s.respond("что? повторите").answer == asked.answer
    assert s.respond("Тверская область").slots == {"region": "Тверская область"}


BANK_KB = Path(__file__).resolve().parents[2] / "bench" / "eval" / "kb_bank"


@pytest.fixture(scope="module")
def bank() -> DialogEngine:
    return DialogEngine.load(BANK_KB)


@pytest.mark.parametrize(
    ("text", "act"),
    [
        ("ну всё спасибо до свидания", Act.BYE),
        ("спасибо большое за консультацию", Act.THANKS),
        ("позовите живого оператора", Act.OPERATOR),
        ("алло алло меня слышно", Act.HELLO),
        ("повторите ещё раз", Act.REPEAT),
        ("угу", Act.YES),
        ("нет не нужно", Act.NO),
    ],
)
def test_acts_on_the_bank_kb_which_writes_none(bank: DialogEngine, text: str, act: Act) -> None:
    assert bank.snapshot.kb.acts.linked == {}
    s = bank.new_session()
    s.greeting()
    r = s.respond(text)
    assert r.act is act and r.reason in (None, Reason.OPERATOR), r
    assert (r.decision == "handoff") == (act is Act.OPERATOR)
    assert r.end_call == (act is Act.BYE)


def test_after_a_person_only_a_verb_makes_a_request(plain: DialogEngine) -> None:
    assert plain.snapshot.kb.acts.recognize("оператора позовите").asked == {Act.OPERATOR}
    assert not plain.snapshot.kb.acts.recognize("деньги ушли другому человеку можно вернуть").asked
