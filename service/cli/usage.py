"""``gemini-proxy usage [--since 7d] [--by key|model]``: the ledger as a table in the terminal."""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import replace

from typing import Any

from ..config import load_settings

COLUMNS = (("input", "uncached_input_tokens"), ("cache write", "cache_creation_input_tokens"),
           ("cache read", "cache_read_input_tokens"), ("output", "output_tokens"))


def arguments(name: str, sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--since", default="7d", help="how far back: 90m, 12h, 7d, 2w (default 7d)")
    sub.add_argument("--by", choices=("key", "model"), default="key", help="one line per key or per model")
    sub.add_argument("--database", help="the ledger (default: DATABASE_URL)")
    sub.set_defaults(run=usage)


def table(groups: list[Any], title: str) -> str:
    """Fixed-width lines: the name, the tokens by kind, the cache hit rate, the cost; then the total."""
    from ..teams.dashboard_data import Usage
    total = Usage("total")
    for usage in groups:
        for name, value in usage.tokens.items():
            total.tokens[name] += value
        total.cost_usd += usage.cost_usd
    header = (title, *(label for label, _ in COLUMNS), "cache hit", "cost USD")
    lines = [(u.name, *(f"{u.tokens[f]:,}" for _, f in COLUMNS), f"{u.cache_hit_rate:.1%}", f"{u.cost_usd:.4f}")
             for u in [*groups, total]]
    widths = [max(len(str(line[i])) for line in (header, *lines)) for i in range(len(header))]
    render = [("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(line, widths))))
              for line in (header, *lines)]
    return "\n".join([render[0], "-" * len(render[0]), *render[1:-1], "-" * len(render[0]), render[-1]])


async def _rows(database: str, since: int) -> list[dict]:
    from ..teams.dashboard_data import summary
    from ..teams.ledger import Ledger
    ledger = Ledger(replace(load_settings(), database_url=database))
    await ledger.start()
    try:
        return await summary(ledger, since, time.time())
    finally:
        await ledger.close()


def usage(args: argparse.Namespace) -> int:
    from ..teams.dashboard_data import GROUPS, fold, model_prices, seconds
    try:
        since = seconds(args.since)
    except ValueError as invalid:
        print(f"gemini-proxy: --since: {invalid}", file=sys.stderr)
        return 2
    database = args.database or load_settings().database_url
    if database.lower() == "off":
        print("gemini-proxy: the ledger is off (DATABASE_URL=off)", file=sys.stderr)
        return 2
    rows = asyncio.run(_rows(database, since))
    print(table(fold(rows, GROUPS[args.by], model_prices(rows)), args.by))
    return 0
