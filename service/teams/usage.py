"""What an answered ``/v1/messages`` request leaves behind: its ledger row, its metrics, and its tokens
counted against its key's tpm. Called where the access-log line is written (hooks.end for answers that
are not streams, the stream's end for streams), with the same fields."""
from __future__ import annotations

import time
from typing import Any, Mapping

from .keys import Client

# Gemini's prompt (what its long-context price tier counts): the uncached, written and read input tokens.
PROMPT_FIELDS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def record(proxy: Any, request_id: str, client: Client | None, status: int, seconds: float,
           fields: Mapping[str, Any]) -> None:
    """Never waits: the row is queued, the tpm charge runs in a task of its own."""
    if client is None:  # not authenticated: nothing to book
        return
    usage = fields.get("usage") or {}
    answered = fields.get("answered_by")
    model = answered.rsplit("@", 1)[0] if answered else None   # the deployment id without its key tag
    proxy.metrics.answered(client.name, model, status, seconds, fields)
    proxy.rate_limits.charge(client, usage.get("input_tokens", 0) + usage.get("output_tokens", 0))
    prompt = sum(usage.get(name, 0) for name in PROMPT_FIELDS)
    if proxy.ledger is not None:
        proxy.ledger.add({
            "time_ms": int((time.time() - seconds) * 1000), "request_id": request_id, "key_name": client.name,
            "model": fields.get("model"), "answered_by": model,
            "uncached_input_tokens": usage.get("input_tokens", 0),
            "cache_creation_input_tokens": usage.get("cache_creation_input_tokens", 0),
            "cache_read_input_tokens": usage.get("cache_read_input_tokens", 0),
            "cache_creation_1h_input_tokens": (usage.get("cache_creation") or {}).get("ephemeral_1h_input_tokens", 0),
            "output_tokens": usage.get("output_tokens", 0),
            "web_search_requests": (usage.get("server_tool_use") or {}).get("web_search_requests", 0),
            "stop_reason": fields.get("stop"), "status": status, "latency_ms": round(seconds * 1000, 1),
            "stream": bool(fields.get("stream")), "service_tier": fields.get("service_tier") or "standard",
            "usage_source": fields.get("usage_source") or ("gemini" if fields.get("usage") else None),
            "long_context": prompt > proxy.spec.prices.long_context_tokens})
