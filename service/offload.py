"""Whether the request being served is big enough that its CPU-heavy steps run in a worker thread.

The steps of a long Claude Code turn each cost ~40-60 µs of CPU per KB of request (decoding,
translating, LiteLLM's body, measured by bench/big_turn.py), and while one runs on the event loop
every other request and stream waits. Above ``OFFLOAD_BYTES`` (256 KiB: no step of such a request
holds the loop for more than ~15 ms) they run in a worker thread instead. The cost is measured in
bytes of such a turn (:func:`weight`): a body of many small messages costs far more per byte. The
routes decide per request (:func:`mark`); steps that run later, in the task reading the upstream
(the Gemini body that LiteLLM builds), ask :func:`run`, which sees the mark through the task's context.
"""
from __future__ import annotations

import asyncio
import contextvars
import sys
from typing import Any, Callable, TypeVar

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


# What translating one message or content block costs beyond its bytes, in bytes of a Claude Code turn:
# ~10 µs a part for a body of one-letter messages (which cost 240-340 µs a KB) against 40-60 µs a KB.
PART_BYTES = 256


def weight(body: Any, size: int) -> int:
    """A request's translation cost in bytes of a Claude Code turn: its ``size`` and PART_BYTES for each
    of its messages and content blocks."""
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list):
        return size
    blocks = sum(len(content) for message in messages if isinstance(message, dict)
                 and isinstance(content := message.get("content"), list))
    return size + PART_BYTES * (len(messages) + blocks)


def mark(size: int, offload_bytes: int) -> None:
    """Note whether the request being served (of ``size`` bytes) is to be worked on in threads."""
    BIG.set(size > offload_bytes)


async def run(function: Callable[[], Result]) -> Result:
    """``function()``, in a worker thread when the request being served is big."""
    return await asyncio.to_thread(function) if BIG.get() else function()
