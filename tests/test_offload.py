"""Big requests' CPU-heavy steps run in a worker thread (service/offload.py), small ones on the loop,
and the loop gets the GIL back from such a thread within a millisecond."""
from __future__ import annotations

import asyncio
import contextvars
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
    before = sys.getswitchinterval()
    try:
        offload.install()
        assert sys.getswitchinterval() == offload.SWITCH_INTERVAL_SECONDS < before
    finally:
        sys.setswitchinterval(before)
