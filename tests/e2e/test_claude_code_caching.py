"""What a real Claude Code session costs on Gemini with explicit context caching, and without it.

The same headless Claude Code 2.1.332 session (ROUNDS Bash calls, each a model call that re-sends the
whole conversation, then an answer) runs once behind a proxy with ``CONTEXT_CACHE=explicit`` and once
with ``CONTEXT_CACHE=implicit``. The proxy's usage report gives the tokens billed at each rate and its
cost report their cost by spec/prices.yaml (Gemini 3.8 Flash), with explicit caches' storage as a line
of its own. The fake Gemini gives no implicit cache hits, so the implicit session reads nothing from a
cache; the explicit one reads Claude Code's system prompt and tools from the cache the proxy made.
"""
from __future__ import annotations

import time
from decimal import Decimal

import httpx
import pytest

from tests.e2e.claude_records import assert_ok, model_calls

pytestmark = pytest.mark.e2e

ROUNDS = 8
MODEL = "gemini-3.8-flash"
TOKEN_FIELDS = ("uncached_input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")


def _bash_session(gemini) -> None:
    """ROUNDS Bash calls, each printing a few hundred lines, then an answer (a list, not counted from the
    contents: with a cache named, the earlier turns are in the cache, not in the call)."""
    gemini.enqueue(*[{"tool_calls": [("Bash", {"command": f"seq {n} 300", "description": "Print numbers"})]}
                     for n in range(ROUNDS)], {"text": "All printed."})


def _billed(proxy) -> tuple[dict[str, int], Decimal, Decimal]:
    """(tokens per rate, token cost, storage cost) in USD, from the proxy's usage and cost reports of today."""
    day = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime())
    usage = httpx.get(proxy.url + "/v1/organizations/usage_report/messages", params={"starting_at": day}).json()
    tokens = dict.fromkeys(TOKEN_FIELDS, 0)
    for row in usage["data"][-1]["results"]:
        row = {**row, "cache_creation_input_tokens": row["cache_creation"]["ephemeral_5m_input_tokens"]
               + row["cache_creation"]["ephemeral_1h_input_tokens"]}
        tokens = {name: tokens[name] + row[name] for name in TOKEN_FIELDS}
    costs = httpx.get(proxy.url + "/v1/organizations/cost_report",
                      params={"starting_at": day, "group_by[]": "description"}).json()["data"][-1]["results"]
    assert all(item["amount"] is not None for item in costs), costs   # every part is priced
    cents = {kind: sum((Decimal(i["amount"]) for i in costs if (i["cost_type"] == "cache_storage") == kind), Decimal(0))
             for kind in (False, True)}
    return tokens, cents[False] / 100, cents[True] / 100


def test_explicit_caching_reads_claude_codes_prefix_from_the_cache_and_costs_less(claude, make_proxy, gemini):
    billed = {}
    for mode in ("implicit", "explicit"):
        proxy = make_proxy(CONTEXT_CACHE=mode, BIG_MODEL=MODEL, SMALL_MODEL=MODEL)
        gemini.reset()
        _bash_session(gemini)
        run = claude(proxy.url, "Print numbers with seq several times, one Bash call at a time.",
                     "--allowedTools", "Bash")
        assert_ok(run)
        calls = model_calls(gemini)
        billed[mode] = (*_billed(proxy), len(calls), sum(1 for r in gemini.requests if "cachedContents" in r["path"]
                                                         and r["method"] == "POST"))
    print(f"\n[e2e] Claude Code {ROUNDS} Bash rounds on {MODEL}, tokens and cost by spec/prices.yaml:")
    for mode, (tokens, token_usd, storage_usd, calls, created) in billed.items():
        print(f"[e2e] CONTEXT_CACHE={mode:8}: {calls} generate calls, {created} caches made; uncached input "
              f"{tokens['uncached_input_tokens']:,}, cache written {tokens['cache_creation_input_tokens']:,}, "
              f"cache read {tokens['cache_read_input_tokens']:,}, output {tokens['output_tokens']:,}; "
              f"tokens ${token_usd:.4f}, storage ${storage_usd:.4f}, total ${token_usd + storage_usd:.4f}")
    implicit, explicit = billed["implicit"], billed["explicit"]
    assert implicit[0]["cache_read_input_tokens"] == implicit[0]["cache_creation_input_tokens"] == 0
    assert implicit[4] == 0 and implicit[2] == 0
    assert explicit[4] >= 1 and explicit[0]["cache_read_input_tokens"] > explicit[0]["uncached_input_tokens"]
    assert explicit[1] + explicit[2] < implicit[1]
