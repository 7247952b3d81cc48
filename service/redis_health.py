"""Whether the shared Redis answers, said once per change instead of once per failed call.

When Redis goes away LiteLLM's cache logs an error on every read and write and carries on with its
in-process copy, which is what the proxy wants; the log would fill with the same error every
second. :class:`RedisHealth` takes those records out of the log, says once that Redis is
unreachable, and once that it is back (it probes with a ping every few seconds while it is down).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from urllib.parse import urlsplit

import redis.asyncio as aioredis

log = logging.getLogger("proxy.redis")
PROBE_SECONDS = 5.0


def shown(url: str) -> str:
    """The URL without its password, for logs."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"


class RedisHealth(logging.Filter):
    """A filter on LiteLLM's logger that turns its Redis errors into one line per outage."""

    def __init__(self, url: str):
        super().__init__()
        self.url = url
        self.down = False
        self._probe: asyncio.Task | None = None
        for name in ("LiteLLM", "LiteLLM Router"):
            logging.getLogger(name).addFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        if "redis" not in record.pathname.lower() and "redis" not in record.getMessage().lower():
            return True
        if not self.down:
            self.down = True
            log.warning("Redis at %s is unreachable: rests and shared state are kept in this process until "
                        "it is back", shown(self.url))
            with contextlib.suppress(RuntimeError):  # no running loop: the next failure starts the probe
                self._probe = asyncio.get_running_loop().create_task(self._wait_until_back())
        return False

    async def _wait_until_back(self) -> None:
        client = aioredis.from_url(self.url, socket_connect_timeout=0.5, socket_timeout=0.5)
        try:
            while True:
                await asyncio.sleep(PROBE_SECONDS)
                with contextlib.suppress(Exception):
                    if await client.ping():
                        break
            self.down = False
            log.warning("Redis at %s answers again", shown(self.url))
        finally:
            await client.aclose()

    async def close(self) -> None:
        for name in ("LiteLLM", "LiteLLM Router"):
            logging.getLogger(name).removeFilter(self)
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(BaseException):
                await self._probe
