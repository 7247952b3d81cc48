"""Helpers of the teams tests (client keys, limits, ledger, reports, metrics): a keys file, the ledger's rows
as the database holds them, the usage report read like an admin tool reads it."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from service.teams.keys import add_key
from service.teams.ledger import async_url, usage_ledger

ADMIN = "admin-key-0123456789abcdef"
BODY = {"model": "claude-sonnet-4-6", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


def keys_file(path: Path, **limits: dict[str, Any]) -> dict[str, str]:
    """A keys file with one key per name (``alice={"rpm": 2}``); returns each name's secret."""
    return {name: add_key(path, name, **options) for name, options in limits.items()}


def ledger_rows(url: str) -> list[dict[str, Any]]:
    """Every row of the ledger at ``url`` (a DATABASE_URL), read straight from the database."""
    async def read() -> list[dict[str, Any]]:
        engine = create_async_engine(async_url(url))
        try:
            async with engine.connect() as connection:
                return [dict(row._mapping) for row in await connection.execute(select(usage_ledger))]
        finally:
            await engine.dispose()
    return asyncio.run(read())


def post(proxy: Any, key: str, stream: bool = False, **extra: Any) -> httpx.Response:
    return httpx.post(proxy.url + "/v1/messages", json={**BODY, "stream": stream, **extra},
                      headers={"x-api-key": key}, timeout=30)


def usage_report(proxy: Any, key: str = ADMIN, **params: Any) -> httpx.Response:
    params.setdefault("starting_at", time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime(time.time() - 86400)))
    return httpx.get(proxy.url + "/v1/organizations/usage_report/messages", params=params,
                     headers={"x-api-key": key}, timeout=30)


def report_totals(proxy: Any, **params: Any) -> dict[Any, dict[str, int]]:
    """The report's sums over every bucket, per (api_key_id, model) of its results."""
    totals: dict[Any, dict[str, int]] = {}
    page = None
    while True:
        answer = usage_report(proxy, **params, **({"page": page} if page else {}))
        assert answer.status_code == 200, answer.text
        report = answer.json()
        for bucket in report["data"]:
            for result in bucket["results"]:
                sums = totals.setdefault((result["api_key_id"], result["model"]), dict.fromkeys(
                    ("input_tokens", "cache_read_input_tokens", "output_tokens", "web_search_requests"), 0))
                sums["input_tokens"] += result["uncached_input_tokens"]
                sums["cache_read_input_tokens"] += result["cache_read_input_tokens"]
                sums["output_tokens"] += result["output_tokens"]
                sums["web_search_requests"] += result["server_tool_use"]["web_search_requests"]
        if not report["has_more"]:
            return totals
        page = report["next_page"]


def received(usage: anthropic.types.Usage) -> dict[str, int]:
    """What a client was told it used, in the report's terms."""
    return {"input_tokens": usage.input_tokens, "cache_read_input_tokens": usage.cache_read_input_tokens or 0,
            "output_tokens": usage.output_tokens,
            "web_search_requests": usage.server_tool_use.web_search_requests if usage.server_tool_use else 0}


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of a Prometheus text exposition (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        sample, _, value = line.rpartition(" ")
        base, _, rest = sample.partition("{")
        if base == name and (",".join(sorted(rest.rstrip("}").split(","))) if rest else "") == wanted:
            return float(value)
    return 0.0
