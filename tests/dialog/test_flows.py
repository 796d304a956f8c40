"""Whole dialogues through a session of the demo KB: context, clarify, slots, handoff, goodbye."""

from __future__ import annotations

from services.dialog.base import Reason
from services.dialog.engine import DialogEngine


def test_greeting_then_answer_with_calibrated_score(demo_engine: DialogEngine) -> None:
    s = demo_engine.new_session()
    assert "Здравствуйте" in s.greeting()
    r = s.respond("алло девушка скажите пожалуйста когда работает горячая линия")
    assert (r.decision, r.intent) == ("answer", "line_hours")
    # the score is the KB model's probability, answered at the threshold fitted on the KB
    assert demo_engine.snapshot.matcher.thresholds.answer <= r.score <= 1
    assert "круглосуточно" in r.answer.lower() or "круглые сутки" in r.answer
    assert r.alternatives[0].intent == "line_hours"


def test_repeat_says_the_last_answer_again(demo_engine: DialogEngine) -> None:
    s = demo_engine.new_session()
    assert s.respond("повторите").answer == demo_engine.snapshot.kb.settings.nothing_to_repeat
    first = s.respond("как передать показания счетчиков воды")
    again = s.respond("повторите пожалуйста")
    assert again.intent == "repeat" and again.answer == first.answer


def test_weekend_follow_up_stays_in_the_hours_topic(demo_engine: DialogEngine) -> None:
    s = demo_engine.new_session()
    s.respond("во сколько вы работаете")
    r = s.respond("а в выходные?")
    assert (r.decision, r.intent) == ("answer", "line_hours")
    cold = demo_engine.new_session().respond("а в выходные?")
    assert cold.decision != "answer" or cold.intent != "line_hours" or cold.score < r.score


def test_weekend_follow_up_after_psych_support(demo_engine: DialogEngine) -> None:
    s = demo_engine.new_session()
    assert s.respond("нужна помощь психолога").intent == "psych_support"
    r = s.respond("а в выходные")
    assert (r.decision, r.intent) == ("answer", "psych_support")
    assert "ежедневно" in r.answer


def test_clarify_then_the_caller_picks_by_words(demo_engine: DialogEngine) -> None:
    s = demo_engine.new_session()
    r = s.respond("горячая линия")
    assert r.decision == "clarify"
    assert r.answer.startswith("Вы имеете в виду ") and " или " in r.answer
    first, second = r.alternatives[0].intent, r.alternatives[1].intent
    topic = demo_engine.snapshot.scenario(second).display_topic
    picked = s.respond(topic)
    assert (picked.decision, picked.intent) == ("answer", second), (first, second, picked)


def test_clarify_then_the_caller_says_the_first(demo_engine: DialogEngine) -> None:
    s = demo_engine.new_session()
    r = s.respond("телефон")
    assert r.decision == "clarify"
    picked = s.respond("первое")
    assert (picked.decision, picked.intent) == ("answer", r.alternatives[0].intent)


def test_clarify_refused_goes_to_a_person(demo_engine: DialogEngine) -> None:
    s = demo_engine.new_session()
    assert s.respond("телефон").decision == "clarify"
    r = s.respond("нет ни то ни другое")
    assert r.decision == "handoff" and r.handoff_queue == "operators"


def test_slot_is_asked_for_and_taken_from_the_next_utterance(demo_engine: DialogEngine) -> None:
    s = demo_engine.new_session()
    r = s.respond("горячая линия по коронавирусу в моем регионе")
    assert (r.decision, r.intent, r.answer) == ("clarify", "covid_region", "В каком регионе?")
    r = s.respond("в Тверской области")
    assert (r.decision, r.intent, r.slots) == (
        "answer",
        "covid_region",
        {"region": "Тверская область"},
    )
    assert "8-800-333-93-72" in r.answer


def test_region_in_the_question_answers_at_once(demo_engine: DialogEngine) -> None:
    r = demo_engine.new_session().respond("телефон по ковиду из Тверской области")
    assert (r.decision, r.intent, r.slots["region"]) == (
        "answer",
        "covid_region",
        "Тверская область",
    )


def test_federal_only_region_gets_the_federal_numbers(demo_engine: DialogEngine) -> None:
    r = demo_engine.new_session().respond("номер по коронавирусу в Адыгее")
    assert r.slots == {"region": "Республика Адыгея"}
    assert "только федеральные номера" in r.answer and "8-800-2000-112" in r.answer


def test_slot_not_understood_twice_hands_off(demo_engine: DialogEngine) -> None:
    s = demo_engine.new_session()
    assert s.respond("региональная линия по ковиду").answer == "В каком регионе?"
    retry = s.respond("ну это самое")
    assert retry.decision == "clarify" and "В каком регионе?" in retry.answer
    r = s.respond("ээ не знаю")
    assert r.decision == "handoff" and r.reason == "slot_not_understood"


def test_operator_at_any_time_hands_off(demo_engine: DialogEngine) -> None:
    s = demo_engine.new_session()
    assert s.respond("региональная линия по ковиду").answer == "В каком регионе?"
    r = s.respond("соедините с оператором")
    assert (r.decision, r.intent, r.handoff_queue) == ("handoff", "operator", "operators")


def test_complaint_goes_to_the_complaints_queue(demo_engine: DialogEngine) -> None:
    r = demo_engine.new_session().respond("хочу оставить жалобу на управляющую компанию")
    assert (r.decision, r.intent, r.handoff_queue) == ("handoff", "complaint", "complaints")


def test_goodbye_ends_the_call(demo_engine: DialogEngine) -> None:
    r = demo_engine.new_session().respond("спасибо, до свидания")
    assert (r.intent, r.end_call) == ("goodbye", True)


def test_out_of_scope_is_handed_off_not_answered(demo_engine: DialogEngine) -> None:
    for text in ("какая завтра погода", "как приготовить борщ", "курс доллара на сегодня"):
        r = demo_engine.new_session().respond(text)
        assert r.decision != "answer", (text, r)


def test_answer_variants_rotate(demo_engine: DialogEngine) -> None:
    s = demo_engine.new_session()
    first = s.respond("сколько стоит звонок").answer
    second = s.respond("это бесплатный звонок?").answer
    assert first != second


def test_noise_and_out_of_scope_ask_to_rephrase_each_time(demo_engine: DialogEngine) -> None:
    """The session never hands off on its own for a misunderstood turn: it says so, typed, and
    the gateway counts them in a row (CallPolicy.max_nomatch; tests/gateway/test_e2e_nomatch)."""
    s = demo_engine.new_session()
    for text in ("э-э ну", "какая завтра погода", "ммм"):
        r = s.respond(text)
        assert (r.decision, r.intent, r.reason) == ("clarify", None, Reason.NOT_UNDERSTOOD)
        assert r.answer == demo_engine.snapshot.kb.settings.not_understood


def test_an_open_question_stays_open_after_a_misunderstood_turn(demo_engine) -> None:
    s = demo_engine.new_session()
    asked = s.respond("телефон")
    assert asked.decision == "clarify"
    assert s.respond("какая завтра погода").reason is Reason.NOT_UNDERSTOOD
    picked = s.respond("первое")
    assert (picked.decision, picked.intent) == ("answer", asked.alternatives[0].intent)


def test_handoff_carries_queue_and_skill(write_kb) -> None:
    kb_dir = write_kb(
        {
            "a.yaml": """\
        scenarios:
          - id: covid_doctor
            title: Врач по ковиду
            examples: [хочу поговорить с врачом про ковид]
            answers: ["Соединяю с дежурным врачом."]
            handoff: {queue: medics, skill: covid}
        """
        }
    )
    r = DialogEngine.load(kb_dir).new_session().respond("хочу поговорить с врачом про ковид")
    assert (r.decision, r.handoff_queue, r.handoff_skill) == ("handoff", "medics", "covid")
    assert (r.reason, r.intent) == (
        Reason.SCENARIO,
        "covid_doctor",
    ) and r.answer == "Соединяю с дежурным врачом."
