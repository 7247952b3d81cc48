"""The Gemini service tier of a request: Anthropic's ``service_tier``, the key's own (keys file) and
the alias's (models.yaml).

A key or an alias marked ``service_tier: flex`` (background agents, evaluations) has its Gemini calls
ask for Flex inference, at half the standard price; a request with ``service_tier: standard_only``
stays at standard. The request's word comes first, then the key's, then the alias's. The tier is
asked for through LiteLLM's ``service_tier`` (Gemini ``serviceTier``), and the ledger books it, so the
cost report applies prices.yaml's discount.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import translator


def with_tier(call: translator.UpstreamCall, body: Any, client: Any, log: dict[str, Any]) -> translator.UpstreamCall:
    """The call asking for the tier the request, its key and its alias choose (unchanged when that is standard)."""
    requested = body.get("service_tier") if isinstance(body, dict) else None
    background = getattr(client, "service_tier", None) or call.route.service_tier
    tier = translator.gemini_service_tier(requested, background)
    if tier is None or "service_tier" in call.kwargs or not call.route.target.startswith("gemini/"):
        return call
    log["service_tier"] = tier
    return dataclasses.replace(call, kwargs={**call.kwargs, "service_tier": tier})
