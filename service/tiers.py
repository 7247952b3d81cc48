"""The Gemini service tier of a request: Anthropic's ``service_tier`` and the key's own (keys file).

A key marked ``service_tier: flex`` (background agents, evaluations) has its Gemini calls ask for Flex
inference, at half the standard price; a request with ``service_tier: standard_only`` stays at
standard. The tier is asked for through LiteLLM's ``service_tier`` (Gemini ``serviceTier``), and the
ledger books it, so the cost report applies prices.yaml's discount.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import translator


def with_tier(call: translator.UpstreamCall, body: Any, client: Any, log: dict[str, Any]) -> translator.UpstreamCall:
    """The call asking for the tier the request and its key choose (unchanged when that is standard)."""
    requested = body.get("service_tier") if isinstance(body, dict) else None
    tier = translator.gemini_service_tier(requested, getattr(client, "service_tier", None))
    if tier is None or "service_tier" in call.kwargs or not call.route.target.startswith("gemini/"):
        return call
    log["service_tier"] = tier
    return dataclasses.replace(call, kwargs={**call.kwargs, "service_tier": tier})
