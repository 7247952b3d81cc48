"""Running the proxy for tests: real Hypercorn on a free loopback port, in its own thread and loop.

A separate thread keeps the proxy's event loop independent of the test's, so synchronous clients
(the Anthropic SDK, subprocesses such as Claude Code) can call it without blocking it.
"""
from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from typing import Any

import httpx
from hypercorn.asyncio import serve
from hypercorn.config import Config

from service.app import create_app
from service.config import load_settings


class ProxyServer:
    def __init__(self, env: dict[str, str], scheme: str = "http", **hypercorn_options: Any):
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
