"""The shipped manifest: valid, pinned to the official files, honest about licences."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from services.common import modelstore
from services.common.config import ROOT, Settings

SHARED_CHECKSUMS = ROOT.parent / "shared" / "models" / "vosk-model-small-ru-0.22.sha256"


@pytest.fixture(scope="module")
def manifest() -> modelstore.Manifest:
    return modelstore.load_manifest()


def test_vosk_entry_lists_every_official_file(manifest) -> None:
    vosk = manifest.models["vosk-model-small-ru-0.22"]
    assert isinstance(vosk, modelstore.VoskSpec)
    assert str(vosk.url) == "https://alphacephei.com/vosk/models/vosk-model-small-ru-0.22.zip"
    assert vosk.licence == "Apache-2.0"
    paths = {f.path for f in vosk.files}
    assert {"am/final.mdl", "graph/HCLr.fst", "conf/model.conf", "ivector/final.ie"} <= paths
    if SHARED_CHECKSUMS.is_file():
        assert vosk.files == modelstore.read_checksums(SHARED_CHECKSUMS)


def test_install_layout_is_where_the_engines_look(manifest, tmp_path: Path) -> None:
    settings = Settings(models_dir=tmp_path)
    vosk = manifest.models["vosk-model-small-ru-0.22"]
    silero = manifest.models["silero-v4_ru"]
    assert modelstore.model_path(vosk, tmp_path) == settings.vosk_model_path
    assert modelstore.model_path(silero, tmp_path) == tmp_path / "silero-v4_ru" / "v4_ru.pt"


def test_silero_licences_and_the_commercial_alternative(manifest) -> None:
    v4 = manifest.models["silero-v4_ru"]
    v5 = manifest.models["silero-v5_cis_base"]
    assert str(v4.url) == "https://models.silero.ai/models/tts/ru/v4_ru.pt"
    assert (v4.licence, v4.commercial_use, v4.default) == ("CC-BY-NC-SA-4.0", False, True)
    assert (v5.licence, v5.commercial_use, v5.default) == ("MIT", True, False)
    assert [name for name, _ in manifest.select()] == ["vosk-model-small-ru-0.22", "silero-v4_ru"]


def test_malformed_manifest_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "manifest.yaml"
    bad.write_text("models:\n  x:\n    kind: whisper\n    url: nope\n")
    with pytest.raises(modelstore.ManifestError, match="invalid model manifest"):
        modelstore.load_manifest(bad)
    bad.write_text("models: [\n")
    with pytest.raises(modelstore.ManifestError, match="cannot read model manifest"):
        modelstore.load_manifest(bad)


@pytest.mark.russian_models
def test_real_russian_archive_verifies(tmp_path: Path) -> None:
    """Runs where the official archive is at hand (VOICEBOT_MODELS_SRC); no network needed."""
    src = os.environ.get("VOICEBOT_MODELS_SRC")
    if not src or not any(
        (Path(src) / n).exists()
        for n in ("vosk-model-small-ru-0.22.zip", "vosk-model-small-ru-0.22")
    ):
        pytest.skip(
            "official vosk-model-small-ru-0.22 not in VOICEBOT_MODELS_SRC (not available here)"
        )
    settings = Settings(models_dir=tmp_path, models_src=Path(src))

    [result] = modelstore.fetch(settings, ["vosk-model-small-ru-0.22"])

    assert result.ok, result.message
    assert (settings.vosk_model_path / "am" / "final.mdl").is_file()
