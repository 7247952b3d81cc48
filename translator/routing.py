"""Requested model name → the LiteLLM model to call, and that model's facts (models.yaml)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import AnthropicError, invalid_request
from .tables import Facts, ModelsTable


@dataclass(frozen=True)
class Route:
    requested: str            # what the client asked for; echoed back in message.model
    target: str               # LiteLLM model string, e.g. "gemini/gemini-3.8-flash"
    facts: Facts              # max_output_tokens, thinking, levels, sampling_params, ...
    fallbacks: tuple[str, ...] = ()  # LiteLLM models to try, in order, when ``target`` cannot answer
    service_tier: str | None = None  # the tier of the alias the request came through (models.yaml), if any

    @property
    def gemini_name(self) -> str:
        return self.target.split("/", 1)[-1]

    @property
    def signer(self) -> str:
        """Whose thought signatures a call to ``target`` carries: the Gemini name for AI Studio (as
        before providers), the whole target for another platform serving the same models (Vertex AI:
        ``vertex_ai/gemini-3.1-pro-preview``), whose signatures are its own."""
        return self.target.removeprefix("gemini/")

    @property
    def targets(self) -> tuple[str, ...]:
        """The whole chain: the target, then its fallbacks."""
        return (self.target, *self.fallbacks)


def _enabled(table: ModelsTable) -> str:
    return ", ".join(table.provider_prefixes) or "none"


def _invalid(name: str, table: ModelsTable) -> AnthropicError:
    return invalid_request(f"model: {name!r} is not a valid model name: use a name matching "
                           f"{table.model_name_pattern}, optionally after an enabled provider "
                           f"prefix ({_enabled(table)}).")


def _not_enabled(prefix: str) -> AnthropicError:
    return invalid_request(f"model: provider prefix {prefix!r} is not enabled on this proxy; the operator "
                           f"can enable it with PROVIDER_PREFIXES or provider_prefixes in models.yaml.")


def _checked_prefix(name: str, table: ModelsTable) -> str:
    """The enabled provider prefix of a well-formed name ("" for none); a 400 for any other name.

    LiteLLM picks the provider, its endpoint and its credentials from the prefix, and puts the
    rest into URL paths: a name must not choose either beyond what the table enables.
    """
    head, slash, tail = name.partition("/")
    if not slash:
        return ""  # a bare name is only looked up (listed model, alias): it goes nowhere as it is
    prefix = head + slash
    if prefix not in table.provider_prefixes:
        raise _not_enabled(prefix) if prefix in table.known_provider_prefixes else _invalid(name, table)
    if not re.fullmatch(table.model_name_pattern, tail):
        raise _invalid(name, table)
    return prefix


def _target(name: str, table: ModelsTable) -> str | None:
    if _checked_prefix(name, table):
        return name
    if name in table.models:
        return table.gemini_prefix + name
    return None


def alias_target(wanted: str, table: ModelsTable) -> str:
    """The LiteLLM model for an alias target (BIG_MODEL, ...); a bare unlisted name goes to Gemini."""
    target = _target(wanted, table)
    if target is None and not re.fullmatch(table.model_name_pattern, wanted):
        raise _invalid(wanted, table)
    return target or table.gemini_prefix + wanted


def _facts(target: str, table: ModelsTable) -> Facts:
    return table.models.get(target.split("/", 1)[-1], table.fallback)


def _unsuffixed(requested: str, table: ModelsTable) -> str:
    for suffix in table.strip_suffixes:
        if requested.endswith(suffix):
            return requested.removesuffix(suffix)
    return requested


def alias_chain(wanted: str, table: ModelsTable) -> tuple[str, ...]:
    """An alias target that may name a chain (``BIG_MODEL=a,b``): each model's LiteLLM name."""
    return tuple(alias_target(name.strip(" "), table) for name in wanted.split(",") if name.strip(" "))


def _chain(target: str, named: tuple[str, ...], table: ModelsTable) -> tuple[str, ...]:
    # A chain named by the alias wins; else the target's own fallbacks in models.yaml.
    fallbacks = named or tuple(alias_target(n, table) for n in _facts(target, table).fallbacks or ())
    return tuple(dict.fromkeys(t for t in fallbacks if t != target))


def resolve_model(requested: str, table: ModelsTable, target: str | None = None) -> Route:
    """The :class:`Route` for a requested model name, by the resolution order at the top of models.yaml;
    ``target``, one of the route's fallbacks, gives the route for that model instead (the rest of the
    chain after it).

    Raises :class:`AnthropicError`: 404 ``not_found_error`` for a name the proxy does not serve, 400
    ``invalid_request_error`` for a provider prefix that is not enabled or a name it refuses."""
    route = _resolved(requested, table)
    if target is None or target == route.target:
        return route
    if target not in route.fallbacks:
        raise ValueError(f"{target} is not a fallback of {route.target}")
    rest = route.fallbacks[route.fallbacks.index(target) + 1:]
    return Route(requested, target, _facts(target, table), rest, route.service_tier)


def _resolved(requested: str, table: ModelsTable) -> Route:
    name = _unsuffixed(requested, table)
    target = _target(name, table)
    named: tuple[str, ...] = ()
    tier = None
    if target is None:
        lowered = name.lower()
        for alias in table.aliases:
            if alias.contains in lowered:
                target, *rest = alias_chain(table.target_name(alias.target), table)
                named, tier = tuple(rest), alias.service_tier
                break
    if target is None:
        aliases = ", ".join(f"*{a.contains}*" for a in table.aliases)
        raise AnthropicError(404, "not_found_error",
                             f"model: {requested} is not served by this proxy. Use a Claude model name "
                             f"matching {aliases}, a listed Gemini model (see GET /v1/models), or a name "
                             f"after an enabled provider prefix ({_enabled(table)}).")
    return Route(requested, target, _facts(target, table), _chain(target, named, table), tier)


def model_list(table: ModelsTable) -> list[dict[str, Any]]:
    """``GET /v1/models`` entries: one Claude-style alias per alias rule, then each listed Gemini model.

    Alias ids start with ``listing.alias_id_prefix`` ("claude-": Claude Code's gateway model discovery
    keeps only ids that contain "claude").
    """
    entries = []
    for alias in table.aliases:
        route = resolve_model(table.listing.alias_id_prefix + alias.contains, table)
        entries.append(_entry(route.requested, f"{alias.contains.title()} → {route.gemini_name} (via proxy)", route,
                              table))
    for name in table.models:
        entries.append(_entry(name, f"{name} (via proxy)", resolve_model(name, table), table))
    return entries


def model_entry(route: Route, table: ModelsTable) -> dict[str, Any]:
    """The ``/v1/models`` entry (a dict) for a resolved route; raises nothing."""
    return _entry(route.requested, f"{route.requested} → {route.gemini_name} (via proxy)", route, table)


def _entry(model_id: str, display: str, route: Route, table: ModelsTable) -> dict[str, Any]:
    return {"type": "model", "id": model_id, "display_name": display, "created_at": table.listing.created_at,
            "max_input_tokens": route.facts.context_window, "max_tokens": route.facts.max_output_tokens}
