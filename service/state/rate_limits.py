"""Each client key's ``rpm`` and ``tpm``, counted by the ``limits`` library: in Redis with ``REDIS_URL`` (shared by
replicas), in this process otherwise, and in this process while Redis does not answer (service.state says so
once per outage).

Both are counted in fixed one-minute windows, each starting with a key's first request (or tokens) after
its last window ended: a window is one counter, in Redis one INCRBY (the library's moving windows would
cost a worker-thread hop per request in process). A request is admitted when its key has a request left
in its window and has not used up its tokens. Tokens (uncached input + output, as Anthropic counts them;
cache reads are free) are known only when the answer ends, so they are charged then, in full even past
the limit, and the next request is the one refused: one answer can overshoot the limit, as at Anthropic. A
refusal is Anthropic's 429 with ``retry-after`` and the ``anthropic-ratelimit-*`` headers clients read.
"""
from __future__ import annotations

import math
import time
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import FixedWindowRateLimiter
from quart import Response

from translator import ErrorText

from ..config import Settings
from ..web.errors import error_response
from ..teams.keys import Client
from . import SharedState

KEY_PREFIX = "anthropic-proxy:limits"


def _rfc3339(epoch: float) -> str:
    return datetime.fromtimestamp(math.ceil(epoch), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class RateLimits:
    """Admits requests and charges tokens, per key name."""

    def __init__(self, settings: Settings, state: SharedState | None = None, *, refusal: ErrorText,
                 on_refused: Callable[[str], None] = lambda name: None):
        self.refusal, self.on_refused = refusal, on_refused  # refusal: errors.yaml's over_rate_limit
        self._own_state = state is None   # built here (a caller without an app): closed by close()
        self.state = state = state or SharedState(settings.redis_url)
        self.local = FixedWindowRateLimiter(MemoryStorage())
        self.shared: FixedWindowRateLimiter | None = None
        if state.client is not None:  # the library's storage on the state's one connection pool
            self.shared = FixedWindowRateLimiter(RedisStorage(
                "async+" + settings.redis_url, wrap_exceptions=True, implementation="redispy", key_prefix=KEY_PREFIX,
                connection_pool=state.client.connection_pool))  # type: ignore[arg-type]  # typed as **options: float | str | bool

    async def _run(self, operation: Callable[[FixedWindowRateLimiter], Awaitable[Any]]) -> Any:
        shared = self.shared
        served = await self.state.run(None if shared is None else (lambda: operation(shared)),
                                      lambda: operation(self.local))
        return served.value

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
        response = error_response(self.refusal.error(key=client.name, limit=limit,
                                                     retry_after=max(1.0, resets[over] - time.time())))
        response.headers.update(headers)
        return response

    def charge(self, client: Client | None, used: int) -> None:
        """Count ``used`` tokens against the key's tpm, off the request's path."""
        tpm = client.tpm if client is not None else None
        if client is None or not tpm or used <= 0:
            return
        self.state.spawn(self._run(
            lambda limiter: limiter.hit(RateLimitItemPerMinute(tpm), "tokens", client.name, cost=used)))

    async def close(self) -> None:
        """Wait for the charges still being counted (the app closes the state it shares itself)."""
        if self._own_state:
            await self.state.close()
