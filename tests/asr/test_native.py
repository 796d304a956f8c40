"""The native settings under the recognizer (services/common/native.py): OpenBLAS's kernel
family from the CPU's flags, and the re-exec that preloads mimalloc. The real process and its
real libraries are checked in test_cli.py (`voicebot serve asr`)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from services.common import native

from .helpers import env_without_kernel_override

AVX512 = {"sse4_2", "avx", "avx2", "fma", "avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"}


@pytest.mark.parametrize(
    ("flags", "core"),
    [
        (AVX512, "SkylakeX"),
        (AVX512 - {"avx512vl"}, "Haswell"),  # Knights Landing: AVX-512 without VL
        ({"sse4_2", "avx", "avx2", "fma"}, "Haswell"),
        ({"sse4_2", "avx"}, "Sandybridge"),
        ({"sse2", "sse3"}, None),  # left to OpenBLAS's own detection
    ],
)
def test_openblas_kernels_follow_the_cpu_flags(flags: set[str], core: str | None) -> None:
    assert native.openblas_coretype(flags) == core


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel\t\t: 207\nflags\t\t: fpu sse2 avx2 fma\n\n")
    assert native.cpu_flags(cpuinfo) == {"fpu", "sse2", "avx2", "fma"}
    assert native.cpu_flags(tmp_path / "missing") == set()


def test_this_machines_vosk_runs_the_kernels_its_cpu_has() -> None:
    """The reason for it all: OpenBLAS 0.3 inside libvosk took this CPU for a 2004 Prescott.

    A fresh interpreter, as `voicebot serve` starts: OpenBLAS reads its setting once, when
    libvosk loads, so in this process an earlier test may have loaded it first."""
    script = (
        "import services.asr, vosk, pathlib\n"
        "from services.common import native\n"
        "print(native.openblas_core(pathlib.Path(vosk.__file__).parent / 'libvosk.so'))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env_without_kernel_override(),
        cwd=Path(__file__).parents[2],
        check=True,
    )
    core = run.stdout.strip()
    assert core != "None"
    expected = native.openblas_coretype(native.cpu_flags())
    if expected:
        assert core == expected


def test_an_admins_openblas_coretype_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Zen")
    assert native.configure_openblas() == "Zen"
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    monkeypatch.setattr(native, "cpu_flags", lambda: AVX512)
    monkeypatch.setattr(native.platform, "machine", lambda: "x86_64")
    assert native.configure_openblas() == "SkylakeX"


@pytest.fixture
def execs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[str], dict[str, str]]]:
    calls: list[tuple[str, list[str], dict[str, str]]] = []
    monkeypatch.setattr(native.os, "execve", lambda *args: calls.append(args))
    monkeypatch.setattr(sys, "argv", ["/venv/bin/voicebot", "serve", "asr", "--port", "2700"])
    monkeypatch.delenv("LD_PRELOAD", raising=False)
    return calls


def test_serve_restarts_itself_with_mimalloc_preloaded(execs: list) -> None:
    library = native.allocator_library()
    assert library is not None, "cmeel-mimalloc is a runtime dependency"
    native.reexec_with_allocator("services.cli", "mimalloc")
    [(program, argv, env)] = execs
    assert program == sys.executable
    assert argv == [sys.executable, "-m", "services.cli", "serve", "asr", "--port", "2700"]
    assert env["LD_PRELOAD"].split(":")[0] == str(library)


def test_no_restart_when_preloaded_or_declined(
    execs: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    native.reexec_with_allocator("services.cli", "system")
    monkeypatch.setenv("LD_PRELOAD", f"/opt/other.so:{native.allocator_library()}")
    native.reexec_with_allocator("services.cli", "mimalloc")
    assert execs == []
