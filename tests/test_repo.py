"""Repository-level promises: the two commands, the README, no weights in git, deploy files."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import typer
import yaml

from services.common.config import ROOT, Settings

README = (ROOT / "README.md").read_text(encoding="utf-8")


def section(markdown: str, title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", markdown, re.M | re.S)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def code_lines(markdown: str) -> list[str]:
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", markdown, re.M | re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


# --- the two commands -----------------------------------------------------------------------


def test_ci_runs_make_test() -> None:
    ci = ROOT / ".ci" / "run"
    lines = [
        ln.strip() for ln in ci.read_text().splitlines() if ln.strip() and not ln.startswith("#")
    ]
    assert "set -euo pipefail" in lines
    assert lines[-1] == "make test"


def test_readme_quick_start_is_exactly_make_run_then_make_test() -> None:
    assert code_lines(section(README, "Quick start")) == ["make run", "make test"]


def _fake_bin(tmp_path: Path, pytest_rc: int) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool, rc in (("ruff", 0), ("mypy", 0), ("pytest", pytest_rc)):
        (bin_dir / tool).write_text(f"#!/bin/sh\nexit {rc}\n")
        (bin_dir / tool).chmod(0o755)
    return bin_dir


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize(("pytest_rc", "make_fails"), [(0, False), (1, True), (5, True)])
def test_make_suite_fails_when_pytest_collects_nothing(tmp_path, pytest_rc, make_fails) -> None:
    """The suite recipe of `make test`, with stand-in tools: pytest's exit 5 must fail it."""
    result = subprocess.run(
        ["make", "-s", "-C", str(ROOT), "suite", f"BIN={_fake_bin(tmp_path, pytest_rc)}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode != 0) == make_fails, result.stderr
    if pytest_rc == 5:
        assert "pytest collected no tests" in result.stderr


def test_make_run_installs_no_test_tools() -> None:
    run_lock = {_pin_name(p) for p in _pins("requirements.lock")}
    test_lock = {_pin_name(p) for p in _pins("requirements-test.lock")}
    assert not run_lock & test_lock
    assert {"pytest", "ruff", "playwright", "hypothesis", "mypy"} <= test_lock
    assert "torch==2.13.0" in _pins("requirements.lock")
    makefile = (ROOT / "Makefile").read_text()
    stamp_recipe = re.search(r"^\$\(STAMP\):.*?(?=^\S)", makefile, re.M | re.S)
    assert stamp_recipe and "requirements-test.lock" not in stamp_recipe.group(0)


def test_every_declared_dependency_is_pinned() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    run_lock = {_pin_name(p) for p in _pins("requirements.lock")}
    test_lock = {_pin_name(p) for p in _pins("requirements-test.lock")}
    for dep in project["dependencies"]:
        assert _pin_name(re.split(r"[<>=\[;]", dep)[0]) in run_lock, dep
    for dep in project["optional-dependencies"]["test"]:
        assert _pin_name(re.split(r"[<>=\[;]", dep)[0]) in test_lock, dep


def _pins(name: str) -> list[str]:
    lines = (ROOT / name).read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def _pin_name(pin: str) -> str:
    return re.sub(r"[-_.]+", "-", pin.split("==")[0]).lower()


# --- no weights in git ----------------------------------------------------------------------

WEIGHT_SUFFIXES = {".pt", ".pth", ".zip", ".mdl", ".fst", ".onnx", ".bin", ".ie", ".dubm", ".jit"}


def test_no_model_weights_are_committed() -> None:
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    files = (
        subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    files = [f for f in files if f]
    assert not [f for f in files if Path(f).suffix.lower() in WEIGHT_SUFFIXES]
    in_models = {f for f in files if f.startswith("models/")}
    allowed = {"models/manifest.yaml", "models/README.md", "models/fetch", "models/.gitignore"}
    assert all(f in allowed or f.endswith(".sha256") for f in in_models), in_models
    big = [f for f in files if (ROOT / f).is_file() and (ROOT / f).stat().st_size > 5 << 20]
    assert not big, f"files over 5 MiB committed: {big}"


# --- README ---------------------------------------------------------------------------------


def test_readme_documents_every_setting() -> None:
    from services.gateway.audiosocket.server import AudioSocketSettings

    documented = set(re.findall(r"`(VOICEBOT_[A-Z_]+)`", section(README, "Configuration")))
    expected = {f"VOICEBOT_{name.upper()}" for name in Settings.model_fields}
    expected |= {
        f"VOICEBOT_AUDIOSOCKET_{name.upper()}" for name in AudioSocketSettings.model_fields
    }
    assert expected <= documented, f"undocumented: {sorted(expected - documented)}"


def test_readme_links_resolve() -> None:
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README):
        if "://" not in target:
            assert (ROOT / target).exists(), f"README links to missing {target}"


def test_readme_states_the_silero_licence() -> None:
    models = section(README, "Models and licences")
    assert "CC BY-NC-SA 4.0" in models and "non-commercial" in models
    assert "v5_cis_base" in models and "MIT" in models
    assert "VOICEBOT_MODELS_SRC" in models


# --- docker-compose -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def parse_cli(argv: list[str]) -> tuple[str, dict]:
    """Parse a `voicebot …` command line with the real CLI, without running it."""
    from services.cli import app

    assert argv[0] == "voicebot"
    command = typer.main.get_command(app)  # typer's own click: duck-typed, not click.Group
    path, args = ["voicebot"], argv[1:]
    while args and args[0] in getattr(command, "commands", {}):
        path.append(args[0])
        command, args = command.commands[args[0]], args[1:]
    context = command.make_context(" ".join(path), list(args))
    return " ".join(path), context.params


def test_compose_services_run_real_commands_on_matching_ports(compose) -> None:
    services = compose["services"]
    assert {"bot", "asr", "tts"} <= set(services)
    ports = {}
    for name, subcommand in (
        ("bot", "voicebot serve"),
        ("asr", "voicebot serve asr"),
        ("tts", "voicebot serve tts"),
    ):
        path, params = parse_cli(services[name]["command"])
        assert path == subcommand
        assert params["host"] == "0.0.0.0", f"{name} must listen beyond the container"
        ports[name] = params["port"]
    # The services' own default ports, so the compose file and the docs agree.
    assert ports["asr"] == parse_cli(["voicebot", "serve", "asr"])[1]["port"] == 2700
    assert ports["tts"] == parse_cli(["voicebot", "serve", "tts"])[1]["port"]
    assert str(ports["asr"]) in services["asr"]["expose"]
    assert str(ports["tts"]) in services["tts"]["expose"]
    env = services["bot"]["environment"]
    assert env["VOICEBOT_ASR_URL"] == f"ws://asr:{ports['asr']}"
    assert env["VOICEBOT_TTS_URL"] == f"http://tts:{ports['tts']}"
    published = {p.rsplit(":", 1)[-1] for p in services["bot"]["ports"]}
    assert str(ports["bot"]) in published
    # AudioSocket for Asterisk: listening beyond the container, on its default port.
    from services.gateway.audiosocket.server import AudioSocketSettings

    assert env["VOICEBOT_AUDIOSOCKET_HOST"] == "0.0.0.0"
    assert env["VOICEBOT_AUDIOSOCKET_PORT"] == str(AudioSocketSettings().port) == "9092"
    assert "9092" in published
    assert all(p.startswith("127.0.0.1:") for p in services["bot"]["ports"])


def test_compose_builds_one_image_with_the_models_volume(compose) -> None:
    dockerfile = ROOT / compose["services"]["bot"]["build"]["dockerfile"]
    assert dockerfile == ROOT / "deploy" / "Dockerfile"
    for name in ("bot", "asr", "tts", "models"):
        service = compose["services"][name]
        assert service["build"]["dockerfile"] == "deploy/Dockerfile"
        assert "models:/models" in service["volumes"]
    assert "models" in compose["volumes"]
    # Everything the Dockerfile copies exists and is not filtered out of the build context;
    # the virtualenv and fetched models are.
    ignored = (ROOT / "deploy" / "Dockerfile.dockerignore").read_text().splitlines()
    assert {".venv", "models/*/", ".git"} <= set(ignored)
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert list(ROOT.glob(source)), f"Dockerfile copies missing {source}"
                assert source not in ignored and source.split("/")[0] not in ignored, source


def test_compose_model_step_fetches_with_the_real_cli(compose) -> None:
    script = compose["services"]["models"]["command"][-1]
    assert script.startswith("voicebot models fetch ||")
    assert script.rstrip().endswith("; voicebot models compile-graph --if-possible")
    for command in (["models", "fetch"], ["models", "compile-graph", "--if-possible"]):
        path, _ = parse_cli(["voicebot", *command])
        assert path == f"voicebot {' '.join(command[:2])}"


def test_models_fetch_wrapper_calls_the_venv_cli() -> None:
    wrapper = ROOT / "models" / "fetch"
    assert os.access(wrapper, os.X_OK)
    assert '.venv/bin/voicebot" models fetch "$@"' in wrapper.read_text()
