"""Whether the request being served is big enough that its CPU-heavy steps run in a worker thread.

The steps of a long Claude Code turn each cost ~40-60 µs of CPU per KB of request (decoding,
translating, LiteLLM's body, measured by bench/big_turn.py), and while one runs on the event loop
every other request and stream waits. Above ``OFFLOAD_BYTES`` (256 KiB: no step of such a request
holds the loop for more than ~15 ms) they run in a worker thread instead. The routes decide per
request (:func:`mark`); steps that run later, in the task reading the upstream (the Gemini body
that LiteLLM builds), ask :func:`run`, which sees the mark through the task's context.
"""
from __future__ import annotations

import asyncio
import contextvars
import sys
from typing import Callable, TypeVar

Result = TypeVar("Result")
BIG: contextvars.ContextVar[bool] = contextvars.ContextVar("offload_big", default=False)
SWITCH_INTERVAL_SECONDS = 0.001


def install() -> None:
    """Let the event loop have the GIL back within 1 ms of asking for it (Python's default is 5 ms).

    A worker thread translating a big request holds the GIL until the interval passes; every step
    the loop takes for another request (reading it, answering it, a stream's next event) waits that
    long, several times over. Only threads that compete pay for switching: a request served on the
    loop alone runs as before (bench/big_turn.py --stall measures the difference)."""
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)


def mark(size: int, offload_bytes: int) -> None:
    """Note whether the request being served (of ``size`` bytes) is to be worked on in threads."""
    BIG.set(size > offload_bytes)


async def run(function: Callable[[], Result]) -> Result:
    """``function()``, in a worker thread when the request being served is big."""
    return await asyncio.to_thread(function) if BIG.get() else function()
