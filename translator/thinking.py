"""Anthropic ``thinking`` (+ ``output_config.effort``) → Gemini ``thinkingConfig``.

LiteLLM treats ``{"type": "adaptive"}`` (what Claude Code sends) as disabled and drops budgets on
Gemini 3, so the proxy builds ``thinkingConfig`` itself, from the model's facts in models.yaml,
and LiteLLM passes it through unchanged.
"""
from __future__ import annotations

from typing import Any, Mapping

from .tables import Effort, Facts, ModelsTable, ThinkingRules


def _allowed_level(level: str, facts: Facts, order: tuple[str, ...]) -> str:
    """A level the model accepts: ``level`` itself, or the nearest one above it (else the highest)."""
    levels = facts.levels
    assert levels is not None  # models.yaml requires levels of a model whose thinking is by level
    if level in levels:
        return level
    for candidate in order[order.index(level):]:
        if candidate in levels:
            return candidate
    return levels[-1]


def _nearest_budget(budget: int, facts: Facts) -> int:
    """The budget nearest ``budget`` that the model takes (models.yaml ``budget`` ranges); of two as
    near, the lower, which leaves more of the output limit to the answer."""
    ranges = facts.budget
    assert ranges is not None  # models.yaml requires the budget ranges of a model whose thinking is by budget
    candidates = (max(low, min(high, budget)) for low, high in ranges)
    return min(candidates, key=lambda candidate: (abs(candidate - budget), candidate))


def _level_config(thinking: Mapping[str, Any], effort: Effort | None, facts: Facts, rules: ThinkingRules,
                  max_tokens: int) -> dict[str, Any]:
    """Gemini 3+: a ``thinkingLevel`` the model lists."""
    mode, include = thinking["type"], thinking.get("display") != "omitted"
    if mode == "disabled":
        assert facts.levels is not None  # models.yaml requires them (as in _allowed_level)
        return {"thinkingLevel": facts.levels[0], "includeThoughts": False}
    if mode == "enabled":
        budget = thinking["budget_tokens"]
        rows = rules.budget_levels
        level = next((row.level for row in rows if budget <= row.max_budget), rows[-1].level)
    else:  # adaptive: the effort decides
        level = rules.effort[effort or rules.adaptive_default_effort]
    return {"thinkingLevel": _allowed_level(level, facts, rules.level_order), "includeThoughts": include}


def _budget_config(thinking: Mapping[str, Any], effort: Effort | None, facts: Facts, rules: ThinkingRules,
                   max_tokens: int) -> dict[str, Any]:
    """Gemini 2.5: a ``thinkingBudget`` the model takes."""
    mode, include = thinking["type"], thinking.get("display") != "omitted"
    if mode == "disabled":
        return {"thinkingBudget": _nearest_budget(0, facts), "includeThoughts": False}
    if mode == "enabled":
        # Anthropic requires budget < max_tokens; Gemini counts thoughts inside the output limit
        # too, so keep room for the answer.
        budget = min(thinking["budget_tokens"], max(max_tokens - 1, 0))
    else:  # adaptive: the effort decides
        budget = rules.effort_budgets[effort or rules.adaptive_default_effort]
    return {"thinkingBudget": _nearest_budget(budget, facts), "includeThoughts": include}


def _no_config(thinking: Mapping[str, Any], effort: Effort | None, facts: Facts, rules: ThinkingRules,
               max_tokens: int) -> None:
    return None  # the model does not think, or not in a way it lets be set


# models.yaml ``thinking`` of a model → how its thinkingConfig is built.
CONFIGS = {"level": _level_config, "budget": _budget_config, "none": _no_config}


def thinking_config(thinking: Mapping[str, Any] | None, effort: Effort | None, facts: Facts,
                    table: ModelsTable, max_tokens: int) -> dict[str, Any] | None:
    """The ``thinkingConfig`` to send, or None to leave the model's default.

    ``display: "omitted"`` keeps the thinking but asks for no summaries.
    """
    if thinking is None:
        return None
    return CONFIGS[facts.thinking](thinking, effort, facts, table.thinking, max_tokens)
