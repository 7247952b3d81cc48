"""Shared state: Redis when ``REDIS_URL`` is set and answering, this process otherwise.

:class:`SharedState` owns the one Redis client (one connection pool; the ``limits`` library's
storage and the thread store's scripts use the same pool), the one :class:`Outage` tracker and
the in-process fallback. Every user goes through :meth:`SharedState.run`, the one place that
tries Redis, falls back to the process, and says so once. Writes nobody waits for (a key's rest,
a rate limit's charge) are started with :meth:`SharedState.spawn`, so a request never waits on them.
"""
from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Awaitable, Callable, Coroutine, NamedTuple, Sequence, TypeVar

import redis.asyncio
from limits.errors import StorageError
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from .outage import Outage
from .stores import LocalStore, RedisStore, Store

T = TypeVar("T")
TIMEOUT_SECONDS = 1.0   # connect and answer; past it Redis is taken as down (the retry clock starts)
# What a Redis that does not answer raises, through redis-py or the limits library.
UNREACHABLE = (RedisError, StorageError, OSError, TimeoutError)


class Served(NamedTuple):
    """An operation's result, and whether Redis (True) or the process (False) served it."""

    shared: bool
    value: Any


def redis_client(url: str) -> redis.asyncio.Redis:
    """A client that fails fast: an unreachable Redis sends state to the process, not to a wait."""
    return redis.asyncio.Redis.from_url(url, socket_connect_timeout=TIMEOUT_SECONDS, socket_timeout=TIMEOUT_SECONDS,
                                        retry=Retry(NoBackoff(), 0))


class SharedState:
    """The key-value :class:`Store` interface (``get``/``get_many``/``set``/``delete``/``incr``) on Redis
    with the process as fallback, plus ``run`` for users with their own Redis operations."""

    def __init__(self, url: str = "", clock: Callable[[], float] = time.monotonic):
        self.url = url
        self.client: redis.asyncio.Redis | None = redis_client(url) if url else None
        self.outage = Outage(url, clock)
        self.local = LocalStore(clock)
        self.remote: Store | None = RedisStore(self.client) if self.client is not None else None
        self._pending: set[asyncio.Task[Any]] = set()

    @property
    def shared(self) -> bool:
        """Whether Redis is configured (whether or not it answers now)."""
        return self.client is not None

    async def run(self, remote: Callable[[], Awaitable[T]] | None, local: Callable[[], Awaitable[T]]) -> Served:
        """``remote()`` when Redis is configured and not known down, else (or when it fails) ``local()``."""
        if remote is not None and self.client is not None and self.outage.worth_trying():
            try:
                value = await remote()
            except UNREACHABLE as exc:
                self.outage.failed(exc)
            else:
                self.outage.answered()
                return Served(True, value)
        return Served(False, await local())

    async def _on_either(self, operation: Callable[[Store], Awaitable[T]]) -> T:
        remote = self.remote
        served = await self.run(None if remote is None else (lambda: operation(remote)),
                                lambda: operation(self.local))
        return served.value  # type: ignore[no-any-return]

    async def get(self, key: str) -> bytes | None:
        return await self._on_either(lambda store: store.get(key))

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return await self._on_either(lambda store: store.get_many(keys))

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        await self._on_either(lambda store: store.set(key, value, ttl))

    async def delete(self, key: str) -> None:
        await self._on_either(lambda store: store.delete(key))

    async def incr(self, key: str, amount: int, ttl: float) -> int:
        return await self._on_either(lambda store: store.incr(key, amount, ttl))

    def spawn(self, work: Coroutine[Any, Any, Any]) -> None:
        """Run ``work`` off the caller's path; :meth:`close` waits for what is still running."""
        task = asyncio.get_running_loop().create_task(work)
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def close(self) -> None:
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        if self.client is not None:
            with contextlib.suppress(*UNREACHABLE):
                await self.client.aclose()
