"""Model store: install the models `models/manifest.yaml` names, verified and atomically.

Each model comes from `VOICEBOT_MODELS_SRC` when that folder holds it (the official archive by
its URL basename, or the model already unpacked), else from its official URL. It is built in a
hidden temporary folder beside its target, every checksum is verified, a `.verified` marker is
written last, and only then is the folder renamed into place. So a broken or corrupt download
never leaves anything that later loads, and a failed fetch leaves the previous install in force.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal
from urllib.parse import urlparse

import httpx
import yaml
from pydantic import BaseModel, ConfigDict, Field, HttpUrl, ValidationError, field_validator
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from services.common.config import ROOT, Settings

MANIFEST_PATH = ROOT / "models" / "manifest.yaml"
MARKER = ".verified"
_CHUNK = 1 << 20


class ManifestError(ValueError):
    """The manifest (or a checksum list it names) is missing or malformed."""


class UnknownModel(ValueError):
    """A model name that the manifest does not list."""


class FetchError(Exception):
    """A model could not be installed: `reason` says why, `hint` how to supply it instead."""

    def __init__(self, reason: str, hint: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.hint = hint


# --- manifest ------------------------------------------------------------------------------


class FileDigest(BaseModel):
    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str
    url: HttpUrl
    licence: str
    commercial_use: bool
    default: bool = True
    size_note: str | None = None
    install_dir: str

    @field_validator("install_dir")
    @classmethod
    def _plain_folder_name(cls, value: str) -> str:
        if not value or "/" in value or value.startswith("."):
            raise ValueError("must be a plain folder name inside the models folder")
        return value

    @property
    def source_name(self) -> str:
        """The file name of the official download (what VOICEBOT_MODELS_SRC may hold)."""
        return PurePosixPath(urlparse(str(self.url)).path).name


class VoskSpec(_Spec):
    kind: Literal["vosk"]
    archive_root: str = Field(description="the one folder inside the archive")
    files: list[FileDigest] = Field(min_length=1, description="every file, after unpacking")


class SileroSpec(_Spec):
    kind: Literal["silero"]
    filename: str
    sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$", description="null: not published")
    size: int | None = Field(None, ge=1, description="null: not published")


ModelSpec = Annotated[VoskSpec | SileroSpec, Field(discriminator="kind")]


class Manifest(BaseModel):
    models: dict[str, ModelSpec]

    def select(self, names: Iterable[str] | None = None) -> list[tuple[str, ModelSpec]]:
        """The named models, or with no names every model marked `default`."""
        if not names:
            return [(name, spec) for name, spec in self.models.items() if spec.default]
        unknown = [name for name in names if name not in self.models]
        if unknown:
            raise UnknownModel(
                f"unknown model {', '.join(unknown)}; known: {', '.join(self.models)}"
            )
        return [(name, self.models[name]) for name in dict.fromkeys(names)]


def read_checksums(path: Path) -> list[FileDigest]:
    """A `sha256  size  path` list (the format of models/*.sha256), comments with #."""
    digests = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        try:
            sha256, size, name = line.split(maxsplit=2)
            digests.append(FileDigest(path=name, sha256=sha256, size=int(size)))
        except (ValueError, ValidationError) as exc:
            raise ManifestError(f"{path}:{number}: expected 'sha256 size path': {line!r}") from exc
    return digests


def load_manifest(path: Path = MANIFEST_PATH) -> Manifest:
    """Read and validate a manifest; `checksums: FILE` entries are read relative to it."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ManifestError(f"cannot read model manifest {path}: {exc}") from exc
    for entry in (raw or {}).get("models", {}).values():
        if isinstance(entry, dict) and "checksums" in entry:
            listed = path.parent / entry.pop("checksums")
            if not listed.is_file():
                raise ManifestError(f"{path}: checksum list {listed} does not exist")
            entry["files"] = [d.model_dump() for d in read_checksums(listed)]
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        raise ManifestError(f"invalid model manifest {path}:\n{exc}") from exc


def _manifest(manifest: Manifest | Path | None) -> Manifest:
    return manifest if isinstance(manifest, Manifest) else load_manifest(manifest or MANIFEST_PATH)


# --- status --------------------------------------------------------------------------------

State = Literal["verified", "installed", "missing", "corrupt"]


class ModelStatus(BaseModel):
    name: str
    kind: str
    state: State = Field(description="installed: present but not verified by the fetcher")
    path: Path
    licence: str
    commercial_use: bool
    default: bool
    detail: str = ""


def model_path(spec: ModelSpec, models_dir: Path) -> Path:
    """What the engines load: the Vosk model folder, or the Silero .pt file."""
    folder = models_dir / spec.install_dir
    return folder / spec.filename if isinstance(spec, SileroSpec) else folder


def is_verified(folder: Path) -> bool:
    """Whether the fetcher installed and verified this folder (the marker is written last)."""
    return (folder / MARKER).is_file()


def status(
    settings: Settings, manifest: Manifest | Path | None = None, verify: bool = False
) -> list[ModelStatus]:
    """Every model in the manifest: verified, installed (not by the fetcher), or missing.

    `verify` re-hashes installed files, so a model damaged after install shows as corrupt.
    """
    result = []
    for name, spec in _manifest(manifest).models.items():
        folder = settings.models_dir / spec.install_dir
        path = model_path(spec, settings.models_dir)
        state: State
        if not path.exists():
            state, detail = (
                "missing",
                "run `voicebot models fetch" + ("`" if spec.default else f" {name}`"),
            )
        elif verify:
            try:
                detail = _verify(_with_recorded_digest(spec, folder), folder)
                state = "verified"
            except FetchError as exc:
                state, detail = "corrupt", exc.reason
        elif is_verified(folder):
            state, detail = "verified", _marker_summary(folder)
        else:
            state, detail = (
                "installed",
                "not installed by the fetcher: `voicebot models status --verify`",
            )
        result.append(
            ModelStatus(
                name=name,
                kind=spec.kind,
                state=state,
                path=path,
                licence=spec.licence,
                commercial_use=spec.commercial_use,
                default=spec.default,
                detail=detail,
            )
        )
    return result


def _marker(folder: Path) -> dict[str, object]:
    try:
        record = json.loads((folder / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _marker_summary(folder: Path) -> str:
    record = _marker(folder)
    return f"from {record.get('source', '?')} at {record.get('installed_at', '?')}"


def _with_recorded_digest(spec: ModelSpec, folder: Path) -> ModelSpec:
    """Silero pins no sha256: re-check an install against the digest recorded when it was made."""
    record = _marker(folder)
    if isinstance(spec, SileroSpec) and spec.sha256 is None and "sha256" in record:
        return spec.model_copy(update={"sha256": record["sha256"], "size": record.get("size")})
    return spec


# --- fetch ---------------------------------------------------------------------------------


class FetchResult(BaseModel):
    name: str
    outcome: Literal["installed", "present", "failed"]
    path: Path
    message: str
    hint: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome != "failed"


def fetch(
    settings: Settings,
    names: Iterable[str] | None = None,
    manifest: Manifest | Path | None = None,
    console: Console | None = None,
    force: bool = False,
) -> list[FetchResult]:
    """Install the named models (default: every `default` model) not verified yet (or `force`).

    Raises UnknownModel for a name the manifest lacks; every other failure is reported per
    model in the result, with the previous install (if any) left untouched.
    """
    console = console or Console(stderr=True)
    selected = _manifest(manifest).select(names)
    settings.models_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(settings.models_dir):
        _remove_leftovers(settings.models_dir)
        return [_fetch_one(name, spec, settings, console, force) for name, spec in selected]


def _fetch_one(
    name: str, spec: ModelSpec, settings: Settings, console: Console, force: bool
) -> FetchResult:
    folder = settings.models_dir / spec.install_dir
    if is_verified(folder) and not force:
        return FetchResult(name=name, outcome="present", path=folder, message="already installed")
    try:
        message = _install(name, spec, settings, console)
        return FetchResult(name=name, outcome="installed", path=folder, message=message)
    except (FetchError, OSError) as exc:
        reason, hint = (
            (exc.reason, exc.hint) if isinstance(exc, FetchError) else (f"file error: {exc}", "")
        )
        kept = " (the previous install is kept)" if folder.exists() else " (nothing was installed)"
        return FetchResult(
            name=name, outcome="failed", path=folder, message=reason + kept, hint=hint
        )


@contextmanager
def _exclusive(models_dir: Path) -> Iterator[None]:
    """One fetcher at a time per models folder (two `make run`s, or containers sharing it)."""
    with (models_dir / ".fetch.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _remove_leftovers(models_dir: Path) -> None:
    """Temporary folders of a fetcher that was killed: under the lock, no one else owns them."""
    for leftover in models_dir.glob(".*.tmp"):
        shutil.rmtree(leftover, ignore_errors=True)


def _install(name: str, spec: ModelSpec, settings: Settings, console: Console) -> str:
    target = settings.models_dir / spec.install_dir
    # Beside the target, so the final rename stays on one file system; hidden, so nothing loads it.
    with tempfile.TemporaryDirectory(
        prefix=f".{spec.install_dir}.", suffix=".tmp", dir=settings.models_dir
    ) as tmp:
        work = Path(tmp)
        source, origin = _obtain(name, spec, settings, work, console)
        staged = work / spec.install_dir
        _stage(spec, source, staged, work)
        detail = _verify(spec, staged)
        record: dict[str, object] = {
            "name": name,
            "source": origin,
            "url": str(spec.url),
            "licence": spec.licence,
            "installed_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "verified": detail,
        }
        if isinstance(spec, SileroSpec):
            # Silero publishes no checksum: record what we got, for an admin to pin in the manifest.
            sha256, size = _sha256(staged / spec.filename), (staged / spec.filename).stat().st_size
            record |= {"sha256": sha256, "size": size}
            detail += f"; got sha256 {sha256}, {size} bytes"
        (staged / MARKER).write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
        _swap_into_place(staged, target, work / "previous")
    return f"installed from {origin}: {detail}"


def _obtain(
    name: str, spec: ModelSpec, settings: Settings, work: Path, console: Console
) -> tuple[Path, str]:
    """The model's archive, file or unpacked folder: from VOICEBOT_MODELS_SRC, else downloaded."""
    src_note = ""
    if settings.models_src is not None:
        for candidate in _src_candidates(spec, settings.models_src):
            if candidate.exists():
                return candidate, str(candidate)
        src_note = (
            f"VOICEBOT_MODELS_SRC={settings.models_src} holds neither {spec.source_name} "
            f"nor an unpacked {spec.install_dir}/ folder; "
        )
    download = work / spec.source_name
    try:
        _download(str(spec.url), download, f"{name} ({spec.source_name})", console)
    except FetchError as exc:
        raise FetchError(src_note + exc.reason, _offline_hint(name, spec, settings)) from exc
    return download, str(spec.url)


def _src_candidates(spec: ModelSpec, src: Path) -> list[Path]:
    if isinstance(spec, VoskSpec):
        names = [spec.source_name, spec.archive_root, spec.install_dir]
    else:
        names = [spec.source_name, f"{spec.install_dir}/{spec.filename}"]
    return [src / name for name in dict.fromkeys(names)]


def _offline_hint(name: str, spec: ModelSpec, settings: Settings) -> str:
    unpacked = (
        f" (or the unpacked {spec.archive_root}/ folder)" if isinstance(spec, VoskSpec) else ""
    )
    return (
        f"To install it without network: download {spec.url} on a machine that has access, "
        f"put {spec.source_name}{unpacked} into a folder, then run\n"
        f"  VOICEBOT_MODELS_SRC=/that/folder voicebot models fetch {name}\n"
        f"It is installed into {settings.models_dir / spec.install_dir}. "
        "Behind a proxy, set HTTPS_PROXY."
    )


def _download(url: str, dest: Path, label: str, console: Console) -> None:
    """Stream `url` to `dest` with a progress bar; a short or failed transfer raises FetchError."""
    host = urlparse(url).netloc
    timeout = httpx.Timeout(30.0, connect=10.0)
    try:
        with (
            httpx.Client(follow_redirects=True, timeout=timeout) as client,
            # identity: Content-Length then counts the very bytes written, so truncation shows.
            client.stream("GET", url, headers={"Accept-Encoding": "identity"}) as response,
        ):
            response.raise_for_status()
            expected = int(response.headers.get("content-length", 0)) or None
            received = 0
            with dest.open("wb") as out, _progress(console) as progress:
                task = progress.add_task(label, total=expected)
                for chunk in response.iter_raw(_CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    progress.update(task, completed=received)
    except httpx.ConnectError as exc:
        raise FetchError(
            f"cannot connect to {host} ({exc or type(exc).__name__}): no network access?"
        ) from exc
    except httpx.TimeoutException as exc:
        raise FetchError(f"{host} did not answer in time ({type(exc).__name__})") from exc
    except httpx.HTTPStatusError as exc:
        raise FetchError(f"{url} answered HTTP {exc.response.status_code}") from exc
    except httpx.HTTPError as exc:
        raise FetchError(f"download of {url} failed: {exc or type(exc).__name__}") from exc
    if expected is not None and received != expected:
        raise FetchError(f"download of {url} was cut short: {received} of {expected} bytes")


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


def _stage(spec: ModelSpec, source: Path, staged: Path, work: Path) -> None:
    """Lay the model out in `staged` exactly as it will be installed."""
    if isinstance(spec, SileroSpec):
        staged.mkdir()
        shutil.copyfile(source, staged / spec.filename)
    elif source.is_dir():
        shutil.copytree(source, staged, ignore=shutil.ignore_patterns(MARKER))
    else:
        unpacked = work / "unpacked"
        _unzip(spec, source, unpacked)
        root = unpacked / spec.archive_root
        if not root.is_dir():
            raise FetchError(
                f"{source.name} has no {spec.archive_root}/ folder: not the official archive"
            )
        root.rename(staged)


def _unzip(spec: VoskSpec, archive: Path, dest: Path) -> None:
    expected = sum(f.size for f in spec.files)
    try:
        with zipfile.ZipFile(archive) as zf:
            # A corrupt or hostile archive must not fill the disk before the checksums fail.
            declared = sum(info.file_size for info in zf.infolist())
            if declared > 2 * expected + (10 << 20):
                raise FetchError(
                    f"{archive.name} unpacks to {declared} bytes, expected about {expected}"
                )
            zf.extractall(dest)  # zipfile drops absolute paths and `..`: nothing lands outside
    except (zipfile.BadZipFile, EOFError, OSError) as exc:
        raise FetchError(
            f"{archive.name} is not a readable zip archive ({exc}): corrupt download?"
        ) from exc


def _verify(spec: ModelSpec, folder: Path) -> str:
    """Check the installed layout against the manifest; FetchError names every mismatch."""
    if isinstance(spec, VoskSpec):
        problems = [p for f in spec.files if (p := _check_file(folder, f.path, f.size, f.sha256))]
        if problems:
            shown = "; ".join(problems[:3]) + (
                f"; and {len(problems) - 3} more" if len(problems) > 3 else ""
            )
            raise FetchError(
                f"checksum mismatch: {shown}: the archive is corrupt or not the official one"
            )
        return f"{len(spec.files)} files match their sha256"
    path = folder / spec.filename
    problem = _check_file(folder, spec.filename, spec.size, spec.sha256) or _check_torch_package(
        path
    )
    if problem:
        raise FetchError(f"{problem}: the download is corrupt or not the official file")
    if spec.sha256 is None:
        return "complete torch.package (no published sha256 to compare)"
    return "sha256 matches"


def _check_file(folder: Path, rel: str, size: int | None, sha256: str | None) -> str:
    path = folder / rel
    if not path.is_file():
        return f"{rel} is missing"
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        return f"{rel} has {actual_size} bytes, expected {size}"
    if sha256 is not None and (actual := _sha256(path)) != sha256:
        return f"{rel} has sha256 {actual}, expected {sha256}"
    return ""


def _check_torch_package(path: Path) -> str:
    """Silero ships a torch.package: a zip whose tts_models/model pickle the TTS engine loads."""
    try:
        with zipfile.ZipFile(path) as zf:
            entries = {name.split("/", 1)[-1] for name in zf.namelist()}
    except (zipfile.BadZipFile, OSError) as exc:
        return f"{path.name} is not a torch.package ({exc})"
    if "tts_models/model" not in entries:
        return f"{path.name} is a zip but holds no tts_models/model"
    return ""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _swap_into_place(staged: Path, target: Path, aside: Path) -> None:
    """Rename the verified folder into place; a previous install is moved aside, then dropped."""
    if target.exists():
        target.rename(aside)
    try:
        staged.rename(target)
    except OSError:
        if aside.exists():
            aside.rename(target)
        raise
