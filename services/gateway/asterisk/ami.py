"""A small asyncio AMI client: actions with their replies, events, reconnects.

Written here rather than taken from PyPI: `panoramisk` 1.4 (the usual choice, last released in
2021) reconnects even after `close()` — its `connection_lost` always schedules a new connect —
and is untyped; the protocol itself is a few lines of `Key: Value` blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from services.common.logging import get_logger

log = get_logger("gateway.ami")


class AmiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VOICEBOT_AMI_", extra="ignore")

    enabled: bool = False  # follow Asterisk's own Queue() over AMI (deploy/asterisk/README.md)
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = "voicebot"
    secret: SecretStr = SecretStr("")
    reconnect_s: float = 2.0  # wait between connection attempts while Asterisk is down
    action_timeout_s: float = 10.0
    # Callbacks (abandoned callers, requests) are placed with Originate: the channel dialled
    # ({number}: the callback's number), where the answered callee goes ({queue}: its queue).
    callbacks: bool = True  # one gateway per Asterisk places them
    callback_channel: str = "Local/{number}@voicebot-callback-out"
    callback_context: str = "voicebot-callback"
    callback_exten: str = "{queue}"
    callback_caller_id: str = ""
    callback_ring_s: float = 30.0  # unanswered for this long: no answer
    callback_retry_s: float = 300.0
    callback_max_attempts: int = 3
    poll_s: float = 5.0  # due callbacks are looked for this often


class AmiError(Exception):
    """An action failed: not connected, no reply in time, or `Response: Error`."""


@dataclass
class Message:
    """One AMI block. `ChanVariable`/`DestChanVariable` lines (manager.conf `channelvars=`)
    land in `variables` / `dest_variables`; other keys keep their last value."""

    fields: dict[str, str] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)
    dest_variables: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, key: str) -> str:
        return self.fields[key]

    def get(self, key: str, default: str = "") -> str:
        return self.fields.get(key, default)

    @property
    def event(self) -> str | None:
        return self.fields.get("Event")

    @classmethod
    def parse(cls, block: str) -> Message:
        message = cls()
        for line in block.split("\r\n"):
            key, sep, value = line.partition(":")
            if not sep:
                continue
            value = value.strip()
            if key in ("ChanVariable", "DestChanVariable"):
                name, _, val = value.partition("=")
                (message.variables if key == "ChanVariable" else message.dest_variables)[name] = val
            elif key.startswith("ChanVariable(") and key.endswith(")"):  # Asterisk 1.8-11 form
                message.variables[key[13:-1]] = value
            else:
                message.fields[key] = value
        return message


def encode(action: str, fields: dict[str, str], variables: dict[str, str]) -> bytes:
    for text in (action, *fields.values(), *variables.values()):
        if "\r" in text or "\n" in text:
            raise ValueError(f"a line break in an AMI field: {text!r}")
    lines = [f"Action: {action}", *(f"{k}: {v}" for k, v in fields.items())]
    lines += [f"Variable: {k}={v}" for k, v in variables.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


EventHandler = Callable[[Message], Awaitable[None]]
ConnectHandler = Callable[[], Awaitable[None]]


class AmiClient:
    """Keeps one logged-in connection while `run()` runs; hands every event to `on_event`, and
    runs `on_connect` (in a task of its own) after every login."""

    def __init__(
        self,
        settings: AmiSettings,
        on_event: EventHandler,
        on_connect: ConnectHandler | None = None,
    ) -> None:
        self._settings, self._on_event, self._on_connect = settings, on_event, on_connect
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[str, asyncio.Future[Message]] = {}
        self._lists: dict[str, tuple[list[Message], asyncio.Future[None]]] = {}
        self._ids = itertools.count(1)
        self.connected = asyncio.Event()
        self.last_error = "not connected yet"

    @property
    def status(self) -> str:
        return "connected" if self.connected.is_set() else f"down: {self.last_error}"

    async def run(self) -> None:
        """Connect, log in and read until cancelled; reconnects whenever Asterisk goes away."""
        reported = ""
        while True:
            try:
                await self._session()
                self.last_error = "Asterisk closed the connection"
            except (OSError, AmiError, asyncio.IncompleteReadError, TimeoutError) as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
            finally:
                if self.connected.is_set():  # it was up: its loss is news again
                    reported = ""
                self._drop()
            if self.last_error != reported:  # once per way of failing, not every retry
                log.warning("ami_down", error=self.last_error, retry_s=self._settings.reconnect_s)
                reported = self.last_error
            await asyncio.sleep(self._settings.reconnect_s)

    async def action(
        self, action: str, variables: dict[str, str] | None = None, **fields: str
    ) -> Message:
        """Send an action and return its `Response: Success` block (AmiError otherwise). An
        `ActionID` given is kept (to match the events an async action sends later)."""
        writer = self._writer
        if writer is None or not self.connected.is_set():
            raise AmiError(f"AMI not connected ({self.last_error})")
        return await self._send(writer, action, variables or {}, fields)

    async def action_list(self, action: str, **fields: str) -> list[Message]:
        """An action answered by a list of events (QueueStatus, ...): the events, in order."""
        action_id = f"vb-{next(self._ids)}"
        complete = asyncio.get_running_loop().create_future()
        self._lists[action_id] = ([], complete)
        try:
            await self.action(action, None, ActionID=action_id, **fields)
            async with asyncio.timeout(self._settings.action_timeout_s):
                await complete
            return self._lists[action_id][0]
        except TimeoutError as exc:
            raise AmiError(f"{action}: the list did not complete") from exc
        finally:
            self._lists.pop(action_id, None)

    async def _send(
        self,
        writer: asyncio.StreamWriter,
        action: str,
        variables: dict[str, str],
        fields: dict[str, str],
    ) -> Message:
        action_id = fields.pop("ActionID", None) or f"vb-{next(self._ids)}"
        reply = asyncio.get_running_loop().create_future()
        self._pending[action_id] = reply
        try:
            writer.write(encode(action, {"ActionID": action_id, **fields}, variables))
            await writer.drain()
            async with asyncio.timeout(self._settings.action_timeout_s):
                message = await reply
        except (OSError, TimeoutError) as exc:
            raise AmiError(f"{action}: {type(exc).__name__} {exc}") from exc
        finally:
            self._pending.pop(action_id, None)
        if message.get("Response") != "Success":
            raise AmiError(f"{action}: {message.get('Message') or message.get('Response')}")
        return message

    async def _session(self) -> None:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(self._settings.host, self._settings.port),
            self._settings.action_timeout_s,
        )
        self._writer = writer
        try:
            await reader.readline()  # "Asterisk Call Manager/x.y.z"
            reading = asyncio.create_task(self._read(reader))
            tasks = [reading]
            try:
                await self._send(
                    writer,
                    "Login",
                    {},
                    {
                        "Username": self._settings.username,
                        "Secret": self._settings.secret.get_secret_value(),
                        "Events": "on",
                    },
                )
                self.connected.set()
                log.info("ami_connected", host=self._settings.host, port=self._settings.port)
                if self._on_connect is not None:
                    tasks.append(asyncio.create_task(self._connected()))
                await reading
            finally:
                for task in tasks:
                    task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await asyncio.gather(*tasks)
        finally:
            writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while True:
            block = (await reader.readuntil(b"\r\n\r\n")).decode("utf-8", "replace")
            message = Message.parse(block)
            listed = self._lists.get(message.get("ActionID"))
            if listed is not None and message.event is not None:  # its items, then its end
                if message.get("EventList") == "Complete":
                    listed[1].set_result(None)
                else:
                    listed[0].append(message)
                continue
            if message.event is None:
                if (reply := self._pending.get(message.get("ActionID"))) and not reply.done():
                    reply.set_result(message)
                continue
            try:
                await self._on_event(message)
            except Exception:  # one bad handler run must not take the connection down
                log.exception("ami_event_handler_failed", event=message.event)

    async def _connected(self) -> None:
        assert self._on_connect is not None
        try:
            await self._on_connect()
        except Exception:  # reported; the connection stays
            log.exception("ami_on_connect_failed")

    def _drop(self) -> None:
        self.connected.clear()
        self._writer = None
        for reply in self._pending.values():
            if not reply.done():
                reply.set_exception(AmiError(f"AMI connection lost ({self.last_error})"))
        self._pending.clear()
