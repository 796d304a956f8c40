"""A small model store laid out like the real one: a manifest, checksum lists, sources.

The model files are made here (random bytes for Vosk, a real torch.package for Silero), their
sha256s go into a test manifest, and the fetcher under test is the real one.
"""

from __future__ import annotations

import hashlib
import os
import socket
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from services.common.config import Settings

VOSK_ROOT = "test-vosk-0.1"
VOSK_FILES = {
    "README": b"Test model for the fetcher\n",
    "am/final.mdl": os.urandom(200_000),
    "conf/model.conf": b"--min-active=200\n--max-active=3000\n",
    "graph/HCLr.fst": os.urandom(50_000),
}


def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Store:
    """One test model store: `src` (VOICEBOT_MODELS_SRC), `models` (the install folder), and a
    manifest listing `files` of a Vosk-kind model and a Silero-kind package."""

    root: Path
    src: Path
    models: Path
    vosk_root: str = VOSK_ROOT
    files: dict[str, bytes] = field(default_factory=lambda: dict(VOSK_FILES))

    def zip(self, files: dict[str, bytes] | None = None, root: str = VOSK_ROOT) -> Path:
        """The model's archive, in `src` under its URL basename."""
        path = self.src / f"{VOSK_ROOT}.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in (self.files if files is None else files).items():
                zf.writestr(f"{root}/{name}", data)
        return path

    def unpacked(self) -> Path:
        """The model already unpacked, in `src`."""
        for name, data in self.files.items():
            (self.src / VOSK_ROOT / name).parent.mkdir(parents=True, exist_ok=True)
            (self.src / VOSK_ROOT / name).write_bytes(data)
        return self.src / VOSK_ROOT

    def manifest(self, base_url: str | None = None, silero_sha256: str | None = None) -> Path:
        base_url = base_url or f"http://127.0.0.1:{closed_port()}/files"
        checksums = self.root / "test-vosk.sha256"
        checksums.write_text(
            "# sha256 bytes path\n"
            + "".join(
                f"{hashlib.sha256(data).hexdigest()}  {len(data)}  {name}\n"
                for name, data in VOSK_FILES.items()
            )
        )
        pinned = f'"{silero_sha256}"' if silero_sha256 else "null"
        path = self.root / "manifest.yaml"
        path.write_text(
            f"""models:
  test-vosk:
    kind: vosk
    description: test Vosk model
    url: {base_url}/{VOSK_ROOT}.zip
    licence: Apache-2.0
    commercial_use: true
    install_dir: {VOSK_ROOT}
    archive_root: {VOSK_ROOT}
    checksums: test-vosk.sha256
  test-silero:
    kind: silero
    description: test Silero package
    url: {base_url}/test_tts.pt
    licence: CC-BY-NC-SA-4.0
    commercial_use: false
    install_dir: silero-test
    filename: test_tts.pt
    sha256: {pinned}
    size: null
"""
        )
        return path

    def settings(self, src: bool = True) -> Settings:
        return Settings(models_dir=self.models, models_src=self.src if src else None)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    (tmp_path / "src").mkdir()
    return Store(root=tmp_path, src=tmp_path / "src", models=tmp_path / "models")


@pytest.fixture(scope="session")
def silero_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real torch.package with the `tts_models/model` pickle Silero's loader reads."""
    torch = pytest.importorskip("torch")
    path = tmp_path_factory.mktemp("silero") / "test_tts.pt"
    with torch.package.PackageExporter(str(path)) as exporter:
        exporter.save_pickle("tts_models", "model", {"speakers": ["xenia"]})
    return path
