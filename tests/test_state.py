"""service.state: the key-value interface in process and in a real Redis, and the one outage tracker
(down and back said once each, Redis not tried again until the retry clock runs out)."""
from __future__ import annotations

import asyncio
import logging

import pytest

from service.state import LocalStore, SharedState
from tests.servers import REDIS_SERVER, RedisServer, free_port
from tests.test_threads import Clock, Records


async def _interface(store) -> None:
    assert await store.get("k") is None
    await store.set("k", b"v", 60)
    assert await store.get_many(["k", "missing"]) == [b"v", None]
    assert await store.incr("n", 2, 60) == 2
    assert await store.incr("n", 3, 60) == 5
    await store.delete("k")
    assert await store.get("k") is None


def test_the_local_store_keeps_keys_for_their_ttl():
    async def scenario():
        clock = Clock()
        store = LocalStore(clock)
        await _interface(store)
        await store.set("short", b"x", 5)
        clock.now += 4.9
        assert await store.get("short") == b"x"
        assert await store.incr("n", 1, 60) == 6     # an incr keeps the counter's first expiry
        clock.now += 0.2
        assert await store.get("short") is None
    asyncio.run(scenario())


def test_the_local_store_is_bounded():
    async def scenario():
        store = LocalStore(max_keys=3)
        for number in range(5):
            await store.set(f"k{number}", b"x", 60)
        assert await store.get_many([f"k{n}" for n in range(5)]) == [None, None, b"x", b"x", b"x"]
    asyncio.run(scenario())


@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")
def test_redis_serves_the_same_interface_with_expiries():
    async def scenario(url: str):
        state = SharedState(url)
        try:
            await _interface(state)
            assert (await state.run(lambda: state.client.pttl("n"), _never)).shared
            assert 0 < await state.client.pttl("n") <= 60_000
            assert await state.local.get("n") is None      # nothing went to the process
        finally:
            await state.close()
    with RedisServer() as server:
        asyncio.run(scenario(server.url))


async def _never():
    raise AssertionError("served by the process")


def test_an_unreachable_redis_is_said_once_and_tried_again_after_the_retry_clock():
    async def scenario():
        clock = Clock()
        state = SharedState(f"redis://:secret@127.0.0.1:{free_port()}/0", clock)
        tries = 0

        async def remote():
            nonlocal tries
            tries += 1
            return await state.client.get("k")

        async def local():
            return b"local"
        records = Records()
        logging.getLogger("proxy").addHandler(records)
        try:
            assert await state.run(remote, local) == (False, b"local")
            await state.set("k", b"v", 60)                    # the process serves, Redis is not tried
            assert await state.get("k") == b"v" and tries == 1
            clock.now += 10                                    # tried again, fails again: said once
            assert await state.run(remote, local) == (False, b"local") and tries == 2
        finally:
            logging.getLogger("proxy").removeHandler(records)
            await state.close()
        assert len(records.lines) == 1 and "is unreachable (ConnectionError" in records.lines[0], records.lines
        assert "secret" not in records.lines[0]
    asyncio.run(scenario())


def test_background_writes_finish_before_close():
    async def scenario():
        state = SharedState()
        state.spawn(state.set("k", b"v", 60))
        await state.close()
        assert await state.local.get("k") == b"v"
    asyncio.run(scenario())
