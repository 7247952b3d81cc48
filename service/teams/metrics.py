"""Prometheus metrics (prometheus-client), read at ``GET /metrics`` with the admin key when one is set.

Labels name keys by their name in the keys file, never by a secret, and models by the model that
answered (``none`` when none did), so that what clients write in ``model`` cannot grow the series.
With several Hypercorn workers, set ``PROMETHEUS_MULTIPROC_DIR`` (an empty directory, in the
environment before the proxy starts): every worker writes its figures there and ``/metrics`` adds up
all of them (prometheus-client's multiprocess mode). ``METRICS=off`` counts nothing.
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, AsyncGenerator, Mapping

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

from ..engines.pool import Pool

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
TOKEN_KINDS = {"uncached_input": "input_tokens", "cache_read": "cache_read_input_tokens",
               "cache_creation": "cache_creation_input_tokens", "output": "output_tokens"}


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


class Metrics:
    """This app's metrics, in a registry of its own (several apps may share a test process)."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.registry = registry = CollectorRegistry()
        self.requests = Counter("proxy_requests", "Messages requests answered", ["key", "model", "status"],
                                registry=registry)
        self.tokens = Counter("proxy_tokens", "Tokens of the answers", ["key", "model", "kind"], registry=registry)
        self.web_searches = Counter("proxy_web_search_requests", "Web searches of the answers", ["key", "model"],
                                    registry=registry)
        self.duration = Histogram("proxy_request_duration_seconds", "Messages requests, from arrival to the end of "
                                  "the answer", ["stream"], buckets=LATENCY_BUCKETS, registry=registry)
        self.first_event = Histogram("proxy_first_event_seconds", "Streams, from arrival to the first content event",
                                     buckets=LATENCY_BUCKETS, registry=registry)
        self.active_streams = Gauge("proxy_active_streams", "Streams being sent", multiprocess_mode="livesum",
                                    registry=registry)
        self.upstream_errors = Counter("proxy_upstream_errors", "Upstream failures, by the Anthropic error type "
                                       "they map to (each attempt counts)", ["type"], registry=registry)
        self.rate_limited = Counter("proxy_rate_limited", "Requests refused by a client key's limit", ["key"],
                                    registry=registry)
        self.pool_deployments = Gauge("proxy_pool_deployments", "Upstream keys of each model asked for so far",
                                      ["model"], multiprocess_mode="mostrecent", registry=registry)
        self.pool_resting = Gauge("proxy_pool_resting_deployments", "Those of them resting after a rate limit",
                                  ["model"], multiprocess_mode="mostrecent", registry=registry)
        self.partial_streams = Counter("proxy_partial_streams", "Streams that ended before Gemini's last chunk, "
                                       "by what their output was booked from (gemini: its last usage report; "
                                       "estimate: what was written)", ["source"], registry=registry)
        self.ledger_queued = Gauge("proxy_ledger_queued_rows", "Usage rows waiting for the database",
                                   multiprocess_mode="livesum", registry=registry)
        self.ledger_lost = Counter("proxy_ledger_lost_rows", "Usage rows lost (queue full, or database "
                                   "unreachable at shutdown)", registry=registry)

    def answered(self, key: str, model: str | None, status: int, seconds: float, fields: Mapping[str, Any]) -> None:
        """One messages request: its count, tokens, latencies."""
        if not self.enabled:
            return
        model = model or "none"
        self.requests.labels(key, model, str(status)).inc()
        usage = fields.get("usage") or {}
        for kind, name in TOKEN_KINDS.items():
            if usage.get(name):
                self.tokens.labels(key, model, kind).inc(usage[name])
        searches = (usage.get("server_tool_use") or {}).get("web_search_requests")
        if searches:
            self.web_searches.labels(key, model).inc(searches)
        self.duration.labels("true" if fields.get("stream") else "false").observe(seconds)
        if fields.get("partial"):
            self.partial_streams.labels(fields.get("usage_source", "estimate")).inc()
        if fields.get("first_event_ms") is not None:
            self.first_event.observe(fields["first_event_ms"] / 1000)

    def refused(self, key: str) -> None:
        if self.enabled:
            self.rate_limited.labels(key).inc()

    def upstream_error(self, kind: str) -> None:
        if self.enabled:
            self.upstream_errors.labels(kind).inc()

    def lost_rows(self, count: int) -> None:
        if self.enabled:
            self.ledger_lost.inc(count)

    def streaming(self, frames: AsyncGenerator[bytes, None]) -> AsyncGenerator[bytes, None]:
        """A stream's frames, counted in ``proxy_active_streams`` while they are sent."""
        return self._counted(frames) if self.enabled else frames

    async def _counted(self, frames: AsyncGenerator[bytes, None]) -> AsyncGenerator[bytes, None]:
        self.active_streams.inc()
        try:
            async with contextlib.aclosing(frames):
                async for data in frames:
                    yield data
        finally:
            self.active_streams.dec()

    async def exposition(self, pool: Pool, queued: int) -> tuple[bytes, str]:
        """The text format of every metric (every worker's, in multiprocess mode), pool state read now."""
        for model, (keys, resting) in (await pool.state()).items():
            self.pool_deployments.labels(model).set(keys)
            self.pool_resting.labels(model).set(resting)
        self.ledger_queued.set(queued)
        registry = self.registry
        if multiprocess_dir():
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST

    def close(self) -> None:
        """A worker that stops takes its live gauges out of the multiprocess directory."""
        if multiprocess_dir():
            multiprocess.mark_process_dead(os.getpid())
