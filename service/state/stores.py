"""The key-value interface shared state is kept behind, in the process and in Redis.

Values are bytes; every key written has a time to live (shared state is never kept for ever).
Users name their keys under their own prefix (``anthropic-proxy:<user>:``).
"""
from __future__ import annotations

import time
from typing import Callable, Protocol, Sequence

import redis.asyncio


class Store(Protocol):
    """What a user of shared state may do with a key."""

    async def get(self, key: str) -> bytes | None: ...

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]: ...

    async def set(self, key: str, value: bytes, ttl: float) -> None: ...

    async def delete(self, key: str) -> None: ...

    async def incr(self, key: str, amount: int, ttl: float) -> int:
        """Add ``amount`` to the key's counter (0 when absent, the TTL set then) and return it."""
        ...


class LocalStore:
    """The process's stand-in for Redis: a dict with expiries (swept as keys are read or written)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_keys: int = 100_000):
        self.clock, self.max_keys = clock, max_keys
        self._values: dict[str, tuple[bytes | int, float]] = {}

    def _live(self, key: str) -> bytes | int | None:
        found = self._values.get(key)
        if found is None:
            return None
        if found[1] <= self.clock():
            del self._values[key]
            return None
        return found[0]

    def _put(self, key: str, value: bytes | int, expires: float) -> None:
        if len(self._values) >= self.max_keys and key not in self._values:
            now = self.clock()
            self._values = {k: v for k, v in self._values.items() if v[1] > now}
            if len(self._values) >= self.max_keys:  # still full: the oldest written goes
                del self._values[next(iter(self._values))]
        self._values[key] = (value, expires)

    async def get(self, key: str) -> bytes | None:
        value = self._live(key)
        return str(value).encode() if isinstance(value, int) else value

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return [await self.get(key) for key in keys]

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        self._put(key, value, self.clock() + ttl)

    async def delete(self, key: str) -> None:
        self._values.pop(key, None)

    async def incr(self, key: str, amount: int, ttl: float) -> int:
        value = self._live(key)
        total = (int(value) if value is not None else 0) + amount
        expires = self._values[key][1] if value is not None else self.clock() + ttl
        self._put(key, total, expires)
        return total


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class RedisStore:
    """The same interface on a Redis client (one round trip per call)."""

    _INCR = "local n = redis.call('INCRBY', KEYS[1], ARGV[1]) " \
            "if n == tonumber(ARGV[1]) then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return n"

    def __init__(self, client: redis.asyncio.Redis):
        self.client = client
        self._incr = client.register_script(self._INCR)

    async def get(self, key: str) -> bytes | None:
        value: bytes | None = await self.client.get(key)
        return value

    async def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        return list(await self.client.mget(list(keys))) if keys else []

    async def set(self, key: str, value: bytes, ttl: float) -> None:
        await self.client.set(key, value, px=_ms(ttl))

    async def delete(self, key: str) -> None:
        await self.client.delete(key)

    async def incr(self, key: str, amount: int, ttl: float) -> int:
        return int(await self._incr(keys=[key], args=[amount, _ms(ttl)]))
