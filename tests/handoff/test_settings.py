"""Every VOICEBOT_HANDOFF_* setting is documented in both READMEs; the env prefix works."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.handoff.settings import Backend, HandoffSettings

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("readme", ["README.md", "services/handoff/README.md"])
def test_every_setting_is_documented(readme: str) -> None:
    documented = set(re.findall(r"`(VOICEBOT_HANDOFF_[A-Z_]+)`", (ROOT / readme).read_text()))
    expected = {f"VOICEBOT_HANDOFF_{name.upper()}" for name in HandoffSettings.model_fields}
    assert expected <= documented, f"undocumented: {sorted(expected - documented)}"


def test_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VOICEBOT_HANDOFF_BACKEND", "redis")
    monkeypatch.setenv("VOICEBOT_HANDOFF_LEASE_S", "7.5")
    settings = HandoffSettings()
    assert settings.backend is Backend.REDIS and settings.lease_s == 7.5
    assert settings.sqlite_file(tmp_path) == tmp_path / "handoff.sqlite3"
    monkeypatch.setenv("VOICEBOT_HANDOFF_LEASE_S", "0")
    with pytest.raises(ValueError):
        HandoffSettings()
