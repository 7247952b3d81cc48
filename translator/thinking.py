"""Anthropic ``thinking`` (+ ``output_config.effort``) → Gemini ``thinkingConfig``.

LiteLLM treats ``{"type": "adaptive"}`` (what Claude Code sends) as disabled and drops budgets on
Gemini 3, so the proxy builds ``thinkingConfig`` itself, from the model's facts in models.yaml,
and LiteLLM passes it through unchanged.
"""
from __future__ import annotations

from typing import Any, Mapping


def _allowed_level(level: str, facts: Mapping[str, Any], order: tuple[str, ...]) -> str:
    """A level the model accepts: ``level`` itself, or the nearest one above it (else the highest)."""
    levels = facts["levels"]
    if level in levels:
        return level
    for candidate in order[order.index(level):]:
        if candidate in levels:
            return candidate
    return levels[-1]


def _clamp_budget(budget: int, facts: Mapping[str, Any]) -> int:
    low, high = facts["budget"]
    return max(low, min(high, budget))


def thinking_config(thinking: Mapping[str, Any] | None, effort: str | None, facts: Mapping[str, Any],
                    table: Mapping[str, Any], max_tokens: int) -> dict[str, Any] | None:
    """The ``thinkingConfig`` to send, or None to leave the model's default.

    ``display: "omitted"`` keeps the thinking but asks for no summaries.
    """
    kind = facts["thinking"]
    if kind == "none" or thinking is None:
        return None
    rules = table["thinking"]
    mode = thinking["type"]
    include = thinking.get("display") != "omitted"
    if mode == "disabled":
        if kind == "level":
            return {"thinkingLevel": facts["levels"][0], "includeThoughts": False}
        return {"thinkingBudget": facts["budget"][0], "includeThoughts": False}
    if mode == "enabled":
        budget = thinking["budget_tokens"]
        if kind == "budget":
            # Anthropic requires budget < max_tokens; Gemini counts thoughts inside the output
            # limit too, so keep room for the answer.
            return {"thinkingBudget": _clamp_budget(min(budget, max(max_tokens - 1, 0)), facts),
                    "includeThoughts": include}
        rows = rules["budget_levels"]
        level = next((row["level"] for row in rows if budget <= row["max_budget"]), rows[-1]["level"])
        return {"thinkingLevel": _allowed_level(level, facts, rules["level_order"]), "includeThoughts": include}
    # adaptive: the effort decides
    effort = effort or rules["adaptive_default_effort"]
    if kind == "budget":
        return {"thinkingBudget": _clamp_budget(rules["effort_budgets"][effort], facts), "includeThoughts": include}
    return {"thinkingLevel": _allowed_level(rules["effort"][effort], facts, rules["level_order"]),
            "includeThoughts": include}
