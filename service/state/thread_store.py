"""Where message threads are kept: in process, or in Redis (``REDIS_URL``) for every replica.

A stored reply holds its thread (``translator.kept_thread``) and can be continued once. A
continue first *holds* the reply it continues from (the mark that answers
``thread_continue_in_flight``); storing the new reply turns the previous one into ``CONTINUED``
(the mark that answers ``thread_already_continued``; its conversation lives on in the new reply)
and ends the hold; a turn that fails only ends the hold. Each step is atomic: on the one event
loop in process, in a Lua script in Redis, so the rules hold across replicas too.

A thread is best-effort: a lost one costs the client a replay (the SDKs answer
``thread_not_found`` by sending the whole conversation again), never a failed request. So when
Redis does not answer, the proxy says so once in its log and keeps threads in process until Redis
answers again; a thread stored only in Redis then
reads as not found, which the client recovers from. The fallback, the retry clock and the log lines
are service.state's, shared with every other user of Redis.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, cast

import redis.asyncio

from . import SharedState

CONTINUED = b""          # what a continued reply holds instead of its thread
ENTRY_OVERHEAD = 100     # bytes counted per in-process entry besides its id and thread
KEY_PREFIX = "anthropic-proxy:thread:"

# Lookup states: "held" and "found" carry the thread; the others name the error (threads.yaml).
MISSING, WAS_CONTINUED, IN_FLIGHT = "thread_not_found", "thread_already_continued", "thread_continue_in_flight"
Lookup = tuple[str, bytes]


@dataclass
class _Entry:
    data: bytes
    expires: float
    holder: str | None = None
    held_until: float = 0.0


class LocalThreads:
    """Threads in this process: at most ``max_bytes`` of them, the least recently stored dropped first."""

    def __init__(self, ttl: float, max_bytes: int, clock: Callable[[], float] = time.monotonic):
        self.ttl, self.max_bytes, self.clock = ttl, max_bytes, clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()   # oldest stored (and so expiring) first
        self.size = 0

    def _live(self, message_id: str) -> _Entry | None:
        now = self.clock()
        while self._entries and next(iter(self._entries.values())).expires <= now:
            self._drop(next(iter(self._entries)))
        return self._entries.get(message_id)

    def _drop(self, message_id: str) -> None:
        entry = self._entries.pop(message_id)
        self.size -= len(message_id) + len(entry.data) + ENTRY_OVERHEAD

    def _store(self, message_id: str, data: bytes) -> None:
        if message_id in self._entries:
            self._drop(message_id)
        cost = len(message_id) + len(data) + ENTRY_OVERHEAD
        if cost > self.max_bytes:
            return  # larger than the whole store: the next continue finds nothing and replays
        self._entries[message_id] = _Entry(data, self.clock() + self.ttl)
        self.size += cost
        while self.size > self.max_bytes:
            self._drop(next(iter(self._entries)))

    async def begin(self, message_id: str, holder: str, hold: float) -> Lookup:
        entry = self._live(message_id)
        if entry is None:
            return MISSING, b""
        if entry.data == CONTINUED:
            return WAS_CONTINUED, b""
        now = self.clock()
        if entry.holder is not None and entry.held_until > now:
            return IN_FLIGHT, b""
        entry.holder, entry.held_until = holder, now + hold
        return "held", entry.data

    async def peek(self, message_id: str) -> Lookup:
        entry = self._live(message_id)
        if entry is None:
            return MISSING, b""
        return (WAS_CONTINUED, b"") if entry.data == CONTINUED else ("found", entry.data)

    async def put(self, message_id: str, data: bytes, previous: str | None, holder: str | None) -> None:
        if previous is not None:
            self._store(previous, CONTINUED)
        self._store(message_id, data)

    async def release(self, previous: str, holder: str) -> None:
        entry = self._entries.get(previous)
        if entry is not None and entry.holder == holder:
            entry.holder = None


# KEYS[1]: the reply's thread, KEYS[2]: its hold. ARGV: holder, hold (ms).
_BEGIN = """
local kept = redis.call('GET', KEYS[1])
if not kept then return {'thread_not_found'} end
if kept == '' then return {'thread_already_continued'} end
if not redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2]) then return {'thread_continue_in_flight'} end
return {'held', kept}
"""
# KEYS[1]: the new reply's thread, KEYS[2]: the previous reply's, KEYS[3]: its hold.
# ARGV: the thread ('' when too large to keep), expiry (ms), holder.
_CONTINUE = """
if ARGV[1] ~= '' then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
redis.call('SET', KEYS[2], '', 'PX', ARGV[2])
if redis.call('GET', KEYS[3]) == ARGV[3] then redis.call('DEL', KEYS[3]) end
return 1
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _key(message_id: str) -> str:
    return KEY_PREFIX + message_id


class RedisThreads:
    """Threads in Redis, with the same rules as :class:`LocalThreads` (one Redis, not a cluster:
    a continue's script touches the keys of two replies)."""

    def __init__(self, client: redis.asyncio.Redis, ttl: float, max_bytes: int):
        self.client, self.ttl_ms, self.max_bytes = client, max(1, round(ttl * 1000)), max_bytes
        self._begin = client.register_script(_BEGIN)
        self._continue = client.register_script(_CONTINUE)
        self._release = client.register_script(_RELEASE)

    async def begin(self, message_id: str, holder: str, hold: float) -> Lookup:
        answer = await self._begin(keys=[_key(message_id), _key(message_id) + ":held"],
                                   args=[holder, max(1, round(hold * 1000))])
        return answer[0].decode(), answer[1] if len(answer) > 1 else b""

    async def peek(self, message_id: str) -> Lookup:
        data = cast(bytes | None, await self.client.get(_key(message_id)))  # bytes: the client does not decode
        if data is None:
            return MISSING, b""
        return (WAS_CONTINUED, b"") if data == CONTINUED else ("found", data)

    async def put(self, message_id: str, data: bytes, previous: str | None, holder: str | None) -> None:
        data = data if len(data) <= self.max_bytes else CONTINUED
        if previous is None:
            if data != CONTINUED:
                await self.client.set(_key(message_id), data, px=self.ttl_ms)
            return
        await self._continue(keys=[_key(message_id), _key(previous), _key(previous) + ":held"],
                             args=[data, self.ttl_ms, holder or ""])

    async def release(self, previous: str, holder: str) -> None:
        await self._release(keys=[_key(previous) + ":held"], args=[holder])


class Threads:
    """The store the handlers use: Redis when configured and answering, the process otherwise.

    Each operation returns the store that served it, so that a turn ends where it began."""

    def __init__(self, state: SharedState, local: LocalThreads, shared: RedisThreads | None = None):
        self.state, self.local, self.shared = state, local, shared

    async def run(self, operation: str, *args: Any, store: Any = None) -> tuple[Any, Any]:
        """``store.operation(*args)`` (Redis unless ``store`` is the process), or in process if Redis fails."""
        shared = self.shared if store is not self.local else None
        served = await self.state.run(None if shared is None else (lambda: getattr(shared, operation)(*args)),
                                      lambda: getattr(self.local, operation)(*args))
        return (self.shared if served.shared else self.local), served.value
