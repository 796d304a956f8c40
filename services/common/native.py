"""Settings for the native code under the recognizer, made before it loads.

Two measured defaults (bench/results/asr_engine_native.md):
- OpenBLAS, linked into libvosk, picks its kernels by CPU model and falls back to its slowest
  (Prescott, SSE3) on models newer than itself; our 2-core machines (family 6 model 207) got
  that. We name the kernel family by the CPU's flags instead; an admin's OPENBLAS_CORETYPE wins.
- Kaldi's decoder allocates and frees a great many small objects for every second of audio:
  with glibc's malloc the recognizer spent ~40% of its CPU in the allocator. mimalloc (PyPI
  cmeel-mimalloc) takes a fraction of that. An allocator can only be swapped before a process
  starts, so `serve` commands re-exec themselves once with it preloaded
  (`VOICEBOT_ALLOCATOR=system` keeps glibc's).
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from importlib import metadata
from pathlib import Path

# The widest kernel family the CPU's flags allow, best first (OpenBLAS's names).
_OPENBLAS_CORES = (
    ("SkylakeX", {"avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}),
    ("Haswell", {"avx2", "fma"}),
    ("Sandybridge", {"avx"}),
)
ALLOCATOR_DIST = "cmeel-mimalloc"


def openblas_coretype(flags: set[str]) -> str | None:
    """The OpenBLAS kernel family for an x86-64 CPU with these /proc/cpuinfo flags."""
    for name, needs in _OPENBLAS_CORES:
        if needs <= flags:
            return name
    return None


def cpuinfo_field(name: str, cpuinfo: Path = Path("/proc/cpuinfo")) -> str | None:
    """The first CPU's `name` line of /proc/cpuinfo (None where there is no such file)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    return set((cpuinfo_field("flags", cpuinfo) or "").split())


def configure_openblas() -> str | None:
    """Set OPENBLAS_CORETYPE for the next OpenBLAS to load (libvosk's); returns what is set."""
    if "OPENBLAS_CORETYPE" not in os.environ and platform.machine() in ("x86_64", "AMD64"):
        core = openblas_coretype(cpu_flags())
        if core:
            os.environ["OPENBLAS_CORETYPE"] = core
    return os.environ.get("OPENBLAS_CORETYPE")


def allocator_library() -> Path | None:
    """mimalloc's shared library as the cmeel-mimalloc wheel installed it, if it did."""
    try:
        files = metadata.files(ALLOCATOR_DIST) or []
    except metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == "libmimalloc.so":
            path = Path(str(file.locate()))
            return path if path.is_file() else None
    return None


def preloaded(library: Path) -> bool:
    return str(library) in os.environ.get("LD_PRELOAD", "").split(":")


def allocator_in_use() -> str:
    library = allocator_library()
    return "mimalloc" if library is not None and preloaded(library) else "system"


def openblas_core(library: Path) -> str | None:
    """The kernel family an OpenBLAS inside `library` (loaded already) chose."""
    try:
        lib = ctypes.CDLL(str(library))
        lib.gotoblas_corename.restype = ctypes.c_char_p
        return lib.gotoblas_corename().decode()
    except (OSError, AttributeError):  # not there, or an OpenBLAS without that call
        return None


def reexec_with_allocator(module: str, allocator: str) -> None:
    """Restart this process as `python -m module <same arguments>` with mimalloc preloaded,
    unless `allocator` is "system", it is preloaded already, or it is not installed. Returns
    only when no restart is needed."""
    if allocator == "system" or not sys.platform.startswith("linux"):
        return
    library = allocator_library()
    if library is None or preloaded(library):
        return
    env = dict(os.environ)
    env["LD_PRELOAD"] = ":".join(p for p in (str(library), env.get("LD_PRELOAD", "")) if p)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, "-m", module, *sys.argv[1:]], env)
