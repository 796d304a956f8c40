"""`load_kb` / `voicebot kb check` problems: each with its file, line and a plain-language fix."""

from __future__ import annotations

import json

from services.dialog.loader import Issue, load_kb
from services.dialog.schema import KBFile


def only_errors(issues: list[Issue]) -> list[Issue]:
    return [i for i in issues if i.severity == "error"]


def test_json_schema_describes_the_format() -> None:
    schema = KBFile.model_json_schema()
    scenario = schema["$defs"]["Scenario"]
    for key in (
        "id",
        "title",
        "examples",
        "keywords",
        "answers",
        "followup",
        "handoff",
        "slots",
        "tests",
    ):
        assert key in scenario["properties"]
    assert scenario["additionalProperties"] is False
    json.dumps(schema, ensure_ascii=False)


def test_demo_kb_is_valid_and_has_every_required_scenario(demo_engine) -> None:
    kb, issues = load_kb(demo_engine.kb_dir)
    assert kb is not None, [str(i) for i in issues]
    required = {
        "line_hours",
        "line_cost",
        "operator",
        "complaint",
        "goodbye",
        "repeat",
        "city_info",
        "doctor_appointment",
        "heating",
        "housing_services",
        "transport",
        "meter_readings",
        "psych_support",
        "covid_hotline",
        "covid_region",
        "rospotrebnadzor",
        "volunteers",
        "patient_rights",
    }
    assert required <= set(kb.scenarios)
    assert kb.scenarios["complaint"].handoff.queue == "complaints"
    assert kb.scenarios["covid_region"].slots["region"].entity == "region"


def test_unknown_key_says_did_you_mean_with_line(write_kb) -> None:
    kb_dir = write_kb(
        {
            "a.yaml": """\
        scenarios:
          - id: hours
            title: Часы
            exmaples: [когда работаете]
            answers: [Круглосуточно.]
        """
        }
    )
    kb, issues = load_kb(kb_dir)
    assert kb is None
    (issue,) = only_errors(issues)
    assert issue.file.endswith("a.yaml") and issue.line == 4
    assert "unknown key `exmaples`" in issue.message
    assert "did you mean `examples`?" in issue.fix


def test_duplicate_id_points_at_the_second(write_kb) -> None:
    kb_dir = write_kb(
        {
            "a.yaml": """\
                scenarios:
                  - {id: hours, title: Часы, examples: [когда], answers: [Всегда.]}
                """,
            "b.yaml": """\
                scenarios:
                  - {id: x, title: X, examples: [икс], answers: [Икс.]}
                  - {id: y, title: Y, examples: [игрек], answers: [Игрек.]}
                  - {id: z, title: Z, examples: [зет], answers: [Зет.]}
                  - {id: w, title: W, examples: [дубль], answers: [Дубль.]}
                  - {id: hours, title: Часы 2, examples: [во сколько], answers: [Всегда.]}
                """,
        }
    )
    _, issues = load_kb(kb_dir)
    (issue,) = only_errors(issues)
    assert issue.file.endswith("b.yaml") and issue.line == 6
    assert "duplicate scenario id `hours`" in issue.message and "a.yaml:2" in issue.message


def test_empty_answer(write_kb) -> None:
    kb_dir = write_kb(
        {
            "a.yaml": """\
        scenarios:
          - id: hours
            title: Часы
            examples: [когда работаете]
            answers:
              - "   "
          - id: cost
            title: Цена
            examples: [сколько стоит]
        """
        }
    )
    _, issues = load_kb(kb_dir)
    errors = {(i.line, i.message) for i in only_errors(issues)}
    assert (6, "scenario `hours`: answer text is empty") in errors
    assert any(line == 7 and "`cost`: has no answer" in msg for line, msg in errors)


def test_example_in_two_scenarios(write_kb) -> None:
    kb_dir = write_kb(
        {
            "a.yaml": """\
        scenarios:
          - id: hours
            title: Часы
            examples: [когда вы работаете]
            answers: [Всегда.]
          - id: cost
            title: Цена
            examples:
              - сколько стоит
              - Когда вы работаете?
            answers: [Бесплатно.]
        """
        }
    )
    _, issues = load_kb(kb_dir)
    (issue,) = only_errors(issues)
    assert issue.line == 10
    assert "belongs to two scenarios: `hours`" in issue.message and "`cost`" in issue.message


def test_slot_used_in_answer_but_not_defined(write_kb) -> None:
    kb_dir = write_kb(
        {
            "a.yaml": """\
        scenarios:
          - id: covid
            title: Ковид
            examples: [телефон по ковиду]
            answers:
              - "Телефон в регионе {region}: {region.phones}"
        """
        }
    )
    _, issues = load_kb(kb_dir)
    (issue,) = only_errors(issues)
    assert issue.line == 6
    assert "uses {region} but the scenario has no slot `region`" in issue.message
    assert "slots: region:" in issue.fix


def test_slot_with_unknown_entity_and_missing_attr(write_kb) -> None:
    kb_dir = write_kb(
        {
            "entities.yaml": """\
            entities:
              region:
                values:
                  - {name: Тверская область, attrs: {phones: 8-800-333-93-72}}
                  - {name: Республика Адыгея}
            """,
            "a.yaml": """\
            scenarios:
              - id: covid
                title: Ковид
                examples: [телефон по ковиду]
                slots:
                  region: {entity: region, prompt: "В каком регионе?"}
                  city: {entity: regoin, prompt: "В каком городе?"}
                answers: ["{region}: {region.phones}"]
            """,
        }
    )
    _, issues = load_kb(kb_dir)
    messages = [i.message for i in only_errors(issues)]
    assert any("unknown entity list `regoin`" in m for m in messages)
    assert any("values without `phones`: Республика Адыгея" in m for m in messages)


def test_yaml_syntax_error_has_position(write_kb) -> None:
    kb_dir = write_kb({"a.yaml": "scenarios:\n  - id: hours\n    title: [Часы\n    answers: [x]\n"})
    _, issues = load_kb(kb_dir)
    (issue,) = only_errors(issues)
    assert issue.file.endswith("a.yaml")
    assert issue.line is not None and "YAML syntax error, column" in issue.message
    assert "indentation" in issue.fix


def test_duplicate_key_is_an_error_not_silently_dropped(write_kb) -> None:
    kb_dir = write_kb(
        {
            "a.yaml": """\
        scenarios:
          - id: hours
            title: Часы
            examples: [когда]
            answers: [Всегда.]
            answers: [Никогда.]
        """
        }
    )
    _, issues = load_kb(kb_dir)
    (issue,) = only_errors(issues)
    assert issue.line == 6 and "key `answers` appears twice" in issue.message


def test_warnings_are_separate_from_errors(write_kb) -> None:
    kb_dir = write_kb(
        {
            "a.yaml": """\
        scenarios:
          - id: hours
            title: Часы
            examples: [когда вы работаете, когда вы работаете]
            answers: [Всегда.]
        """
        }
    )
    kb, issues = load_kb(kb_dir)
    assert kb is not None
    assert [i.severity for i in issues] == ["warning"]
    assert "listed twice" in issues[0].message


def test_bad_values_name_the_key(write_kb) -> None:
    kb_dir = write_kb(
        {
            "a.yaml": """\
        scenarios:
          - id: Hours
            title: Часы
            examples: [когда]
            keywords: {когда: 3}
            answers: [Всегда.]
        """
        }
    )
    _, issues = load_kb(kb_dir)
    errors = only_errors(issues)
    assert {i.line for i in errors} == {2, 5}
    assert any("scenarios.0.id" in i.message for i in errors)
    assert any("scenarios.0.keywords.когда" in i.message for i in errors)


def test_committed_json_schema_is_current(demo_engine) -> None:
    """Editors' YAML tooling reads knowledge_base/kb.schema.json: it must match the model."""
    committed = json.loads((demo_engine.kb_dir / "kb.schema.json").read_text(encoding="utf-8"))
    assert committed == KBFile.model_json_schema(), (
        "run: voicebot kb schema -o knowledge_base/kb.schema.json"
    )
