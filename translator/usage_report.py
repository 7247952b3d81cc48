"""Anthropic's Admin API usage and cost reports, built from the proxy's ledger totals.

:func:`report_query` checks the query string of ``/v1/organizations/usage_report/messages`` (or
``/v1/organizations/cost_report``) and says which time buckets the page holds; the service sums the
ledger per bucket (and per group), and :func:`usage_page` / :func:`cost_page` shape those sums as
Anthropic does: every bucket of the page, ``results`` per group (fields not grouped by are null),
``has_more`` and ``next_page``. Buckets are UTC minutes, hours or days; ``starting_at`` is snapped down
to its bucket, ``ending_at`` up (the bucket it falls in is whole); without ``ending_at`` the range ends
with the current bucket.
"""
from __future__ import annotations

import base64
import binascii
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Iterable, Mapping, Sequence

from .errors import AnthropicError
from .prices import PricesTable, rates

WIDTHS = {"1m": 60, "1h": 3600, "1d": 86400}
BUCKET_LIMITS = {"1d": (7, 31), "1h": (24, 168), "1m": (60, 1440)}   # (default, most) buckets per page
LEDGER_GROUPS = ("api_key_id", "model", "service_tier")
ABSENT_GROUPS = ("workspace_id", "context_window", "inference_geo", "speed", "account_id",
                 "service_account_id")   # accepted, always null: the proxy has none of these
COST_GROUPS = ("workspace_id", "description")
FILTERS = {"api_key_ids": "api_key_id", "models": "model", "service_tiers": "service_tier"}
TOKEN_TYPES = {"uncached_input_tokens": "uncached_input_tokens", "cache_read_input_tokens": "cache_read_input_tokens",
               "output_tokens": "output_tokens"}   # cache writes: _token_counts
PAGE_PREFIX = "page_"


@dataclass(frozen=True)
class ReportQuery:
    """One page of a report: buckets from ``start`` to ``end`` (epoch seconds, ``end`` exclusive) of ``width``
    seconds, of a range that ends at ``stop``; the groups and filters asked for."""

    start: int
    end: int
    stop: int
    width: int
    group_by: tuple[str, ...]
    filters: Mapping[str, tuple[str, ...]]   # ledger group → the values kept

    @property
    def ledger_groups(self) -> tuple[str, ...]:
        return tuple(group for group in LEDGER_GROUPS if group in self.group_by)


def _invalid(message: str) -> AnthropicError:
    return AnthropicError(400, "invalid_request_error", message)


def _values(args: Mapping[str, Sequence[str]], name: str) -> list[str]:
    """A parameter given as ``name[]=`` (Anthropic's form) or ``name=``, repeated or not."""
    return [*args.get(name + "[]", ()), *args.get(name, ())]


def _one(args: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = _values(args, name)
    if len(values) > 1:
        raise _invalid(f"{name}: give it once (got {len(values)} values).")
    return values[0] if values else None


def _epoch(text: str, name: str) -> float:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise _invalid(f"{name}: {text!r} is not an RFC 3339 timestamp with a time zone "
                       "(e.g. 2025-08-01T00:00:00Z).")
    return moment.timestamp()


def rfc3339(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def page_token(epoch: int) -> str:
    """``next_page``: the start of the next page, as Anthropic's tokens carry it (base64 of the time)."""
    return PAGE_PREFIX + base64.urlsafe_b64encode(rfc3339(epoch).encode()).decode()


def _page_start(token: str) -> float:
    try:
        return _epoch(base64.urlsafe_b64decode(token.removeprefix(PAGE_PREFIX).encode()).decode(), "page")
    except (binascii.Error, UnicodeDecodeError, AnthropicError):
        raise _invalid("page: not a next_page token of this report.") from None


def _limit(text: str | None, width_name: str) -> int:
    default, most = BUCKET_LIMITS[width_name]
    if text is None:
        return default
    if not text.isdigit() or not 1 <= int(text) <= most:
        raise _invalid(f"limit: must be a whole number from 1 to {most} for bucket_width {width_name} (got {text!r}).")
    return int(text)


def _groups(args: Mapping[str, Sequence[str]], allowed: Sequence[str]) -> tuple[str, ...]:
    groups = tuple(dict.fromkeys(_values(args, "group_by")))
    for group in groups:
        if group not in allowed:
            raise _invalid(f"group_by: {group!r} is not one of {', '.join(allowed)}.")
    return groups


def report_query(args: Mapping[str, Sequence[str]], now: float, *, cost: bool = False) -> ReportQuery:
    """The page a report request asks for; ``args``: each query parameter with its values."""
    known = {"starting_at", "ending_at", "bucket_width", "limit", "page", "group_by", "beta",
             *(() if cost else FILTERS)}
    for name in args:
        if name.removesuffix("[]") not in known:
            raise _invalid(f"{name}: not a parameter this proxy's {'cost' if cost else 'usage'} report takes "
                           f"(it takes {', '.join(sorted(known - {'beta'}))}).")
    width_name = _one(args, "bucket_width") or "1d"
    if width_name not in (("1d",) if cost else WIDTHS):
        raise _invalid(f"bucket_width: must be {'1d' if cost else 'one of 1d, 1h, 1m'} (got {width_name!r}).")
    width = WIDTHS[width_name]
    starting_at = _one(args, "starting_at")
    if starting_at is None:
        raise _invalid("starting_at: required (an RFC 3339 timestamp).")
    first = math.floor(_epoch(starting_at, "starting_at") / width) * width
    ending_at = _one(args, "ending_at")
    stop = math.ceil((_epoch(ending_at, "ending_at") if ending_at else now) / width) * width
    if ending_at and _epoch(ending_at, "ending_at") <= _epoch(starting_at, "starting_at"):
        raise _invalid("ending_at: must be later than starting_at.")
    page = _one(args, "page")
    start = max(first, math.floor(_page_start(page) / width) * width) if page else first
    end = max(start, min(stop, start + _limit(_one(args, "limit"), width_name) * width))
    groups = _groups(args, COST_GROUPS if cost else (*LEDGER_GROUPS, *ABSENT_GROUPS))
    filters = {group: tuple(_values(args, name)) for name, group in FILTERS.items() if _values(args, name)}
    return ReportQuery(start, end, stop, width, groups, filters)


def _page(query: ReportQuery, results: Mapping[int, list[dict[str, Any]]]) -> dict[str, Any]:
    buckets = [{"starting_at": rfc3339(t), "ending_at": rfc3339(t + query.width), "results": results.get(t, [])}
               for t in range(query.start, query.end, query.width)]
    more = query.end < query.stop
    return {"data": buckets, "has_more": more, "next_page": page_token(query.end) if more else None}


def usage_page(query: ReportQuery, totals: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The usage report page from the ledger's sums per ``bucket`` (and per group of ``query.ledger_groups``)."""
    results: dict[int, list[dict[str, Any]]] = {}
    for row in sorted(totals, key=lambda r: (r["bucket"], *(str(r.get(g)) for g in query.ledger_groups))):
        results.setdefault(row["bucket"], []).append({
            "uncached_input_tokens": row["uncached_input_tokens"],
            "cache_creation": _cache_writes(row),
            "cache_read_input_tokens": row["cache_read_input_tokens"],
            "output_tokens": row["output_tokens"],
            "server_tool_use": {"web_search_requests": row["web_search_requests"]},
            **{group: (row.get(group) if group in query.group_by else None) for group in LEDGER_GROUPS},
            **{group: None for group in ABSENT_GROUPS},
        })
    return _page(query, results)


def _cache_writes(row: Mapping[str, Any]) -> dict[str, int]:
    """Anthropic's split of the cache writes by TTL (the ledger keeps all writes, and of them the 1-hour ones)."""
    hour = row.get("cache_creation_1h_input_tokens", 0)
    return {"ephemeral_1h_input_tokens": hour, "ephemeral_5m_input_tokens": row["cache_creation_input_tokens"] - hour}


def _token_counts(row: Mapping[str, Any], field: str) -> list[tuple[str, int]]:
    """A ledger sum as the cost report's token types: cache writes in their 5-minute and 1-hour parts."""
    if field == "cache_creation_input_tokens":
        return [(f"cache_creation.{part}", count) for part, count in sorted(_cache_writes(row).items(), reverse=True)]
    return [(TOKEN_TYPES[field], row[field])]


def _cents(amount: Decimal) -> str:
    return f"{(amount * 100).normalize():f}" if amount else "0"


def _context_window(row: Mapping[str, Any]) -> str | None:
    """Anthropic's context_window of a row the ledger grouped by ``long_context`` (None when it did not)."""
    return None if row.get("long_context") is None else ("200k-1M" if row["long_context"] else "0-200k")


def _item(row: Mapping[str, Any], cost_type: str, token_type: str | None, usd: Decimal | None,
          tier: str) -> dict[str, Any]:
    what = token_type or cost_type
    return {"amount": usd, "currency": "USD", "cost_type": cost_type, "token_type": token_type, "model": row["model"],
            "description": f"{row['model']} usage - {what}" + ("" if usd is not None else
                           " - unpriced (no price in spec/prices.yaml or LiteLLM's map)"),
            "service_tier": tier, "context_window": _context_window(row), "workspace_id": None}


def _costs(row: Mapping[str, Any], table: PricesTable, litellm: Mapping[str, float]) -> list[dict[str, Any]]:
    """The cost items of one model's sums in one tier on one day, at the prices in force that day (the
    long-context prices for each request whose prompt was over the table's threshold); a part without a
    price is an item of its own with no amount (unpriced), never zero."""
    tier = row.get("service_tier") or "standard"
    day = datetime.fromtimestamp(row["bucket"], timezone.utc).date()
    found = rates(table, str(row["model"]), day, tier, litellm, bool(row.get("long_context")))
    items = [_item(row, "tokens", token_type, None if rate is None else rate * count, tier)
             for field, rate in found.per_token.items() for token_type, count in _token_counts(row, field) if count]
    if row["web_search_requests"]:
        usd = None if found.web_search is None else found.web_search * row["web_search_requests"]
        items.append(_item(row, "web_search", None, usd, tier))
    return items


def _storage(row: Mapping[str, Any], table: PricesTable) -> dict[str, Any]:
    """Explicit caches kept: their token-hours at the model's storage price that day."""
    day = datetime.fromtimestamp(row["bucket"], timezone.utc).date()
    rate = rates(table, str(row["model"]), day, "standard").storage_per_hour
    usd = None if rate is None else rate * Decimal(str(row["token_hours"]))
    return _item(row, "cache_storage", None, usd, "standard")


def cost_page(query: ReportQuery, totals: Iterable[Mapping[str, Any]], table: PricesTable,
              litellm: Mapping[str, Mapping[str, float]], storage: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """The cost report page from the ledger's sums per bucket, ``model``, ``service_tier`` and ``long_context``
    (the prompt was over prices.yaml's long_context_tokens; absent: it was not), priced by
    prices.yaml (``table``) on each bucket's day, and LiteLLM's map (``litellm``: USD per token, per model)
    where the table has no price; ``storage``: explicit caches' token-hours per bucket and model, a line
    of their own. Amounts are in cents; an unpriced part has a null amount and says so."""
    items: dict[int, list[dict[str, Any]]] = {}
    for row in sorted(totals, key=lambda r: (r["bucket"], str(r["model"]), str(r.get("service_tier")),
                                             bool(r.get("long_context")))):
        items.setdefault(row["bucket"], []).extend(_costs(row, table, litellm.get(str(row["model"]), {})))
    for row in sorted(storage, key=lambda r: (r["bucket"], str(r["model"]))):
        if query.start <= row["bucket"] < query.end and row["token_hours"]:
            items.setdefault(row["bucket"], []).append(_storage(row, table))
    described = "description" in query.group_by
    results: dict[int, list[dict[str, Any]]] = {}
    for bucket, found in items.items():
        if described:
            results[bucket] = [{**item, "amount": None if item["amount"] is None else _cents(item["amount"])}
                               for item in found]
        else:
            total = sum((item["amount"] for item in found if item["amount"] is not None), Decimal(0))
            unpriced = sorted({item["model"] for item in found if item["amount"] is None})
            results[bucket] = [{"amount": _cents(total), "currency": "USD", "cost_type": None, "token_type": None,
                                "model": None, "description": None, "service_tier": None,
                                "context_window": None, "workspace_id": None}]
            results[bucket] += [{**_item({"model": model}, "tokens", None, None, "standard"), "amount": None}
                                for model in unpriced]
    return _page(query, results)
