"""The fetcher installs only verified models, atomically, from a local source or over HTTP."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from services.common import modelstore


def installed_tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and p.name != modelstore.MARKER
    }


def installed(store) -> list[str]:
    """What is in the models folder, but for the fetchers' lock file."""
    return sorted(p.name for p in store.models.iterdir() if p.name != ".fetch.lock")


def test_installs_a_vosk_archive_from_models_src(store) -> None:
    store.zip()

    [result] = modelstore.fetch(store.settings(), ["test-vosk"], store.manifest())

    assert result.ok and result.outcome == "installed", result.message
    assert "4 files match their sha256" in result.message
    target = store.models / store.vosk_root
    assert installed_tree(target) == store.files
    marker = json.loads((target / modelstore.MARKER).read_text())
    assert marker["source"] == str(store.src / f"{store.vosk_root}.zip")
    # Nothing but the model itself is left in the models folder (no temporary folders).
    assert installed(store) == [store.vosk_root]


def test_second_fetch_keeps_the_verified_install(store) -> None:
    store.zip()
    manifest = store.manifest()
    modelstore.fetch(store.settings(), ["test-vosk"], manifest)
    (store.src / f"{store.vosk_root}.zip").unlink()

    [result] = modelstore.fetch(store.settings(), ["test-vosk"], manifest)

    assert result.outcome == "present"


def test_leftovers_of_a_killed_fetch_are_removed(store) -> None:
    leftover = store.models / f".{store.vosk_root}.k1ll3d.tmp"
    (leftover / "am").mkdir(parents=True)
    (leftover / "am" / "final.mdl").write_bytes(b"half a model")
    store.zip()

    [result] = modelstore.fetch(store.settings(), ["test-vosk"], store.manifest())

    assert result.ok, result.message
    assert installed(store) == [store.vosk_root]


def test_installs_an_unpacked_folder_from_models_src(store) -> None:
    store.unpacked()

    [result] = modelstore.fetch(store.settings(), ["test-vosk"], store.manifest())

    assert result.ok, result.message
    assert installed_tree(store.models / store.vosk_root) == store.files
    assert modelstore.is_verified(store.models / store.vosk_root)


def test_corrupt_file_is_a_clear_error_and_installs_nothing(store) -> None:
    corrupt = dict(store.files, **{"am/final.mdl": store.files["am/final.mdl"][:-1] + b"\0"})
    store.zip(corrupt)

    [result] = modelstore.fetch(store.settings(), ["test-vosk"], store.manifest())

    assert not result.ok
    assert "checksum mismatch" in result.message
    assert "am/final.mdl has sha256" in result.message
    assert "nothing was installed" in result.message
    assert installed(store) == []
    assert modelstore.status(store.settings(), store.manifest())[0].state == "missing"


def test_failed_reinstall_leaves_the_old_install_in_force(store) -> None:
    manifest = store.manifest()
    store.zip()
    modelstore.fetch(store.settings(), ["test-vosk"], manifest)
    marker_before = (store.models / store.vosk_root / modelstore.MARKER).read_bytes()
    store.zip(dict(store.files, README=b"tampered\n"))

    [result] = modelstore.fetch(store.settings(), ["test-vosk"], manifest, force=True)

    assert not result.ok
    assert "README has 9 bytes, expected" in result.message
    assert "the previous install is kept" in result.message
    assert installed_tree(store.models / store.vosk_root) == store.files
    assert (store.models / store.vosk_root / modelstore.MARKER).read_bytes() == marker_before
    assert installed(store) == [store.vosk_root]


def test_missing_file_in_archive_is_named(store) -> None:
    files = {k: v for k, v in store.files.items() if k != "conf/model.conf"}
    store.zip(files)

    [result] = modelstore.fetch(store.settings(), ["test-vosk"], store.manifest())

    assert "conf/model.conf is missing" in result.message
    assert installed(store) == []


def test_archive_without_the_model_folder_is_rejected(store) -> None:
    store.zip(root="other-name")

    [result] = modelstore.fetch(store.settings(), ["test-vosk"], store.manifest())

    assert f"has no {store.vosk_root}/ folder" in result.message
    assert installed(store) == []


def test_truncated_zip_is_a_clear_error(store) -> None:
    archive = store.zip()
    archive.write_bytes(archive.read_bytes()[:5000])

    [result] = modelstore.fetch(store.settings(), ["test-vosk"], store.manifest())

    assert "is not a readable zip archive" in result.message
    assert installed(store) == []


def test_silero_package_is_installed_and_its_sha256_recorded(store, silero_package: Path) -> None:
    (store.src / "test_tts.pt").write_bytes(silero_package.read_bytes())
    digest = hashlib.sha256(silero_package.read_bytes()).hexdigest()

    [result] = modelstore.fetch(store.settings(), ["test-silero"], store.manifest())

    assert result.ok, result.message
    assert f"got sha256 {digest}" in result.message  # printed, for an admin to pin
    installed = store.models / "silero-test" / "test_tts.pt"
    assert installed.read_bytes() == silero_package.read_bytes()
    marker = json.loads((store.models / "silero-test" / modelstore.MARKER).read_text())
    assert marker["sha256"] == digest
    assert marker["size"] == installed.stat().st_size


def test_silero_file_that_is_not_a_torch_package_is_rejected(store) -> None:
    (store.src / "test_tts.pt").write_bytes(b"<html>503 Service Unavailable</html>")

    [result] = modelstore.fetch(store.settings(), ["test-silero"], store.manifest())

    assert "test_tts.pt is not a torch.package" in result.message
    assert installed(store) == []


def test_pinned_silero_sha256_is_enforced(store, silero_package: Path) -> None:
    (store.src / "test_tts.pt").write_bytes(silero_package.read_bytes())

    [result] = modelstore.fetch(
        store.settings(), ["test-silero"], store.manifest(silero_sha256="0" * 64)
    )

    assert f"expected {'0' * 64}" in result.message
    assert installed(store) == []


def test_unreachable_url_says_why_and_how_to_supply_the_model(store) -> None:
    manifest = store.manifest()  # URLs on a closed 127.0.0.1 port

    [result] = modelstore.fetch(store.settings(src=False), ["test-vosk"], manifest)

    assert not result.ok
    assert "cannot connect to 127.0.0.1:" in result.message
    assert "VOICEBOT_MODELS_SRC=/that/folder voicebot models fetch test-vosk" in result.hint
    assert f"{store.vosk_root}.zip" in result.hint
    assert str(store.models / store.vosk_root) in result.hint
    assert installed(store) == []


def test_models_src_without_the_model_says_what_it_looked_for(store) -> None:
    [result] = modelstore.fetch(store.settings(), ["test-vosk"], store.manifest())

    assert f"VOICEBOT_MODELS_SRC={store.src} holds neither {store.vosk_root}.zip" in result.message
    assert "cannot connect to 127.0.0.1:" in result.message


def test_unknown_model_name_is_refused(store) -> None:
    with pytest.raises(modelstore.UnknownModel, match="known: test-vosk, test-silero"):
        modelstore.fetch(store.settings(), ["nope"], store.manifest())


# --- over HTTP, against a real local server -------------------------------------------------


class _Files(http.server.BaseHTTPRequestHandler):
    files: ClassVar[dict[str, bytes]] = {}
    short_by = 0  # announce this many bytes more than are sent, then hang up

    def do_GET(self) -> None:
        data = self.files.get(self.path.rsplit("/", 1)[-1])
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data) + self.short_by))
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_files(store) -> Iterator[tuple[type[_Files], str]]:
    handler = type("Handler", (_Files,), {"files": {}, "short_by": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield handler, f"http://127.0.0.1:{server.server_address[1]}/files"
    server.shutdown()
    server.server_close()


def test_downloads_and_installs_over_http(store, http_files) -> None:
    handler, base_url = http_files
    handler.files[f"{store.vosk_root}.zip"] = store.zip().read_bytes()

    [result] = modelstore.fetch(store.settings(src=False), ["test-vosk"], store.manifest(base_url))

    assert result.ok, result.message
    assert f"installed from {base_url}/{store.vosk_root}.zip" in result.message
    assert installed_tree(store.models / store.vosk_root) == store.files


def test_download_cut_short_installs_nothing(store, http_files) -> None:
    handler, base_url = http_files
    handler.files[f"{store.vosk_root}.zip"] = store.zip().read_bytes()
    handler.short_by = 1000

    [result] = modelstore.fetch(store.settings(src=False), ["test-vosk"], store.manifest(base_url))

    assert not result.ok
    assert "download of" in result.message
    assert installed(store) == []


def test_http_error_status_is_reported(store, http_files) -> None:
    _, base_url = http_files

    [result] = modelstore.fetch(store.settings(src=False), ["test-vosk"], store.manifest(base_url))

    assert f"{base_url}/{store.vosk_root}.zip answered HTTP 404" in result.message
