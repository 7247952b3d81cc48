"""Whether the shared Redis is taken as answering: one tracker for every user of it.

A failed call marks Redis down and starts the retry clock; until it runs out every user serves
from the process without trying Redis (no call waits on a dead server). The first call after it
tries Redis again. Down and back are each said once in the log, whichever user noticed.
"""
from __future__ import annotations

import logging
import time
from typing import Callable
from urllib.parse import urlsplit

log = logging.getLogger("proxy.redis")
RETRY_SECONDS = 5.0


def shown(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"


class Outage:
    """Redis's state as the proxy last saw it, and when to try it again after a failure."""

    def __init__(self, url: str, clock: Callable[[], float] = time.monotonic,
                 retry_seconds: float = RETRY_SECONDS):
        self.url, self.clock, self.retry_seconds = url, clock, retry_seconds
        self.down = False
        self.retry_at = 0.0   # monotonic time before which Redis is not tried

    def worth_trying(self) -> bool:
        """False while a recent failure says Redis would not answer."""
        return not self.down or self.clock() >= self.retry_at

    def failed(self, exc: BaseException) -> None:
        self.retry_at = self.clock() + self.retry_seconds
        if not self.down:
            self.down = True
            log.warning("Redis at %s is unreachable (%s: %s): rests, rate limits, threads and caches are kept in "
                        "this process until it is back", shown(self.url), type(exc).__name__, exc)

    def answered(self) -> None:
        if self.down:
            self.down = False
            log.warning("Redis at %s answers again: shared state goes through it again", shown(self.url))
