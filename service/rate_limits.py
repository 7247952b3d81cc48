"""Each client key's ``rpm`` and ``tpm``, counted by the ``limits`` library: in Redis with ``REDIS_URL`` (shared by
replicas), in this process otherwise, and in this process while Redis does not answer (said once per outage).

Both are counted in fixed one-minute windows, each starting with a key's first request (or tokens) after
its last window ended: a window is one counter, in Redis one INCRBY (the library's moving windows would
cost a worker-thread hop per request in process). A request is admitted when its key has a request left
in its window and has not used up its tokens. Tokens (uncached input + output, as Anthropic counts them;
cache reads are free) are known only when the answer ends, so they are charged then, in full even past
the limit, and the next request is the one refused: one answer can overshoot the limit, as at Anthropic. A
refusal is Anthropic's 429 with ``retry-after`` and the ``anthropic-ratelimit-*`` headers clients read.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter
from limits.errors import StorageError
from quart import Response

from translator import AnthropicError

from .config import Settings
from .errors import error_response
from .keys import Client
from .redis_health import shown

log = logging.getLogger("proxy.limits")
REDIS_RETRY_SECONDS = 5.0
KEY_PREFIX = "anthropic-proxy:limits"


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(math.ceil(epoch), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class RateLimits:
    """Admits requests and charges tokens, per key name."""

    def __init__(self, settings: Settings, on_refused: Callable[[str], None] = lambda name: None):
        self.on_refused = on_refused
        self.local = FixedWindowRateLimiter(MemoryStorage())
        self.shared: FixedWindowRateLimiter | None = None
        self.url = settings.redis_url
        if settings.redis_url:
            self.shared = FixedWindowRateLimiter(RedisStorage(
                "async+" + settings.redis_url, wrap_exceptions=True, implementation="redispy", key_prefix=KEY_PREFIX,
                socket_connect_timeout=0.5, socket_timeout=0.5))
        self.down_until = 0.0      # while Redis is taken as down (monotonic time)
        self.outage = False
        self.charges: set[asyncio.Task] = set()

    async def _run(self, operation: Callable[[FixedWindowRateLimiter], Awaitable[Any]]) -> Any:
        if self.shared is not None and time.monotonic() >= self.down_until:
            try:
                result = await operation(self.shared)
            except (StorageError, OSError, TimeoutError):
                self.down_until = time.monotonic() + REDIS_RETRY_SECONDS
                if not self.outage:
                    self.outage = True
                    log.warning("Redis at %s is unreachable: rate limits are counted in this process until it is "
                                "back", shown(self.url))
            else:
                if self.outage:
                    self.outage = False
                    log.warning("Redis at %s answers again: rate limits are shared again", shown(self.url))
                return result
        return await operation(self.local)

    async def admit(self, client: Client) -> Response | None:
        """None when ``client`` may send this request (counted), else the 429 to answer with."""
        if not (client.rpm or client.tpm):
            return None
        return await self._run(lambda limiter: self._admit(limiter, client))

    async def _admit(self, limiter: FixedWindowRateLimiter, client: Client) -> Response | None:
        over = None
        if client.tpm and not await limiter.test(RateLimitItemPerMinute(client.tpm), "tokens", client.name):
            over = "tokens"
        elif client.rpm and not await limiter.hit(RateLimitItemPerMinute(client.rpm), "requests", client.name):
            over = "requests"
        if over is None:
            return None
        self.on_refused(client.name)
        headers: dict[str, str] = {}
        resets: dict[str, float] = {}
        for kind, amount in (("requests", client.rpm), ("tokens", client.tpm)):
            if amount:
                stats = await limiter.get_window_stats(RateLimitItemPerMinute(amount), kind, client.name)
                resets[kind] = stats.reset_time
                headers.update({f"anthropic-ratelimit-{kind}-limit": str(amount),
                                f"anthropic-ratelimit-{kind}-remaining": str(max(0, stats.remaining)),
                                f"anthropic-ratelimit-{kind}-reset": _rfc3339(stats.reset_time)})
        limit = f"{client.rpm} requests" if over == "requests" else f"{client.tpm} tokens"
        response = error_response(AnthropicError(
            429, "rate_limit_error", f"This API key ({client.name}) is over its rate limit of {limit} per minute.",
            retry_after=max(1.0, resets[over] - time.time())))
        response.headers.update(headers)
        return response

    def charge(self, client: Client | None, used: int) -> None:
        """Count ``used`` tokens against the key's tpm, off the request's path."""
        if client is None or not client.tpm or used <= 0:
            return
        task = asyncio.get_running_loop().create_task(self._run(
            lambda limiter: limiter.hit(RateLimitItemPerMinute(client.tpm), "tokens", client.name, cost=used)))
        self.charges.add(task)
        task.add_done_callback(self.charges.discard)

    async def close(self) -> None:
        if self.charges:
            await asyncio.gather(*self.charges, return_exceptions=True)
