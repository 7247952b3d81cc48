"""Stopping without losing anything: SIGTERM and SIGINT drain the worker, whoever gets them.

Hypercorn drains a worker when its master tells it to, but a worker process has no handler of its
own: SIGTERM to the process group (systemd, ``kill -TERM -PGID``) killed it with every stream in
flight. And during a drain the master still holds the listening socket, so new connections waited
in its backlog until they were reset. The proxy therefore takes part in the drain:

- the worker handles SIGTERM and SIGINT by starting Hypercorn's own drain (its ``terminate`` event);
- when the drain begins, the listening sockets are shut down at once (if the whole server is
  stopping), so new connections are refused and clients retry elsewhere instead of hanging;
- just before Hypercorn's ``graceful_timeout`` is up, answers still running end with an
  ``overloaded_error`` (an ``error`` event for streams, a 529 otherwise): clients retry those.

This needs three locals of Hypercorn's ``worker_serve`` coroutine (``context``, ``sockets``,
``config``); :func:`check_hypercorn` verifies at start-up that they are where this expects them.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import socket
from types import FrameType
from typing import Any

from importlib.metadata import version

from translator import AnthropicError

log = logging.getLogger("proxy")
NEEDED = ("context", "sockets", "config", "shutdown_trigger")


def _worker_frame() -> FrameType | None:
    """The frame of Hypercorn's ``worker_serve``, found through the awaits of the running tasks."""
    for task in asyncio.all_tasks():
        coro: Any = task.get_coro()
        while coro is not None:
            code = getattr(coro, "cr_code", None)
            if code is not None and code.co_name == "worker_serve" and "hypercorn" in code.co_filename:
                return coro.cr_frame
            coro = getattr(coro, "cr_await", None)
    return None


def check_hypercorn() -> FrameType | None:
    """Hypercorn's worker frame, or None (with an error naming the version) if it has moved."""
    frame = _worker_frame()
    if frame is None or not set(NEEDED) <= {*frame.f_code.co_varnames, *frame.f_code.co_cellvars}:
        log.error("Hypercorn %s: worker_serve was not found as expected; SIGTERM and shutdown "
                  "draining fall back to Hypercorn's own behaviour.", version("hypercorn"))
        return None
    return frame


class Lifecycle:
    """The answers in flight, and what a drain does to them."""

    def __init__(self, shutting_down: AnthropicError) -> None:
        self.shutting_down = shutting_down  # what the answers still running at the end get (errors.yaml)
        self.live: set = set()     # streaming.UpstreamStream objects, streamed to the client or not
        self.frame: FrameType | None = None
        self.drain: asyncio.Task | None = None
        self.listeners: list[socket.socket] = []  # our own handles: Hypercorn closes its own at the drain

    def install(self) -> None:
        """At start-up, in the worker: find Hypercorn, and take SIGTERM/SIGINT."""
        self.frame = check_hypercorn()
        if self.frame is None:
            return
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(signum, self._on_signal, signum)
            except (ValueError, RuntimeError, NotImplementedError):
                return  # not the main thread (an embedded server): the embedder stops it

    def watch(self) -> None:
        """From the first request on (Hypercorn's context exists by then), wait for the drain."""
        if self.drain is None and self._local("context") is not None:
            sockets = self._local("sockets")
            self.listeners = [sock.dup() for sock in (*sockets.secure_sockets, *sockets.insecure_sockets)]
            self.drain = asyncio.get_running_loop().create_task(self._drain())

    async def close(self) -> None:
        """At the end of serving: the drain watcher has nothing left to do."""
        if self.drain is not None:
            self.drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.drain

    def _on_signal(self, signum: int) -> None:
        context = self._local("context")
        if context is None:  # still starting: nothing to drain
            signal.signal(signum, signal.SIG_DFL)
            signal.raise_signal(signum)
            return
        log.warning("%s: draining (graceful_timeout %gs)", signal.Signals(signum).name,
                    self._local("config").graceful_timeout)
        self.watch()
        asyncio.get_running_loop().create_task(context.terminate.set())

    def _local(self, name: str) -> Any:
        return self.frame.f_locals.get(name) if self.frame else None

    async def _drain(self) -> None:
        await self._local("context").terminated.wait()
        config = self._local("config")
        grace = config.graceful_timeout
        loop = asyncio.get_running_loop()
        ends = loop.time() + grace - min(2.0, grace / 10)
        await self._close_listeners_when_stopping(ends)
        await asyncio.sleep(max(0.0, ends - loop.time()))
        if self.live:
            log.warning("graceful_timeout is up: ending %d answers with overloaded_error", len(self.live))
        for answer in list(self.live):
            await answer.stop(self.shutting_down)

    async def _close_listeners_when_stopping(self, ends: float) -> None:
        """Refuse new connections once the whole server stops (not when one worker of several restarts).

        Hypercorn's master keeps the listening socket open until its workers are gone, so closing
        the worker's own handle is not enough: the socket itself is shut down. A worker started by
        the master learns that the server stops through the master's shutdown event, which
        Hypercorn itself polls every 0.1 s; the same is done here until the drain ends."""
        trigger = self._local("shutdown_trigger")
        event = trigger.args[0] if isinstance(trigger, functools.partial) and trigger.args else None
        loop = asyncio.get_running_loop()
        while event is not None and not event.is_set() and loop.time() < ends:
            await asyncio.sleep(0.1)
        stopping = event is None or event.is_set()
        for sock in self.listeners:
            if stopping:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self.listeners = []
