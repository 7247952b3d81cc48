"""Running the proxy for tests: real Hypercorn on a free loopback port, in its own thread and loop.

A separate thread keeps the proxy's event loop independent of the test's, so synchronous clients
(the Anthropic SDK, subprocesses such as Claude Code) can call it without blocking it.
"""
from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from hypercorn.asyncio import serve
from hypercorn.config import Config

from service.config import load_settings


class ProxyServer:
    def __init__(self, env: dict[str, str], scheme: str = "http", **hypercorn_options: Any):
        # Imported here, not with this module: conftest.py imports it, and the translator's tests must run
        # without the app (and LiteLLM, whose start-up probe refuses a LiteLLM that moved).
        from service.app import create_app
        self.settings = load_settings(environ=env, env_file=None)
        self.app = create_app(self.settings)
        self.options = hypercorn_options
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(1024)  # connections wait in the backlog until Hypercorn accepts them
        self.port = sock.getsockname()[1]
        self._sock = sock
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        certfile = hypercorn_options.get("certfile")
        self._verify = ssl.create_default_context(cafile=certfile) if certfile else True
        self.error: BaseException | None = None

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._stop = asyncio.Event()
        config = Config.from_mapping(bind=[f"fd://{self._sock.detach()}"], accesslog=None, errorlog=None,
                                     graceful_timeout=2, keep_alive_max_requests=100000, **self.options)
        try:
            self._loop.run_until_complete(self._serve(config))
        except BaseException as exc:  # noqa: BLE001 - surfaced to the test through start()
            self.error = exc

    async def _serve(self, config: Config) -> None:
        await serve(self.app, config, shutdown_trigger=self._stop.wait)

    def start(self) -> "ProxyServer":
        self._thread.start()
        # The first answer from /health shows Hypercorn is serving (the socket already listens).
        response = httpx.get(self.url + "/health", timeout=30, verify=self._verify)
        if response.status_code != 200 or self.error:
            raise RuntimeError(f"proxy did not start: {self.error or response.status_code}")
        return self

    def run(self, coro: Any, timeout: float = 30) -> Any:
        """Run a coroutine on the proxy's loop (to inspect its tasks, for instance)."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def stop(self) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)

    def __enter__(self) -> "ProxyServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class HypercornProcess:
    """The README's command (``hypercorn --config hypercorn.toml service.app:app``) in a process of
    its own session, so that a test can signal the master alone or the whole process group.

    ``config`` replaces lines of the project's hypercorn.toml (``{"graceful_timeout": "3"}``)."""

    def __init__(self, env: dict[str, str], config: dict[str, str] | None = None, directory: Any = None):
        self.port = free_port()
        text = (ROOT / "hypercorn.toml").read_text().replace("127.0.0.1:8082", f"127.0.0.1:{self.port}")
        for name, value in (config or {}).items():
            text, count = re.subn(rf"(?m)^{name} = .*$", f"{name} = {value}", text)
            text += "" if count else f"\n{name} = {value}\n"
        path = directory / "hypercorn.toml"
        path.write_text(text)
        self.url = f"http://127.0.0.1:{self.port}"
        ledger = {"DATABASE_URL": f"sqlite:///{directory / 'usage.db'}"}  # not the working directory's default
        self.process = subprocess.Popen([sys.executable, "-m", "hypercorn", "--config", str(path), "service.app:app"],
                                        cwd=ROOT, env={**os.environ, **ledger, **env}, start_new_session=True,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def start(self, timeout: float = 180) -> "HypercornProcess":  # LiteLLM 1.110 starts slower on a busy box
        deadline = time.monotonic() + timeout
        while True:
            try:
                httpx.get(self.url + "/health", timeout=1)
                return self
            except httpx.TransportError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("hypercorn did not start: " + self.stop())
                time.sleep(0.1)  # polling for readiness, not synchronising on it

    def stop(self) -> str:
        """Kill what is left and return what the server wrote to stderr."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        return self.process.stderr.read() if self.process.stderr else ""


REDIS_SERVER = shutil.which("redis-server")


class RedisServer:
    """A real ``redis-server`` on a free loopback port, without persistence; ``stop()`` kills it (a crash)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 10) -> "RedisServer":
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server is not installed (Debian: apt-get install redis-server)")
        self.process = subprocess.Popen([REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)  # polling for readiness, not synchronising on it

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> "RedisServer":
        running = self.process is not None and self.process.poll() is None
        return self if running else self.start()   # ``with RedisServer().start()`` starts one server, not two

    def __exit__(self, *exc: Any) -> None:
        self.stop()
