"""spec/prices.yaml: what each Gemini model costs, from which day, and what a request's tokens cost.

The proxy owns its prices so that a price change is a YAML entry with a ``from:`` day, and so that a
model LiteLLM's bundled map does not know is still priced. Prices are USD per million tokens (cache
storage: per million tokens per hour); a service tier multiplies the token prices. A model or a price
the table lacks is taken from LiteLLM's map (the service passes it, in the ledger's field names, USD
per token); a model with neither is *unpriced*, which the cost report says rather than counting zero.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal, Mapping

from pydantic import Field, StringConstraints

from .errors import AnthropicError
from .tables_base import Absent, Rule, Table

Usd = Annotated[float, Field(ge=0)]
Day = Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}$")]
ServiceTier = Literal["standard", "priority", "flex", "batch"]
MILLION = Decimal(1_000_000)
# The ledger's token fields → the prices that bill them. A token written to an explicit cache bills as
# input (the create call) plus a cache read (the generate call that reads it at once).
TOKEN_RATES = {"uncached_input_tokens": ("input",), "cache_creation_input_tokens": ("input", "cache_read"),
               "cache_read_input_tokens": ("cache_read",), "output_tokens": ("output",)}
LITELLM_FIELDS = {"input": "uncached_input_tokens", "output": "output_tokens", "cache_read": "cache_read_input_tokens"}


class LongContextRates(Table):
    """Prices of a request whose prompt is longer than ``long_context_tokens``."""

    input: Usd
    output: Usd
    cache_read: Usd | Absent = None


def _in_order(entries: tuple[Any, ...]) -> str | None:
    days = [entry.from_day for entry in entries]
    return None if days == sorted(set(days)) else f"'from' days must rise, each once (got {', '.join(days)})"


class Price(Table):
    """One model's prices from ``from`` (a UTC day) until the next entry's."""

    from_day: Day = Field(alias="from")
    input: Usd
    output: Usd
    cache_read: Usd | Absent = None               # a cached token read (explicit or implicit cache)
    cache_storage_per_hour: Usd | Absent = None   # a cached token kept for an hour (explicit caches)
    web_search: Usd | Absent = None               # USD per grounded request
    above_long_context: LongContextRates | Absent = None
    tiers: Mapping[ServiceTier, Annotated[float, Field(gt=0)]] | Absent = None   # overrides the table's


class CacheRule(Table):
    """When a longer explicit cache replaces the one a conversation already has (README: Context caching)."""

    min_new_tokens: Annotated[int, Field(ge=0)]   # at least this many uncached tokens after the current cache
    min_uses: Annotated[float, Field(gt=0)]       # reads expected of a cache during its TTL


class PricesTable(Table):
    """prices.yaml: per model, its prices by day; the service tiers' multipliers."""

    long_context_tokens: Annotated[int, Field(ge=1)]
    tiers: Annotated[Mapping[ServiceTier, Annotated[float, Field(gt=0)]],
                     Rule({"required": ["standard"]}, lambda v: None if "standard" in v else "missing keys: standard")]
    cache_growth: CacheRule
    models: Mapping[str, Annotated[tuple[Price, ...], Field(min_length=1), Rule({}, _in_order)]]


def price_on(table: PricesTable, model: str, day: date) -> Price | None:
    """The model's price in force on ``day`` (the last entry from on or before it), or None."""
    found = None
    for entry in table.models.get(model.removeprefix("gemini/"), ()):
        if entry.from_day <= day.isoformat():
            found = entry
    return found


@dataclass(frozen=True)
class Rates:
    """USD per token (storage: per token-hour) of one model on one day in one tier; None: unpriced."""

    per_token: Mapping[str, Decimal | None]     # ledger token field → USD per token
    web_search: Decimal | None
    storage_per_hour: Decimal | None

    @property
    def priced(self) -> bool:
        return any(value is not None for value in self.per_token.values())


def _per_token(value: float | None) -> Decimal | None:
    return None if value is None else Decimal(str(value)) / MILLION


def _own_prices(price: Price | None, long_context: bool) -> dict[str, float | None]:
    """The entry's input, output and cache_read; a long-context request's where the entry has them."""
    own: dict[str, float | None] = {rate: getattr(price, rate) if price else None
                                    for rate in ("input", "output", "cache_read")}
    above = price.above_long_context if price and long_context else None
    if above is not None:
        own.update({rate: getattr(above, rate) for rate in own if getattr(above, rate) is not None})
    return own


def rates(table: PricesTable, model: str, day: date, tier: str,
          litellm: Mapping[str, float] | None = None, long_context: bool = False) -> Rates:
    """The model's rates on ``day`` in ``tier``: prices.yaml's, each missing one from ``litellm`` (USD per
    token, in the ledger's field names); the tier's multiplier applies to every token price. ``long_context``:
    the request's prompt was over ``long_context_tokens``, priced ``above_long_context`` where the entry has it."""
    price = price_on(table, model, day)
    own_prices = _own_prices(price, long_context)
    fallback = litellm or {}
    own_tiers = (price.tiers if price else None) or {}
    factor = next((t[k] for t in (own_tiers, table.tiers) for k in t if k == tier), 1.0)   # the entry's, else the table's
    multiplier = Decimal(str(factor))
    each: dict[str, Decimal] = {}
    for rate in ("input", "output", "cache_read"):
        own = _per_token(own_prices[rate])
        borrowed = fallback.get(LITELLM_FIELDS[rate])
        if own is not None or borrowed is not None:
            each[rate] = own if own is not None else Decimal(str(borrowed))
    per_token: dict[str, Decimal | None] = {}
    for field, parts in TOKEN_RATES.items():
        priced = parts[0] in each
        per_token[field] = sum((each[p] for p in parts if p in each), Decimal(0)) * multiplier if priced else None
    search = price.web_search if price and price.web_search is not None else fallback.get("web_search_requests")
    storage = _per_token(price.cache_storage_per_hour) if price else None
    return Rates(per_token, None if search is None else Decimal(str(search)), storage)


def unpriced_models(table: PricesTable, models: Mapping[str, Any] | list[str],
                    litellm: Mapping[str, Mapping[str, float]]) -> list[str]:
    """The models neither prices.yaml nor LiteLLM's map prices (warned about at start-up)."""
    return [m for m in models if m not in table.models and not litellm.get(m)]


def cache_worth_growing(table: PricesTable, model: str, day: date, new_tokens: int, ttl_seconds: int) -> bool:
    """Whether ``new_tokens`` uncached tokens after a conversation's current cache earn a longer cache.

    Writing them costs what sending them costs; keeping them costs storage per hour; each later read
    saves input minus cache_read. So a token earns its place when ``min_uses`` reads save more than its
    storage over the TTL, and the tail is long enough (``min_new_tokens``) to be worth an extra call."""
    if new_tokens < table.cache_growth.min_new_tokens:
        return False
    price = price_on(table, model, day)
    if price is None or price.cache_read is None or price.cache_storage_per_hour is None:
        return True   # no storage price known: Gemini's minimum and min_new_tokens decide
    saved = Decimal(str(table.cache_growth.min_uses)) * Decimal(str(price.input - price.cache_read))
    return saved >= Decimal(str(price.cache_storage_per_hour)) * Decimal(ttl_seconds) / 3600


ANTHROPIC_TIERS = ("auto", "standard_only")


def gemini_service_tier(requested: Any, background: str | None) -> str | None:
    """The Gemini service tier to ask for: Anthropic's ``service_tier`` (``auto``, the default, lets the
    proxy choose: the key's ``background`` tier, e.g. flex for batch-like work; ``standard_only`` never
    leaves standard). None: standard. Raises a 400 for another value."""
    if requested is not None and requested not in ANTHROPIC_TIERS:
        raise AnthropicError(400, "invalid_request_error",
                             f"service_tier: Input should be 'auto' or 'standard_only', got {requested!r}.")
    return None if requested == "standard_only" else background
