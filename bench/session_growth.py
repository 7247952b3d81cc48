"""Suite 7: the cost of a long session (issue 26) — a Claude Code turn grown to 49 KB, 300 KB and 1.1 MB.

``uv run python -m bench.session_growth [--quick] [--no-peers]`` (or ``python -m bench --only growth``)

Claude Code re-sends the whole conversation on every turn (bench/growth_body.py builds the grown turn). Each
turn, streamed, goes through this proxy, claude-code-router and LiteLLM's proxy server (bench/peers.py installs
and starts them), all against one fake Gemini, the servers interleaved request by request. Per body size and
server: CPU per request of the server's whole process tree (/proc, summed over the segment's requests so the
10 ms tick does not dominate) and whether each answer was a valid Anthropic stream (bench/answer_check.py).

Beside them, in this process: the JSON floor, ``json.loads`` + ``json.dumps`` of each body (the minimum of
several runs), and the proxy's CPU ÷ that floor; "Say hello" (a tiny streamed request) and the 49 KB turn
minus it (measured again in alternating blocks of each, so that a slow spell of the machine falls on
both); and the loop stall: while two big turns are served concurrently and repeatedly, a thread polls the
proxy's ``/health`` every ~10 ms on its own connection and the longest and p99 waits are reported.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import json
import math
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from . import common, e2e, growth_body, peers
from .answer_check import check_answer, peer_form, without_cache_control

SERVERS = ("proxy", "ccr", "litellm_proxy")
# LiteLLM's proxy once more, the turn without cache_control (as sent, it fails on a context-cache call the fake
# does not serve): what it costs when it does the work. Its own segment, as it is the same process tree.
NO_CACHE = "litellm_proxy_no_cache"
HELLO = "hello"
FLOOR_RUNS = 9
# Issue 26's targets.
FLOOR_RATIO_MAX = 3.0     # proxy CPU per 1.1 MB turn ÷ the JSON floor
HELLO_EXTRA_MAX_MS = 2.0  # 49 KB turn − "Say hello"
STALL_MAX_MS = 50.0       # longest /health wait while big turns are served


def plan(quick: bool) -> dict[str, Any]:
    """Requests per server for each body (label → n), and seconds of each loop-stall phase."""
    if quick:
        return {"requests": {HELLO: 10, "49 KB": 10, "300 KB": 6, "1.1 MB": 4}, "stall_s": 3.0, "pairs": (3, 5)}
    return {"requests": {HELLO: 60, "49 KB": 60, "300 KB": 30, "1.1 MB": 20}, "stall_s": 8.0, "pairs": (12, 10)}


# ------------------------------------------------------------------------------------ the JSON floor
def json_floor_ms(payload: bytes, runs: int = FLOOR_RUNS) -> float:
    """``json.loads`` + ``json.dumps`` of one body in this process: the least of ``runs``, in ms. The collector
    is off meanwhile: this process holds LiteLLM's start-up objects, which the proxy freezes out of its reach."""
    best = float("inf")
    gc.collect()
    gc.disable()
    try:
        for _ in range(runs):
            t0 = time.perf_counter()
            json.dumps(json.loads(payload))
            best = min(best, time.perf_counter() - t0)
    finally:
        gc.enable()
    return best * 1000


def _update_floors(bodies: dict[str, dict[str, Any]], figures: dict[str, dict[str, Any]]) -> None:
    """Each body's floor, the least seen so far: measured again before every segment, so that the other load
    on a shared box (which only ever adds) is mostly left out."""
    for label, body in bodies.items():
        floor = figures[label]
        floor["json_floor_ms"] = min(floor["json_floor_ms"], json_floor_ms(growth_body.encode(body)))


# ------------------------------------------------------------------------------------ CPU and answers
def tree_cpu_s(pids: list[int]) -> float:
    """CPU seconds of a server's processes (a process gone since counts nothing)."""
    return sum(t for t in (common.cpu_seconds(pid) for pid in pids) if not math.isnan(t))


async def ask(session, url: str, payload: bytes) -> dict[str, Any]:
    """One streamed request; the answer's validity (answer_check.check_answer) and wall time."""
    import aiohttp

    t0 = time.perf_counter()
    try:
        async with session.post(url + "/v1/messages", data=payload, headers=e2e.HEADERS,
                                timeout=aiohttp.ClientTimeout(total=120)) as resp:
            raw = await resp.read()
        row = check_answer(resp.status, resp.headers.get("content-type", ""), raw)
    except (TimeoutError, aiohttp.ClientError) as exc:
        row = {"valid": False, "problem": f"{type(exc).__name__}: {exc}"[:300]}
    row["wall_s"] = time.perf_counter() - t0
    return row


async def segment(session, urls: dict[str, str], pids: dict[str, list[int]], payloads: dict[str, bytes],
                  n: int) -> dict[str, dict[str, Any]]:
    """``n`` requests to each server, interleaved; per server: CPU ms per request, valid answers, a problem."""
    for name, url in urls.items():  # warm-up, not counted
        await ask(session, url, payloads[name])
    cpu0 = {name: tree_cpu_s(pids[name]) for name in urls}
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in urls}
    for _ in range(n):
        for name, url in urls.items():
            rows[name].append(await ask(session, url, payloads[name]))
    await asyncio.sleep(0.2)  # work a server does after its last byte (logging, ledger) is its own
    out = {}
    for name, got in rows.items():
        problems = [r["problem"] for r in got if r.get("problem")]
        out[name] = {"n": n, "cpu_ms_per_request": (tree_cpu_s(pids[name]) - cpu0[name]) * 1000 / n,
                     "valid": sum(bool(r["valid"]) for r in got), "problem": problems[0] if problems else "",
                     "wall_ms": common.summary([r["wall_s"] for r in got])["median"],
                     "bytes_out": got[-1].get("bytes")}
    return out


# ------------------------------------------------------------------------------------ the loop stall
async def paired(session, url: str, pids: list[int], payloads: dict[str, bytes], blocks: int,
                 size: int) -> dict[str, float]:
    """CPU ms per request of each payload on one server, in alternating blocks of ``size`` requests, so that
    the machine's slow spells fall on all of them alike: a difference of two segments measured one after
    the other (49 KB − "Say hello") moved by ±2 ms between runs."""
    for payload in payloads.values():  # warm-up, not counted
        await ask(session, url, payload)
    spent = dict.fromkeys(payloads, 0.0)
    for _ in range(blocks):
        for name, payload in payloads.items():
            before = tree_cpu_s(pids)
            for _ in range(size):
                await ask(session, url, payload)
            spent[name] += tree_cpu_s(pids) - before
    return {name: total * 1000 / (blocks * size) for name, total in spent.items()}


def _poll_health(port: int, stop: threading.Event, waits: list[float], errors: list[str]) -> None:
    """GET /health every ~10 ms on one keep-alive connection, recording each wait."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            conn.request("GET", "/health")
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                errors.append(f"HTTP {resp.status}")
        except OSError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        waits.append(time.perf_counter() - t0)
        stop.wait(0.01)
    conn.close()


async def stall(session, url: str, port: int, payload: bytes | None, seconds: float) -> dict[str, Any]:
    """/health waits while two tasks send ``payload`` back to back for ``seconds`` (none: the idle loop)."""
    stop, waits, errors = threading.Event(), [], []
    poller = threading.Thread(target=_poll_health, args=(port, stop, waits, errors), name="health-poller",
                              daemon=True)
    served = invalid = 0
    deadline = time.perf_counter() + seconds

    async def turns() -> None:
        nonlocal served, invalid
        while time.perf_counter() < deadline:
            row = await ask(session, url, payload)
            served += 1
            invalid += not row["valid"]

    poller.start()
    if payload is None:
        await asyncio.sleep(seconds)
    else:
        await asyncio.gather(turns(), turns())
    stop.set()
    await asyncio.to_thread(poller.join, 30)
    s = common.summary(waits)
    return {"polls": s["n"], "max_ms": s["max"], "p99_ms": s["p99"], "median_ms": s["median"],
            "turns_served": served, "turns_invalid": invalid, "poll_errors": errors[:3]}


# ------------------------------------------------------------------------------------ the run
def _bodies(sizes: dict[str, int]) -> dict[str, dict[str, Any]]:
    bodies = {HELLO: {**e2e.SMALL_BODY, "stream": True}}
    bodies.update(growth_body.grown_requests(sizes))
    return bodies


def _payloads(body: dict[str, Any], servers: list[str]) -> dict[str, bytes]:
    return {name: growth_body.encode(peer_form(body, name)) for name in servers}


async def _measure(quick: bool, servers: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    p = plan(quick)
    bodies = _bodies(growth_body.SIZES)
    urls = {name: servers[name].url for name in SERVERS if name in servers}
    pids = {name: (s.tree() if name == "proxy" else s.pids) for name, s in servers.items()}
    out: dict[str, Any] = {"bodies": {}, "cpu": {}, "stall": {}}
    for label, body in bodies.items():
        out["bodies"][label] = {"bytes": len(growth_body.encode(body)), "json_floor_ms": float("inf"),
                                "rounds": 0 if label == HELLO else growth_body.rounds(body)}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        for label, body in bodies.items():
            _update_floors(bodies, out["bodies"])
            n = p["requests"][label]
            out["cpu"][label] = await segment(session, urls, pids, _payloads(body, list(urls)), n)
            if "litellm_proxy" in urls:
                bare = growth_body.encode(without_cache_control(peer_form(body, "litellm_proxy")))
                out["cpu"][label].update(await segment(session, {NO_CACHE: urls["litellm_proxy"]},
                                                       {NO_CACHE: pids["litellm_proxy"]}, {NO_CACHE: bare}, n))
            print(f"(growth: {label} done)", flush=True)
        _update_floors(bodies, out["bodies"])
        small = {label: growth_body.encode(bodies[label]) for label in (HELLO, "49 KB")}
        out["paired"] = await paired(session, urls["proxy"], pids["proxy"], small, *p["pairs"])
        proxy = servers["proxy"]
        out["stall"]["idle"] = await stall(session, proxy.url, proxy.port, None, 1.0)
        for label, body in growth_body.grown_requests(growth_body.STALL_SIZES).items():
            out["stall"][label] = await stall(session, proxy.url, proxy.port, growth_body.encode(body), p["stall_s"])
    return out


def run(quick: bool = False, with_peers: bool = True) -> dict[str, Any]:
    servers: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    base, source = growth_body.base_request()
    fake = common.FakeProcess(common.SMALL_ANSWER)
    try:
        peers.CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="growth-", dir=peers.CACHE) as tmp:
            proxy = servers["proxy"] = common.ProxyProcess(fake.base_url, workers=1, name="proxy-growth")
            if common.first_ok(proxy.port) is None:
                raise RuntimeError(f"proxy did not start; see {proxy.log_path}")
            if with_peers:
                peers.start_peers(fake, Path(tmp), servers, skipped, peers.gemini_models(base))
            else:
                skipped.update(ccr="--no-peers", litellm_proxy="--no-peers")
            results = asyncio.run(_measure(quick, servers))
    finally:
        for server in servers.values():
            server.stop()
        fake.stop()
    measured = [s for s in SERVERS if s in servers] + ([NO_CACHE] if "litellm_proxy" in servers else [])
    results.update(source=source, skipped=skipped, servers=measured,
                   tools=len(base["tools"]), quick=quick)
    from . import growth_report

    growth_report.report(results)
    results["plot"] = growth_report.plot(results, docs=not quick)
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.session_growth", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer requests, shorter stall phases")
    ap.add_argument("--no-peers", action="store_true", help="this proxy only (no claude-code-router, LiteLLM proxy)")
    args = ap.parse_args(argv)
    from . import growth_report

    results = run(args.quick, with_peers=not args.no_peers)
    print("\n== Targets")
    for target in growth_report.targets(results):
        print(target.line())
    path = common.write_json(f"growth{'-quick' if args.quick else ''}.json", results)
    print(f"raw figures: {path.relative_to(common.ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
