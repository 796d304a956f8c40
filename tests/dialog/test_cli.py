"""`voicebot kb …` as an editor uses it: ask, check, test, schema."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from services.dialog.cli import kb_app

from .conftest import DEMO_KB
from .test_lint import PLANTED

runner = CliRunner()
REPLY_KEYS = {"text", "decision", "intent", "score", "answer", "slots", "alternatives"}


def test_ask_json_contract_one_object_per_question() -> None:
    result = runner.invoke(
        kb_app,
        ["ask", "--kb", str(DEMO_KB), "--json", "когда работает линия", "какая завтра погода"],
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert len(rows) == 2
    for row in rows:
        assert row.keys() >= REPLY_KEYS
        assert row["decision"] in ("answer", "clarify", "handoff")
        assert 0 <= row["score"] <= 1
        assert all({"intent", "score"} <= alt.keys() for alt in row["alternatives"])
    assert (rows[0]["decision"], rows[0]["intent"]) == ("answer", "line_hours")
    assert rows[1]["decision"] != "answer"  # not understood: asked to rephrase


def test_ask_reads_stdin_through_the_real_command() -> None:
    questions = "телефон по ковиду в Тверской области\nсколько стоит звонок\n"
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", "kb", "ask", "--json", "--kb", str(DEMO_KB)],
        input=questions,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["intent"] for r in rows] == ["covid_region", "line_cost"]
    assert rows[0]["slots"] == {"region": "Тверская область"}


def test_ask_dialog_keeps_context() -> None:
    result = runner.invoke(
        kb_app,
        ["ask", "--kb", str(DEMO_KB), "--dialog", "--json", "коронавирус в моем регионе", "Тверь"],
    )
    rows = [json.loads(line) for line in result.output.splitlines()]
    assert rows[0]["answer"] == "В каком регионе?"
    assert rows[1]["slots"] == {"region": "Тверская область"}


def test_ask_human_output_shows_alternatives() -> None:
    result = runner.invoke(kb_app, ["ask", "--kb", str(DEMO_KB), "холодные батареи"])
    assert "answer · heating" in result.output and "alternatives: heating" in result.output


def test_check_demo_kb_has_no_errors() -> None:
    result = runner.invoke(kb_app, ["check", str(DEMO_KB), "--no-lint"])
    assert result.exit_code == 0, result.output
    assert "0 errors" in result.output


def test_check_reports_file_line_and_fix_and_fails(write_kb) -> None:
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
    result = runner.invoke(kb_app, ["check", str(kb_dir)])
    assert result.exit_code == 1
    assert "ERRORS (1):" in result.output
    assert "kb/a.yaml:4: error: unknown key `exmaples`" in result.output
    assert "fix: did you mean `examples`?" in result.output


def test_check_lists_conflicts_as_warnings(write_kb) -> None:
    kb_dir = write_kb({"a.yaml": PLANTED})
    result = runner.invoke(kb_app, ["check", str(kb_dir)])
    assert result.exit_code == 0, result.output
    assert "WARNINGS" in result.output and "a.yaml:15" in result.output
    assert runner.invoke(kb_app, ["check", str(kb_dir), "--strict"]).exit_code == 1


def test_kb_test_command(write_kb) -> None:
    demo = runner.invoke(kb_app, ["test", str(DEMO_KB)])
    assert "  line_hours: 2/2 (100%)" in demo.output  # per-scenario accuracy
    result = runner.invoke(kb_app, ["test", str(write_kb({"a.yaml": PLANTED}))])
    assert result.exit_code == 1
    assert "FAIL" in result.output and "«холодно дома батареи» should be `housing`" in result.output


def test_schema_export(tmp_path: Path) -> None:
    out = tmp_path / "kb.schema.json"
    assert runner.invoke(kb_app, ["schema", "-o", str(out)]).exit_code == 0
    schema = json.loads(out.read_text(encoding="utf-8"))
    assert "scenarios" in schema["properties"]
