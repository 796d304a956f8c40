"""`voicebot models fetch|status` as an admin uses them: exit codes, reasons, the status table."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from services.common.models_cli import models_app


@pytest.fixture
def run(store, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VOICEBOT_MODELS_DIR", str(store.models))
    monkeypatch.setenv("VOICEBOT_MODELS_SRC", str(store.src))
    monkeypatch.setenv("COLUMNS", "250")  # rich folds table cells at 80 columns otherwise
    manifest = store.manifest()

    def invoke(*args: str):
        return CliRunner().invoke(models_app, [*args, "--manifest", str(manifest)])

    return invoke


def test_fetch_installs_and_exits_zero(store, run) -> None:
    store.zip()

    result = run("fetch", "test-vosk")

    assert result.exit_code == 0, result.output
    assert "✓ test-vosk: installed from" in result.stdout
    assert (store.models / store.vosk_root / "am" / "final.mdl").is_file()


def test_fetch_failure_exits_non_zero_with_reason_and_hint(store, run) -> None:
    result = run("fetch")  # both default models; the source folder is empty, the URLs closed

    assert result.exit_code == 1
    assert "✗ test-vosk:" in result.stderr
    assert "✗ test-silero:" in result.stderr
    assert "cannot connect to 127.0.0.1:" in result.stderr
    assert "VOICEBOT_MODELS_SRC=/that/folder voicebot models fetch test-vosk" in result.stderr


def test_fetch_unknown_model_exits_2(run) -> None:
    result = run("fetch", "nope")

    assert result.exit_code == 2
    assert "unknown model nope" in result.stderr


def test_status_table_shows_state_licence_and_path(store, run) -> None:
    store.zip()
    run("fetch", "test-vosk")

    result = run("status")

    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if "│" in line}
    assert "verified" in rows["test-vosk"]
    assert "Apache-2.0" in rows["test-vosk"]
    assert store.vosk_root in rows["test-vosk"]
    assert f"in {store.models}" in result.stdout
    assert "missing" in rows["test-silero"]
    assert "CC-BY-NC-SA-4.0" in rows["test-silero"]


def test_status_json_and_verify_find_a_damaged_install(store, run) -> None:
    store.zip()
    run("fetch", "test-vosk")
    (store.models / store.vosk_root / "README").write_bytes(b"damaged after install\n")

    plain = {
        json.loads(line)["name"]: json.loads(line)
        for line in run("status", "--json").stdout.splitlines()
    }
    checked = {
        json.loads(line)["name"]: json.loads(line)
        for line in run("status", "--verify", "--json").stdout.splitlines()
    }

    assert plain["test-vosk"]["state"] == "verified"  # the marker alone
    assert checked["test-vosk"]["state"] == "corrupt"
    assert "README has" in checked["test-vosk"]["detail"]
    assert checked["test-silero"]["state"] == "missing"


def test_status_verify_checks_silero_against_the_digest_recorded_at_install(
    store, run, silero_package
) -> None:
    (store.src / "test_tts.pt").write_bytes(silero_package.read_bytes())
    assert run("fetch", "test-silero").exit_code == 0
    installed = store.models / "silero-test" / "test_tts.pt"

    def state() -> dict:
        lines = run("status", "--verify", "--json").stdout.splitlines()
        return {json.loads(line)["name"]: json.loads(line) for line in lines}["test-silero"]

    assert state()["state"] == "verified"
    data = bytearray(installed.read_bytes())
    data[100] ^= 0xFF  # one flipped byte: still a readable zip, no longer the installed file
    installed.write_bytes(bytes(data))
    assert state()["state"] == "corrupt"
