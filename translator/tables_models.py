"""The model of ``spec/models.yaml``: which model answers a requested name, and its facts."""
from __future__ import annotations

from typing import Annotated, Literal, Mapping, get_args

from pydantic import Field, StringConstraints

from .tables_base import UNIQUE, Absent, Count, Name, Positive, Regex, Rule, Table, _missing_keys


Level = Literal["minimal", "low", "medium", "high"]
Effort = Literal["low", "medium", "high", "xhigh", "max"]
ThinkingKind = Literal["budget", "level", "none"]
Prefix = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]+/$")]


class Defaults(Table):
    BIG_MODEL: Name
    SMALL_MODEL: Name


class Alias(Table):
    contains: Name
    target: Name
    # The Gemini tier asked for by a request that came through the alias (flex: background work at half price) unless the
    # client's key or the request says otherwise (README: Service tiers).
    service_tier: Literal["flex"] | Absent = None


def _reversed_range(pair: tuple[int, int]) -> str | None:
    return f"[{pair[0]}, {pair[1]}]: the low end is above the high end" if pair[0] > pair[1] else None


# [low, high] thinking budgets a model takes, both ends included ([0, 0]: it can be switched off).
BudgetRange = Annotated[tuple[Count, Count], Rule({}, _reversed_range)]


class Facts(Table):
    """What the translator must know about one model."""

    requires_when = {"thinking": {"level": ("levels",), "budget": ("budget",)}}
    max_output_tokens: Positive
    context_window: Positive
    thinking: ThinkingKind
    levels: Annotated[tuple[Level, ...], Field(min_length=1), UNIQUE] | Absent = None
    budget: Annotated[tuple[BudgetRange, ...], Field(min_length=1)] | Absent = None
    sampling_params: bool
    structured_output_with_tools: bool  # JSON mode (a response schema) and tools in one request
    fallbacks: Annotated[tuple[Name, ...], UNIQUE] | Absent = None  # models to try when this one cannot answer
    service_tiers: Annotated[tuple[ServiceTier, ...], UNIQUE] | Absent = None  # beyond standard
    cache_min_tokens: Positive | Absent = None  # the smallest explicit context cache Gemini makes; absent: none


class BudgetLevel(Table):
    max_budget: int
    level: Level


class ThinkingRules(Table):
    level_order: Annotated[tuple[Level, ...], Field(min_length=1), UNIQUE]
    adaptive_default_effort: Effort
    effort: Annotated[Mapping[Effort, Level], _missing_keys(*get_args(Effort))]
    effort_budgets: Annotated[Mapping[Effort, Count], _missing_keys(*get_args(Effort))]
    budget_levels: Annotated[tuple[BudgetLevel, ...], Field(min_length=1)]


class Listing(Table):
    """``GET /v1/models``: page sizes, and what the alias entries look like."""

    default_limit: Positive
    max_limit: Positive
    alias_id_prefix: Name
    created_at: Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")]


class ServerFallbacks(Table):
    """A request's ``fallbacks`` (server-side fallback on a refusal, beta server-side-fallback-2026-06-01):
    how many entries it may name."""

    max_entries: Positive


ServiceTier = Literal["priority", "flex"]


class ModelsTable(Table):
    """models.yaml: which model answers a requested name, and its facts."""

    defaults: Defaults
    aliases: tuple[Alias, ...]
    gemini_prefix: Annotated[str, StringConstraints(pattern="/$")]
    provider_prefixes: tuple[Prefix, ...]
    known_provider_prefixes: tuple[Prefix, ...]
    model_name_pattern: Regex
    strip_suffixes: tuple[Name, ...]
    fallback: Facts
    models: Annotated[Mapping[str, Facts], Field(min_length=1)]
    thinking: ThinkingRules
    listing: Listing
    server_fallbacks: ServerFallbacks
    speed_tiers: Mapping[Name, ServiceTier]  # a request's `speed` → the Gemini tier it asks for (standard: none)

    def target_name(self, target: str) -> str:
        """An alias target: the model BIG_MODEL or SMALL_MODEL stands for, or the name itself."""
        return getattr(self.defaults, target) if target in Defaults.model_fields else target
