"""The usage summaries that ``gemini-proxy usage`` prints and the dashboard draws: the ledger's sums per key
or model (and per time bucket), with the cache hit rate and the cost at LiteLLM's prices."""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

from translator import ReportQuery

from .ledger import SUMMED, Ledger

GROUPS = {"key": "api_key_id", "model": "model"}
UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def seconds(text: str) -> int:
    """``90m``, ``12h``, ``7d``, ``2w`` as seconds; a ValueError saying the form otherwise."""
    found = re.fullmatch(r"(\d+)([mhdw])", text.strip())
    if not found or int(found.group(1)) == 0:
        raise ValueError(f"{text!r} is not a period such as 90m, 12h, 7d or 2w")
    return int(found.group(1)) * UNITS[found.group(2)]


@dataclass
class Usage:
    """The sums of one group (a key's or a model's name), or of one time bucket."""

    name: str
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SUMMED, 0))
    cost_usd: float = 0.0

    @property
    def cache_hit_rate(self) -> float:
        """Of the input tokens, the share read from Gemini's cache."""
        read = self.tokens["cache_read_input_tokens"]
        total = read + self.tokens["uncached_input_tokens"] + self.tokens["cache_creation_input_tokens"]
        return read / total if total else 0.0

    def add(self, row: dict[str, Any], price: dict[str, float]) -> None:
        for name in SUMMED:
            self.tokens[name] += row[name]
        self.cost_usd += sum(price.get(name, 0.0) * row[name] for name in SUMMED)


def window(since: int, now: float, width: int) -> ReportQuery:
    """Buckets of ``width`` seconds covering the last ``since`` seconds up to now."""
    start = math.floor((now - since) / width) * width
    end = math.floor(now / width) * width + width
    return ReportQuery(start, end, end, width, ("api_key_id", "model"), {})


async def summary(ledger: Ledger, since: int, now: float, width: int = 3600) -> list[dict[str, Any]]:
    """The ledger's sums per bucket, key and model over the last ``since`` seconds (what the others fold)."""
    await ledger.flush()
    return await ledger.totals(window(since, now, width), ("api_key_id", "model"))


def fold(rows: Iterable[dict[str, Any]], group: str, prices: dict[str, dict[str, float]]) -> list[Usage]:
    """Sums per ``group`` (api_key_id, model, or bucket), most tokens first."""
    found: dict[str, Usage] = {}
    for row in rows:
        name = str(row[group])
        found.setdefault(name, Usage(name)).add(row, prices.get(row["model"], {}))
    return sorted(found.values(), key=lambda usage: -sum(usage.tokens.values()))


def model_prices(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, float]]:
    from ..engines import litellm_adapter
    return litellm_adapter.prices({row["model"] for row in rows if row["model"]})


async def recent(ledger: Ledger, since: int, now: float, limit: int = 20) -> dict[str, list[dict[str, Any]]]:
    """The last errors (status >= 400) and the answering model of each requested one (fallbacks show there)."""
    from sqlalchemy import desc, func, select

    from .ledger import usage_ledger as table
    start = int((now - since) * 1000)
    errors = (select(table.c.time_ms, table.c.key_name, table.c.model, table.c.status, table.c.stop_reason)
              .where(table.c.time_ms >= start, table.c.status >= 400).order_by(desc(table.c.time_ms)).limit(limit))
    routes = (select(table.c.model, table.c.answered_by, func.count().label("requests"))
              .where(table.c.time_ms >= start, table.c.answered_by.is_not(None))
              .group_by(table.c.model, table.c.answered_by))
    assert ledger.engine is not None  # the dashboard reads while serving, after Ledger.start()
    async with ledger.engine.connect() as connection:
        return {"errors": [dict(row._mapping) for row in await connection.execute(errors)],
                "routes": [dict(row._mapping) for row in await connection.execute(routes)]}
