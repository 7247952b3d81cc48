"""Shared state: the one home of everything replicas share (pool rests, rate limits, message threads,
caches), in Redis with ``REDIS_URL`` and in this process otherwise or while Redis does not answer.

- :class:`SharedState` builds the one Redis client, keeps the one :class:`Outage` tracker, and offers
  the :class:`Store` interface (``get``, ``get_many``, ``set`` with a TTL, ``delete``, ``incr``) with
  the process as fallback; ``run(remote, local)`` serves users with their own Redis operations
  (Lua scripts, the ``limits`` library's storage on ``SharedState.client``'s pool).
- Nothing here blocks the event loop: every Redis call is redis-py's asyncio client, with
  timeouts, and a Redis known to be down is not tried until the retry clock runs out.
"""
from __future__ import annotations

from .outage import Outage, shown
from .shared import UNREACHABLE, Served, SharedState, redis_client
from .stores import LocalStore, RedisStore, Store

__all__ = ["LocalStore", "Outage", "RedisStore", "Served", "SharedState", "Store", "UNREACHABLE", "redis_client",
           "shown"]
