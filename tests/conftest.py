"""Shared fixtures: the fake Gemini server and the proxy in front of it."""
from __future__ import annotations

import atexit
import itertools
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# Hermetic: the proxies the tests start read no .env (the checkout's may hold a team's PROXY_API_KEY) and
# none of the proxy's settings a developer exported; each test gives the settings it means.
os.environ["ENV_FILE"] = "off"
for _name in ("PROXY_API_KEY", "PROXY_KEYS_FILE", "DATABASE_URL", "REDIS_URL", "SPEC_DIR", "BIG_MODEL", "SMALL_MODEL",
              "GEMINI_API_KEY", "GEMINI_API_KEYS", "GEMINI_API_BASE", "PROVIDER_PREFIXES", "CORS_ORIGINS"):
    os.environ.pop(_name, None)
# The in-process proxies' log records reach pytest (caplog, "Captured log") whichever test starts the first
# app: with a handler already on the "proxy" logger, the app leaves its records propagating to the root
# logger instead of writing them to stderr itself (service/web/logs.py configure_logging).
logging.getLogger("proxy").addHandler(logging.NullHandler())

from tests.fake_gemini import FakeGemini  # noqa: E402
from tests.postgres import database_url, postgres  # noqa: E402,F401 - fixtures of the tests run on both databases
from tests.servers import ProxyServer  # noqa: E402

SHARED = Path(__file__).resolve().parent.parent.parent / "shared"
FIXTURES = SHARED / "fixtures" / "claude-code"
TEST_KEY = "test-gemini-key-0123456789"
LEDGERS = Path(tempfile.mkdtemp(prefix="proxy-ledgers-"))  # each proxy's usage ledger, unless a test names one
_ledger_numbers = itertools.count()
atexit.register(shutil.rmtree, LEDGERS, True)


@pytest.fixture(scope="session")
def fake() -> Iterator[FakeGemini]:
    server = FakeGemini().start()
    yield server
    server.stop()


@pytest.fixture
def gemini(fake: FakeGemini) -> FakeGemini:
    """The fake, with an empty script and log for this test."""
    fake.reset()
    return fake


def proxy_env(fake: FakeGemini, **extra: str) -> dict[str, str]:
    env = {"GEMINI_API_KEY": TEST_KEY, "GEMINI_API_BASE": fake.base_url, "LOG_LEVEL": "WARNING",
           "DATABASE_URL": f"sqlite:///{LEDGERS / f'usage-{next(_ledger_numbers)}.db'}"}
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def proxy_defaults() -> dict[str, str]:
    """Settings every test-started proxy of this directory gets (a conftest.py below may override them)."""
    return {}


@pytest.fixture(scope="session")
def proxy(fake: FakeGemini, proxy_defaults: dict[str, str]) -> Iterator[ProxyServer]:
    with ProxyServer(proxy_env(fake, **proxy_defaults)) as server:
        yield server


@pytest.fixture
def make_proxy(fake: FakeGemini, proxy_defaults: dict[str, str]) -> Iterator[Callable[..., ProxyServer]]:
    """A proxy with its own settings, e.g. ``make_proxy(PING_INTERVAL_SECONDS="0.2")``."""
    started: list[ProxyServer] = []

    def make(**extra: str) -> ProxyServer:
        server = ProxyServer(proxy_env(fake, **{**proxy_defaults, **extra})).start()
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


def claude_code_fixtures(pattern: str = "*-request.json") -> list[Path]:
    return sorted(FIXTURES.glob(pattern)) if FIXTURES.is_dir() else []
