"""Suite 5: what the usage ledger and the metrics add to a request.

Two proxies, served alike (one Hypercorn worker each, the same fake Gemini): ``bare`` runs with
``DATABASE_URL=off METRICS=off``; ``teams`` with the ledger in SQLite (under bench/results), the
metrics, and a client key from a keys file with rpm/tpm limits (counted in process), so each of its
requests is authenticated by hash, admitted by the limiter, booked in the ledger, counted in the
metrics and charged against the tpm. The same small request (the e2e suite's) is timed at c=1
against both, interleaved in rounds; the figures are the medians of non-streaming totals and of
streams' first content events, and their differences.
"""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from service.teams.keys import add_key

from . import common
from .e2e import HEADERS, Clients

VARIANTS = ("bare", "teams")


async def _measure(clients: dict[str, Clients], quick: bool) -> dict[str, dict[str, list[float]]]:
    """Samples of both variants, alternating request by request (who goes first alternates too), so that
    the drift of a shared box hits both alike; ``delta_*``: teams minus bare, pair by pair."""
    samples: dict[str, dict[str, list[float]]] = {v: {"nonstream": [], "first_event": []} for v in VARIANTS}
    samples["delta"] = {"nonstream": [], "first_event": []}
    for variant in VARIANTS:  # warm-up
        for _ in range(10):
            await clients[variant].proxy_ns()
            await clients[variant].proxy_s()
    deadline = time.perf_counter() + (60 if quick else 300)
    for number in range(100 if quick else 600):
        order = VARIANTS if number % 2 else VARIANTS[::-1]
        pair = {}
        for variant in order:
            pair[variant] = (await clients[variant].proxy_ns(), (await clients[variant].proxy_s())[0])
        for index, mode in enumerate(("nonstream", "first_event")):
            for variant in VARIANTS:
                samples[variant][mode].append(pair[variant][index])
            samples["delta"][mode].append(pair["teams"][index] - pair["bare"][index])
        if time.perf_counter() > deadline:
            break
    return samples


async def _in_process(directory: Path, rounds: int) -> dict[str, float]:
    """CPU of the hot path itself, in this process (no HTTP, no noise from the box's other load): a key
    identified by hash, admitted by rpm and tpm, the answer booked (ledger queue, metrics, tpm charge);
    and the ledger's write, per row, of a batch as the writer makes it."""
    from service.config import load_settings
    from translator import load_spec
    from service.teams.keys import ClientKeys
    from service.teams.ledger import Ledger
    from service.teams.metrics import Metrics
    from service.state.rate_limits import RateLimits
    from service.teams.usage import record

    keys = directory / "micro-keys.yaml"
    keys.unlink(missing_ok=True)
    secret = add_key(keys, "micro", rpm=10**9, tpm=10**12)
    settings = load_settings({"PROXY_KEYS_FILE": str(keys), "DATABASE_URL": f"sqlite:///{directory / 'micro.db'}",
                              "LEDGER_FLUSH_SECONDS": "3600"}, env_file=None)
    metrics = Metrics()
    proxy = SimpleNamespace(metrics=metrics, rate_limits=RateLimits(settings, refusal=load_spec().errors.own.over_rate_limit), ledger=Ledger(settings))
    await proxy.ledger.start()
    identify = ClientKeys(settings).identify
    fields = {"model": "claude-haiku-4-5", "stream": False, "answered_by": "gemini/gemini-3.8-flash@abcdef012345",
              "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                        "output_tokens": 13}, "stop": "end_turn"}
    started = time.perf_counter()
    for number in range(rounds):
        client = identify([secret])
        assert await proxy.rate_limits.admit(client) is None
        record(proxy, f"req_{number}", client, 200, 0.01, fields)
        await asyncio.sleep(0)  # the tpm charge's task runs, as it does between requests
    per_request = (time.perf_counter() - started) / rounds
    await proxy.rate_limits.close()
    started = time.perf_counter()
    await proxy.ledger.flush()
    per_row = (time.perf_counter() - started) / rounds
    await proxy.ledger.close()
    return {"hot_path_ms": per_request * 1000, "ledger_write_per_row_ms": per_row * 1000}


async def _run(quick: bool, urls: dict[str, str], fake_url: str, key: str,
               workers: dict[str, list[int]]) -> dict[str, Any]:
    import aiohttp

    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        clients = {v: Clients(urls[v], fake_url, session) for v in VARIANTS}
        shared = HEADERS["x-api-key"]
        HEADERS["x-api-key"] = key  # both proxies take it: bare has no keys, teams has it in its keys file
        try:
            before = {v: sum(common.cpu_seconds(pid) for pid in pids) for v, pids in workers.items()}
            samples = await _measure(clients, quick)
            requests = 2 * len(samples["delta"]["nonstream"])
            cpu = {v: (sum(common.cpu_seconds(pid) for pid in pids) - before[v]) / requests * 1000
                   for v, pids in workers.items()}
            return {"samples": samples, "cpu_ms_per_request": cpu}
        finally:
            HEADERS["x-api-key"] = shared


def run(quick: bool = False) -> dict[str, Any]:
    keys = common.RESULTS / "teams-keys.yaml"
    keys.unlink(missing_ok=True)
    key = add_key(keys, "bench", rpm=1_000_000, tpm=1_000_000_000)
    ledger = common.RESULTS / "usage-teams-bench.db"
    for leftover in common.RESULTS.glob("usage-teams-bench.db*"):
        leftover.unlink()
    fake = common.FakeProcess(common.SMALL_ANSWER)
    servers: dict[str, common.ProxyProcess] = {}
    try:
        servers["bare"] = common.ProxyProcess(fake.base_url, name="proxy-bare",
                                              extra_env={"DATABASE_URL": "off", "METRICS": "off"})
        servers["teams"] = common.ProxyProcess(fake.base_url, name="proxy-teams", extra_env={
            "DATABASE_URL": f"sqlite:///{ledger}", "PROXY_KEYS_FILE": str(keys)})
        for server in servers.values():
            if common.first_ok(server.port) is None:
                raise RuntimeError(f"proxy did not start; see {server.log_path}")
        measured = asyncio.run(_run(quick, {v: s.url for v, s in servers.items()}, fake.base_url, key,
                                    {v: s.worker_pids() for v, s in servers.items()}))
    finally:
        for server in servers.values():
            server.stop()
        fake.stop()
    figures = {v: {m: common.summary(s) for m, s in modes.items()} for v, modes in measured["samples"].items()}
    cpu = measured["cpu_ms_per_request"]
    added = {m: figures["delta"][m]["median"] for m in ("nonstream", "first_event")}
    rows = [[v, *(f"{figures[v][m]['median']:.3f} / {figures[v][m]['p90']:.3f}" for m in ("nonstream", "first_event")),
             figures[v]["nonstream"]["n"]] for v in (*VARIANTS, "delta")]
    print(common.table(["variant", "non-streaming (median / p90)", "stream first event (median / p90)", "n"], rows,
                       "\n== 5. What the ledger, the metrics and a limited client key add, c=1 (ms; delta: "
                       "teams - bare, pair by pair)"))
    print(f"proxy worker CPU per request (ms): bare {cpu['bare']:.3f}, teams {cpu['teams']:.3f} "
          f"(added {cpu['teams'] - cpu['bare']:+.3f}; two processes on a shared box: a few % apart either way)")
    micro = asyncio.run(_in_process(common.RESULTS, 2000 if quick else 20000))
    print(f"in process: identify + admit + book = {micro['hot_path_ms'] * 1000:.1f} µs per request; the ledger's "
          f"batched write = {micro['ledger_write_per_row_ms'] * 1000:.1f} µs per row")
    return {"figures": figures, "added_ms": added, "cpu_ms_per_request": cpu, "in_process": micro}


def targets(results: dict[str, Any]) -> list[common.Target]:
    micro = results["in_process"]
    return [common.Target("teams: ledger + metrics + limits added to a non-streaming request, p50 of pairs",
                          results["added_ms"]["nonstream"], 0.3),
            common.Target("teams: ledger + metrics + limits added to a stream's first event, p50 of pairs",
                          results["added_ms"]["first_event"], 0.3),
            common.Target("teams: their CPU per request in process (hot path + batched write per row)",
                          micro["hot_path_ms"] + micro["ledger_write_per_row_ms"], 0.3)]
