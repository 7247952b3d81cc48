"""Requested model name → the LiteLLM model to call, and that model's facts (models.yaml)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from .errors import AnthropicError


@dataclass(frozen=True)
class Route:
    requested: str            # what the client asked for; echoed back in message.model
    target: str               # LiteLLM model string, e.g. "gemini/gemini-3.8-flash"
    facts: Mapping[str, Any]  # max_output_tokens, thinking, levels, sampling_params, ...

    @property
    def gemini_name(self) -> str:
        return self.target.split("/", 1)[-1]


def _target(name: str, table: Mapping[str, Any]) -> str | None:
    if name.startswith(tuple(table["provider_prefixes"])):
        return name
    if name in table["models"]:
        return table["gemini_prefix"] + name
    return None


def _facts(target: str, table: Mapping[str, Any]) -> Mapping[str, Any]:
    return table["models"].get(target.split("/", 1)[-1], table["fallback"])


def resolve_model(requested: str, table: Mapping[str, Any]) -> Route:
    """Apply the resolution order documented at the top of models.yaml."""
    # Claude Code strips "[1m]" itself, but other clients may not.
    name = requested.removesuffix("[1m]")
    target = _target(name, table)
    if target is None:
        lowered = name.lower()
        for alias in table["aliases"]:
            if alias["contains"] in lowered:
                wanted = table["defaults"].get(alias["target"], alias["target"])
                target = _target(wanted, table) or table["gemini_prefix"] + wanted
                break
    if target is None:
        aliases = ", ".join(f"*{a['contains']}*" for a in table["aliases"])
        raise AnthropicError(404, "not_found_error",
                             f"model: {requested} is not served by this proxy. Use a Claude model name "
                             f"matching {aliases}, a listed Gemini model (see GET /v1/models), or a "
                             f"LiteLLM-prefixed name such as gemini/<model>.")
    return Route(requested, target, _facts(target, table))


def model_list(table: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``GET /v1/models`` entries: one Claude-style alias per alias rule, then each listed Gemini model.

    Alias ids contain "claude" so that Claude Code's gateway model discovery keeps them.
    """
    entries = []
    for alias in table["aliases"]:
        route = resolve_model(f"claude-{alias['contains']}", table)
        entries.append(_entry(route.requested, f"{alias['contains'].title()} → {route.gemini_name} (via proxy)", route))
    for name in table["models"]:
        entries.append(_entry(name, f"{name} (via proxy)", resolve_model(name, table)))
    return entries


def model_entry(route: Route) -> dict[str, Any]:
    """A ``/v1/models`` entry for any name that resolves."""
    return _entry(route.requested, f"{route.requested} → {route.gemini_name} (via proxy)", route)


def _entry(model_id: str, display: str, route: Route) -> dict[str, Any]:
    return {"type": "model", "id": model_id, "display_name": display, "created_at": "2025-01-01T00:00:00Z",
            "max_input_tokens": route.facts["context_window"], "max_tokens": route.facts["max_output_tokens"]}
