"""Real engines, loaded once per test session, behind real gateway servers on real sockets."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from live_server import serve_in_thread

from services.common.config import Settings
from services.gateway.app import create_app
from services.gateway.audiosocket.server import AudioSocketSettings
from services.gateway.call.policy import CallPolicy, HandoffTarget
from services.gateway.engines import Engines, load_engines
from tests.handoff.conftest import redis_url  # noqa: F401 (a real redis-server, a fixture)


@pytest.fixture(scope="session")
def gateway_settings(korean_model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The Korean Vosk model stands in for the Russian one (same engine, same API)."""
    return Settings(asr_model=korean_model_path, data_dir=tmp_path_factory.mktemp("gateway-data"))


@pytest.fixture(scope="session")
def engines(gateway_settings: Settings) -> Engines:
    return load_engines(gateway_settings)


@contextmanager
def running_gateway(
    settings: Settings, engines: Engines, policy: CallPolicy | None = None
) -> Iterator[str]:
    """A real uvicorn server in a thread; yields its base URL http://127.0.0.1:PORT. A handoff
    ends the call there, as with Asterisk's Queue() (test_e2e_operator.py runs the gateway's
    own queue)."""
    policy = policy or CallPolicy(handoff_to=HandoffTarget.DIALPLAN)
    app = create_app(
        settings, engines=engines, policy=policy, audiosocket=AudioSocketSettings(port=0)
    )
    with serve_in_thread(app) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def gateway(gateway_settings: Settings, engines: Engines) -> Iterator[str]:
    with running_gateway(gateway_settings, engines) as url:
        yield url


@pytest.fixture
def gateway_with(gateway_settings: Settings, engines: Engines) -> Callable:
    """A gateway with its own call policy (timeouts etc.), sharing the session's engines."""
    return lambda policy: running_gateway(gateway_settings, engines, policy)


def ws_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/call"


def active_calls(base: str) -> int:
    return httpx.get(base + "/readyz").json()["active_calls"]


def audiosocket_address(base: str) -> str:
    return httpx.get(base + "/readyz").json()["audiosocket"]
