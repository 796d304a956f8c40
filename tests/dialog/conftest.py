"""Fixtures for the dialog tests: the shipped demo KB and small KBs written on the fly."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from services.dialog.engine import DialogEngine

DEMO_KB = Path(__file__).resolve().parents[2] / "knowledge_base"

MINI_SETTINGS = """\
settings:
  greeting: "Здравствуйте!"
"""

MINI_SCENARIOS = """\
scenarios:
  - id: line_hours
    title: Режим работы
    topic: режим работы линии
    examples: [когда вы работаете, во сколько работает линия, график работы линии]
    answers: ["Мы работаем круглосуточно."]
    in_context: [а в выходные]
  - id: heating
    title: Отопление
    examples: [холодные батареи, не включили отопление]
    answers: ["Звоните на линию отопления."]
"""


@pytest.fixture(scope="session")
def demo_engine() -> DialogEngine:
    return DialogEngine.load(DEMO_KB)


@pytest.fixture
def write_kb(tmp_path: Path) -> Callable[..., Path]:
    """write_kb({"file.yaml": text, ...}) -> the KB directory (texts are dedented)."""

    def write(files: dict[str, str], directory: Path | None = None) -> Path:
        root = directory or tmp_path / "kb"
        for name, text in files.items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text), encoding="utf-8")
        return root

    return write


@pytest.fixture
def mini_kb(write_kb: Callable[..., Path]) -> Path:
    return write_kb({"settings.yaml": MINI_SETTINGS, "scenarios.yaml": MINI_SCENARIOS})
