"""Server-side fallbacks (a request's ``fallbacks``) and ``speed``, as calls built before any I/O.

Anthropic's server-side fallback (beta ``server-side-fallback-2026-06-01``) retries a turn that the
requested model declined on the next model the request names, or, for ``"default"``, on the model's
own chain (models.yaml). Each fallback is the same request with the entry's model and its overrides
(``max_tokens``, ``thinking``, ``output_config``, ``speed``), translated as a request of its own: its
model's facts, its signatures, its pool. Every entry is translated here, so that a bad one is a 400
(or 404) before anything is sent, as Anthropic validates entries "as if the request were made to
``model``". ``speed: "fast"`` becomes Gemini's priority service tier where models.yaml says the model
has one; ``standard`` sends nothing.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from .errors import AnthropicError, invalid_request
from .request import UpstreamCall, translate_request
from .routing import resolve_model
from .spec import Spec
from .tools import DeclarationCache
from .turn_cache import TurnCache
from .web_fetch import check_web_fetch

ENTRY_FIELDS = ("model", "max_tokens", "thinking", "output_config", "speed")


@dataclass(frozen=True)
class Fallback:
    """One hop of the chain: the request for its model, translated, and where it came from."""

    body: Mapping[str, Any]
    call: UpstreamCall
    spec: Spec
    limits: Mapping[str, int] | None

    @property
    def model(self) -> str:
        """The model's canonical id (the Gemini name), as Anthropic names a fallback's model."""
        return self.call.route.gemini_name

    def retarget(self, target: str) -> UpstreamCall:
        """The same hop for a model of its own 429/5xx chain."""
        return translate_call(self.body, self.spec, limits=self.limits, target=target)


def translate_call(body: Any, spec: Spec, *, tool_cache: DeclarationCache | None = None,
                   limits: Mapping[str, int] | None = None, target: str | None = None,
                   turn_cache: TurnCache | None = None) -> UpstreamCall:
    """:func:`translate_request`, with the request's ``speed`` applied (see :func:`with_speed`) and its
    web_fetch tool checked (see :func:`check_web_fetch`)."""
    call = translate_request(body, spec, tool_cache=tool_cache, limits=limits, target=target, turn_cache=turn_cache)
    check_web_fetch(call.tools.grounding.get("url_context"))
    return with_speed(call, body, spec)


def with_speed(call: UpstreamCall, body: Any, spec: Spec) -> UpstreamCall:
    """The call with the Gemini tier models.yaml ``speed_tiers`` gives the request's ``speed`` (``fast``:
    priority) when the model's ``service_tiers`` list it; otherwise, and for ``standard``, the call as it
    is. Raises a 400 for a speed that is neither ``standard`` nor one of ``speed_tiers``."""
    speed = body.get("speed") if isinstance(body, dict) else None
    if speed is None or speed == "standard":
        return call
    tiers = spec.models.speed_tiers
    if speed not in tiers:
        known = " or ".join(repr(name) for name in ("standard", *tiers))
        raise invalid_request(f"speed: Input should be {known}, got {speed!r}.")
    tier = tiers[speed]
    if tier not in (call.route.facts.service_tiers or ()):
        return call
    return dataclasses.replace(call, kwargs={**call.kwargs, "service_tier": tier})


def plan_fallbacks(body: Any, spec: Spec, *, call: UpstreamCall, tool_cache: DeclarationCache | None = None,
                   limits: Mapping[str, int] | None = None, turn_cache: TurnCache | None = None) -> tuple[Fallback, ...]:
    """The request's fallback hops, in order, each translated; ``()`` without ``fallbacks``.

    Raises :class:`AnthropicError`: a 400 naming the entry for a malformed one, and whatever
    :func:`translate_request` raises for the request on that model (400, or 404 for an unknown model)."""
    wanted = body.get("fallbacks") if isinstance(body, dict) else None
    if wanted is None:
        return ()
    if wanted == "default":
        entries: list[dict[str, Any]] = [{"model": target} for target in call.route.fallbacks]
    else:
        entries = _checked_entries(wanted, spec)
    hops = []
    for entry in entries:
        hop_body = _hop_body(body, entry)
        hops.append(Fallback(hop_body, translate_call(hop_body, spec, tool_cache=tool_cache, limits=limits,
                                                      turn_cache=turn_cache), spec, limits))
    return tuple(hops)


def _checked_entries(wanted: Any, spec: Spec) -> list[dict[str, Any]]:
    most = spec.models.server_fallbacks.max_entries
    if not isinstance(wanted, list):
        raise invalid_request("fallbacks: Input should be a list of fallback entries or the string 'default'.")
    if not 1 <= len(wanted) <= most:
        raise invalid_request(f"fallbacks: a list of 1 to {most} entries, got {len(wanted)}.")
    for n, entry in enumerate(wanted):
        if not isinstance(entry, dict):
            raise invalid_request(f"fallbacks.{n}: Input should be an object with a 'model'.")
        extra = sorted(set(entry) - set(ENTRY_FIELDS))
        if extra:
            raise invalid_request(f"fallbacks.{n}.{extra[0]}: Extra inputs are not permitted (an entry takes "
                                  f"{', '.join(ENTRY_FIELDS)}).")
        if not isinstance(entry.get("model"), str) or not entry["model"]:
            raise invalid_request(f"fallbacks.{n}.model: Field required, a model name.")
        try:
            resolve_model(entry["model"], spec.models)
        except AnthropicError as exc:  # the same refusal as for `model`, naming the entry
            raise AnthropicError(exc.status, exc.type, f"fallbacks.{n}.{exc.message}") from None
    return wanted


def _hop_body(body: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
    """The request for one entry: its model; ``max_tokens``, ``thinking`` and ``speed`` replaced when the
    entry sets them (``null``: the model's default); ``output_config`` merged one field at a time."""
    hop = {k: v for k, v in body.items() if k != "fallbacks"}
    hop["model"] = entry["model"]
    if entry.get("max_tokens") is not None:
        hop["max_tokens"] = entry["max_tokens"]
    for name in ("thinking", "speed"):
        if name in entry:
            hop.pop(name, None)
            if entry[name] is not None:
                hop[name] = entry[name]
    if "output_config" in entry:
        override = entry["output_config"]
        merged = {} if override is None else {**(body.get("output_config") or {}), **override}
        merged = {k: v for k, v in merged.items() if v is not None}
        hop.pop("output_config", None)
        if merged:
            hop["output_config"] = merged
    return hop
