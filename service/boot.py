"""Serving from the first second: the proxy is imported and started behind this small ASGI app.

``hypercorn --config hypercorn.toml service.boot:app`` answers within a fraction of a second of the
worker's start, while ``service.app`` (LiteLLM, the tables, SQLAlchemy, Redis: several seconds of
imports, most of start-up) is imported in a thread and then started (its ``before_serving``: the
HTTP client, the ledger's database, the thread store) on the event loop. Until then:

- ``GET /health`` (liveness) and ``/`` answer 200: the process is up and serving;
- ``GET /ready`` (readiness) answers 503 with what is still missing, then the app's own 200;
- every other request waits for the app, up to ``READY_WAIT_SECONDS`` (30), and is then served.
  Waiting rather than refusing: a client started with its proxy (``claude`` behind a local proxy,
  a replica that a load balancer has just added) gets its answer a few seconds late instead of an
  error on its first prompt. Past the wait, or if the app failed to start, the answer is a 503
  ``overloaded_error`` in Anthropic's form, which Anthropic's SDKs and Claude Code retry.

Only the standard library (and service.web.connections, on Hypercorn's modules, which the worker has
already imported) is imported here: this module is what the worker imports before it serves.
The error text is here, not in spec/errors.yaml, because it is answered before any table is loaded.
"""
from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import os
import threading
import time
from typing import Any, Awaitable, Callable

from .web import connections

log = logging.getLogger("proxy")
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
MISSING = {"importing": ["tables loaded", "LiteLLM probed", "database reached"],
           "starting": ["database reached"], "failed": ["the app failed to start (see the log)"]}
EXIT_APP_FAILED = 3
NOT_READY = "The proxy is starting and cannot answer yet; retry in a few seconds."


def _json(status: int, value: Any) -> tuple[int, bytes]:
    return status, json.dumps(value).encode()


class Boot:
    """The worker's ASGI app: answers liveness and readiness at once, the proxy's app once it is up."""

    def __init__(self, target: str = "service.app:app", wait_seconds: float | None = None,
                 exit_on_failure: bool = True):
        self.target, self.exit_on_failure = target, exit_on_failure
        self.wait_seconds = float(os.environ.get("READY_WAIT_SECONDS", "30")) if wait_seconds is None else wait_seconds
        self.stage = "importing"          # then "starting", then "ready" or "failed"
        self.inner: Any = None            # the proxy's Quart app, once imported
        self.ready: asyncio.Event | None = None
        self.to_inner: asyncio.Queue = asyncio.Queue()    # lifespan messages for the inner app
        self.from_inner: asyncio.Queue = asyncio.Queue()  # and its answers
        self.tasks: set[asyncio.Task] = set()
        self.waiting = 0                  # requests waiting for the app
        self.began = time.monotonic()

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
        elif self.stage == "ready":
            await self.inner(scope, receive, send)
        elif scope["type"] == "http" and scope["path"] in ("/health", "/"):
            await _answer(send, *_json(503 if self.stage == "failed" else 200, {"status": self.stage}))
        elif scope["type"] == "http" and scope["path"] == "/ready":
            await _answer(send, *_json(503, {"status": self.stage, "missing": MISSING[self.stage],
                                             "waiting_requests": self.waiting}))
        else:
            await self._when_ready(scope, receive, send)

    async def _when_ready(self, scope: dict, receive: Receive, send: Send) -> None:
        if self.ready is not None and self.stage != "failed":
            self.waiting += 1
            try:
                async with asyncio.timeout(self.wait_seconds):
                    await self.ready.wait()
            except TimeoutError:
                pass
            finally:
                self.waiting -= 1
        if self.stage == "ready":
            await self.inner(scope, receive, send)
        elif scope["type"] == "http":
            await _drain(receive)
            await _answer(send, *_json(503, {"type": "error", "error": {"type": "overloaded_error",
                                                                        "message": NOT_READY}}), retry=True)

    async def _lifespan(self, scope: dict, receive: Receive, send: Send) -> None:
        """Hypercorn's lifespan: serve at once, start the app behind, stop it at the end."""
        await receive()  # lifespan.startup
        connections.install()  # before the first connection, not once the app is imported
        self.ready = asyncio.Event()
        task = asyncio.get_running_loop().create_task(self._start(scope))
        self.tasks.add(task)
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        if self.stage == "ready":
            await self.to_inner.put({"type": "lifespan.shutdown"})
            await self.from_inner.get()
        task.cancel()
        await send({"type": "lifespan.shutdown.complete"})

    async def _start(self, scope: dict) -> None:
        try:
            self.inner = await self._import()
            self.stage = "starting"
            lifespan = asyncio.get_running_loop().create_task(self.inner(scope, self.to_inner.get, self.from_inner.put))
            self.tasks.add(lifespan)
            await self.to_inner.put({"type": "lifespan.startup"})
            reply = await self.from_inner.get()
            if reply["type"] != "lifespan.startup.complete":
                raise RuntimeError(reply.get("message") or reply["type"])
            self.stage = "ready"
            log.info("ready in %.2fs", time.monotonic() - self.began)
        except Exception:
            self.stage = "failed"
            log.exception("the proxy's app failed to start")
            if self.exit_on_failure:
                # As when the app's import failed in the worker before serving: the worker exits with an
                # error and Hypercorn's master stops the server with it (and a supervisor sees it).
                logging.shutdown()
                os._exit(EXIT_APP_FAILED)
        finally:
            assert self.ready is not None
            self.ready.set()

    def _import(self) -> asyncio.Future:
        """The app, imported in a daemon thread (a worker stopped while importing need not wait for it)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        module, _, name = self.target.partition(":")

        def run() -> None:
            try:
                outcome, value = future.set_result, getattr(importlib.import_module(module), name)
            except BaseException as exc:  # noqa: BLE001 - handed to the loop, which logs it
                outcome, value = future.set_exception, exc
            with contextlib.suppress(RuntimeError):  # the loop is gone: the worker stopped meanwhile
                loop.call_soon_threadsafe(outcome, value)

        threading.Thread(target=run, name="proxy-import", daemon=True).start()
        return future


async def _drain(receive: Receive) -> None:
    """Read the request body to its end (closing a socket with unread input resets the answer)."""
    message = await receive()
    while message.get("more_body"):
        message = await receive()


async def _answer(send: Send, status: int, body: bytes, retry: bool = False) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry:
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


app = Boot()
