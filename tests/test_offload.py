"""Big requests' CPU-heavy steps run in a worker thread (service/offload.py), small ones on the loop,
and the loop gets the GIL back from such a thread within a millisecond."""
from __future__ import annotations

import asyncio
import contextvars
import json
import sys
import threading

from service import offload


def _thread_of(size: int) -> int:
    async def served() -> int:
        offload.mark(size, 1000)
        return await offload.run(threading.get_ident)

    return asyncio.run(served())


def test_a_request_over_the_threshold_runs_in_a_worker_thread() -> None:
    here = threading.get_ident()
    assert _thread_of(1001) != here
    assert _thread_of(1000) == here


def test_the_mark_belongs_to_the_request_that_set_it() -> None:
    async def both() -> tuple[bool, bool]:
        async def big() -> bool:
            offload.mark(5000, 1000)
            await asyncio.sleep(0)
            return offload.BIG.get()

        async def small() -> bool:
            offload.mark(10, 1000)
            await asyncio.sleep(0)
            return offload.BIG.get()

        found = await asyncio.gather(asyncio.create_task(big()), asyncio.create_task(small()))
        return found[0], found[1]

    assert contextvars.copy_context().run(asyncio.run, both()) == (True, False)


def test_install_shortens_the_switch_interval() -> None:
    before = sys.getswitchinterval()   # an app built by an earlier test has installed it already
    try:
        sys.setswitchinterval(0.005)      # Python's default
        offload.install()
        assert sys.getswitchinterval() == offload.SWITCH_INTERVAL_SECONDS < 0.005
    finally:
        sys.setswitchinterval(before)


def _tiny_messages(count: int) -> dict:
    messages = [{"role": ("user", "assistant")[n % 2], "content": [{"type": "text", "text": "a"}]}
                for n in range(count)]
    return {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": messages}


def test_a_body_of_many_small_messages_weighs_more_than_its_bytes() -> None:
    body = _tiny_messages(2000)   # ~120 KB, which translates in ~40 ms: too long on the loop
    size = len(json.dumps(body))
    assert size < 256 * 1024 < offload.weight(body, size)
    assert offload.weight(body, size) == size + offload.PART_BYTES * 4000


def test_a_claude_code_sized_turn_weighs_about_its_bytes() -> None:
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "x" * 5000}] * 4}] * 10}
    size = len(json.dumps(body))
    assert offload.weight(body, size) < size * 1.15
    assert offload.weight("not a body", 7) == offload.weight({"messages": "no list"}, 7) == 7
