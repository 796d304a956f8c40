"""A real Asterisk for tests: started in a short temporary folder on free loopback ports.

Where it comes from: `<repo>/../shared/asterisk/bin/asterisk-run` (the relocatable build CI
copies beside the clone), else an `asterisk-run` or `asterisk` on PATH; otherwise the tests skip
and say why.

Calls without SIP. A test places a call with AMI `Originate` of a Local channel:

    Channel: Local/8800@hotline/n    the ;2 half runs the dialplan under test (AudioSocket())
    Context: caller, Exten: <script> the ;1 half is the caller: Wait(), Playback(), Record()
    CallerID: 79161234567            CALLERID(num) of both halves (Local copies it to ;2)

What the caller half plays reaches the ;2 half as its read audio, so `AudioSocket()` forwards
it to the gateway, and what the gateway sends back is what the caller half hears (`Record()`
or `MixMonitor()` on it keeps it). `/n` keeps the two halves from being optimised away.
Asterisk forwards a frame only when the caller half produces one: during `Wait()` nothing
reaches the gateway (a quiet line), `Playback()` sends 20 ms frames in real time. The Debian
Russian prompts (`/usr/share/asterisk/sounds/ru`, linked into the instance by asterisk-run) are
real speech; a test's own WAV (8 kHz mono 16-bit) is played by absolute path without extension.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import httpx
from live_server import free_port

from services.gateway.asterisk.ami import AmiClient, AmiSettings, Message

REPO = Path(__file__).resolve().parents[2]
SHARED_RUN = REPO.parent / "shared" / "asterisk" / "bin" / "asterisk-run"
DEPLOY = REPO / "deploy" / "asterisk"


def asterisk_run() -> Path | None:
    """The asterisk-run script, or None (then `asterisk_missing()` says why)."""
    if SHARED_RUN.exists():
        return SHARED_RUN
    found = shutil.which("asterisk-run")
    return Path(found) if found else None


def asterisk_missing() -> str | None:
    if asterisk_run() is not None or shutil.which("asterisk"):
        return None
    return f"no Asterisk: neither {SHARED_RUN} nor asterisk-run/asterisk on PATH"


class Asterisk:
    """One instance: its folder, AMI port, CLI and full log."""

    def __init__(self, folder: Path, ami_port: int, http_port: int) -> None:
        self.folder, self.ami_port, self.http_port = folder, ami_port, http_port
        self._run = asterisk_run()

    @property
    def etc(self) -> Path:
        return self.folder / "etc"

    def start(self) -> None:
        if self._run is not None:
            ports = ["--ami-port", str(self.ami_port), "--http-port", str(self.http_port)]
            _check([str(self._run), str(self.folder), *ports])
        else:  # a system Asterisk: the same layout, written here
            self._start_system()
        _wait_port(self.ami_port)

    def stop(self) -> None:
        if self._run is not None:
            subprocess.run([str(self._run), str(self.folder), "--stop"], capture_output=True)
        else:
            self.cli("core stop now")

    def cli(self, command: str) -> str:
        if self._run is not None:
            args = [str(self._run), str(self.folder), "--cli", command]
        else:
            args = ["asterisk", "-C", str(self.folder / "asterisk.conf"), "-rx", command]
        return _check(args)

    def log(self) -> str:
        path = self.folder / "log" / "full"
        return path.read_text(errors="replace") if path.exists() else ""

    def _start_system(self) -> None:
        for sub in ("run", "log", "spool", "lib", "cache"):
            (self.folder / sub).mkdir(exist_ok=True)
        dirs = {
            "astetcdir": "etc",
            "astrundir": "run",
            "astlogdir": "log",
            "astspooldir": "spool",
            "astvarlibdir": "lib",
            "astdbdir": "lib",
            "astkeydir": "lib",
            "astcachedir": "cache",
        }
        lines = ["[directories]"] + [f"{k} => {self.folder / v}" for k, v in dirs.items()]
        lines += ["astdatadir => /usr/share/asterisk", "[options]", "defaultlanguage = ru"]
        (self.folder / "asterisk.conf").write_text("\n".join(lines) + "\n")
        for name, text in {
            "modules.conf": "[modules]\nautoload = yes\n",
            "logger.conf": "[logfiles]\nfull => notice,warning,error,verbose,dtmf\n",
            "manager.conf": _MANAGER.format(port=self.ami_port),
        }.items():
            if not (self.etc / name).exists():
                (self.etc / name).write_text(text)
        conf = str(self.folder / "asterisk.conf")
        subprocess.Popen(
            ["asterisk", "-C", conf, "-f", "-n", "-g"],
            cwd=self.folder,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while subprocess.run(
            ["asterisk", "-C", conf, "-rx", "core waitfullybooted"], capture_output=True
        ).returncode:
            if time.monotonic() > deadline:
                raise RuntimeError("the system Asterisk did not boot in 30 s")
            time.sleep(0.2)


_MANAGER = """[general]
enabled = yes
port = {port}
bindaddr = 127.0.0.1
[test]
secret = test
read = all
write = all
"""


def _check(args: list[str]) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if done.returncode:
        raise RuntimeError(f"{' '.join(args)}: {done.returncode} {done.stderr or done.stdout}")
    return done.stdout


def _wait_port(port: int, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def sample_dialplan(audiosocket: str, http: str) -> str:
    """deploy/asterisk/extensions.conf pointed at a test gateway: the sample is what is tested."""
    text = (DEPLOY / "extensions.conf").read_text()
    text = text.replace("=127.0.0.1:9092", f"={audiosocket}")
    return text.replace("=http://127.0.0.1:8080", f"={http}")


def sample_manager() -> str:
    """deploy/asterisk/manager.conf on the instance's port, plus a `test` user that sees all."""
    text = (DEPLOY / "manager.conf").read_text().replace("port = 5038", "port = @AMI_PORT@")
    return text + "\n[test]\nsecret = test\nread = all\nwrite = all\n"


@contextmanager
def running_asterisk(configs: dict[str, str], ami_port: int | None = None) -> Iterator[Asterisk]:
    """Start Asterisk with `configs` (file name → text; `@AMI_PORT@` is replaced) in DIR/etc;
    stop it afterwards."""
    # The control socket lives in DIR/run (a socket path has ~100 bytes): a short /tmp folder.
    folder = Path(tempfile.mkdtemp(prefix="ast-", dir="/tmp" if os.path.isdir("/tmp") else None))
    assert len(str(folder)) <= 80
    (folder / "etc").mkdir()
    asterisk = Asterisk(folder, ami_port or free_port(), free_port())
    for name, text in configs.items():
        (folder / "etc" / name).write_text(text.replace("@AMI_PORT@", str(asterisk.ami_port)))
    asterisk.start()
    try:
        yield asterisk
    finally:
        asterisk.stop()
        shutil.rmtree(folder, ignore_errors=True)


class Events:
    """AMI events as they come, for a test to wait on."""

    def __init__(self) -> None:
        self.seen: list[Message] = []
        self._changed = asyncio.Event()

    async def __call__(self, message: Message) -> None:
        self.seen.append(message)
        self._changed.set()

    async def wait_for(self, pred: Callable[[Message], bool], timeout: float = 10.0) -> Message:
        async with asyncio.timeout(timeout):
            while True:
                for message in self.seen:
                    if pred(message):
                        return message
                self._changed.clear()
                await self._changed.wait()


@asynccontextmanager
async def ami_session(asterisk: Asterisk) -> AsyncIterator[tuple[AmiClient, Events]]:
    """The test's own AMI connection (user `test`, every event)."""
    events = Events()
    client = AmiClient(AmiSettings(port=asterisk.ami_port, username="test", secret="test"), events)
    task = asyncio.create_task(client.run())
    try:
        await asyncio.wait_for(client.connected.wait(), 10)
        yield client, events
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


CALLER_NUMBER = "79161234567"


async def call_bot(
    ami: tuple[AmiClient, Events],
    script: str,
    variables: dict[str, str] | None = None,
    caller_id: str = CALLER_NUMBER,
    exten: str = "8800",
) -> str:
    """Call `exten` of the sample dialplan (8800: AudioSocket(), 8801: the channel driver)
    from the caller half `script` (context `caller`) with `caller_id`; returns the CALL_UUID
    the dialplan gave the call."""
    client, events = ami
    before = len(events.seen)
    await client.action(
        "Originate",
        variables or {},
        Channel=f"Local/{exten}@hotline/n",
        Context="caller",
        Exten=script,
        Priority="1",
        CallerID=caller_id,
        Async="true",
    )
    varset = await events.wait_for(
        lambda m: (
            m in events.seen[before:] and m.event == "VarSet" and m.get("Variable") == "CALL_UUID"
        )
    )
    return varset["Value"]


def finished_record(gateway: str, call_id: str, timeout: float = 20.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        reply = httpx.get(f"{gateway}/v1/calls/{call_id}")
        if reply.status_code == 200 and reply.json()["outcome"] != "in_progress":
            return reply.json()
        time.sleep(0.2)
    raise AssertionError(f"call {call_id} did not end in {timeout} s")
