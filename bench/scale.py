"""Suite 4: 1,000 concurrent streams on one Hypercorn worker and on two (``workers = 2``).

For each worker count a fresh proxy process is launched (same generated TOML as suite 2) against
the fake Gemini (its own process, 7-chunk answer, backlog 4096), and:

* startup: from process launch to the first ``GET /health`` answered and to the first
  ``POST /v1/messages`` answered (the first call also pays LiteLLM's lazy imports);
* N streams opened at once (aiohttp, one connection each), a few rounds: throughput (streams/s over
  the round's wall time), errors (non-200, missing ``message_stop``, exceptions), first-event and
  total latency (median, p90, p99);
* peak memory: VmHWM of every server process (/proc/<pid>/status), the workers summed, read
  before the server is stopped.
"""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from . import common
from .e2e import HEADERS, SMALL_BODY

BODY_NS = json.dumps({**SMALL_BODY, "stream": False}).encode()
BODY_S = json.dumps({**SMALL_BODY, "stream": True}).encode()


async def _burst(url: str, n: int, timeout_s: float) -> dict[str, Any]:
    import aiohttp

    first: list[float] = []
    total: list[float] = []
    errors: list[str] = []

    async def one(session) -> None:
        t0 = time.perf_counter()
        t_first = None
        buf = bytearray()
        try:
            async with session.post(url + "/v1/messages", data=BODY_S, headers=HEADERS) as resp:
                async for data in resp.content.iter_any():
                    if t_first is None:
                        t_first = time.perf_counter()
                    buf += data
            if resp.status != 200 or b"event: message_stop" not in buf:
                errors.append(f"status {resp.status}: {bytes(buf[-200:])!r}")
                return
        except Exception as exc:  # noqa: BLE001 - counted
            errors.append(f"{type(exc).__name__}: {exc}"[:200])
            return
        t1 = time.perf_counter()
        first.append(t_first - t0)
        total.append(t1 - t0)

    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s)) as session:
        t0 = time.perf_counter()
        await asyncio.gather(*(one(session) for _ in range(n)))
        wall = time.perf_counter() - t0
    return {"n": n, "ok": len(total), "errors": len(errors), "error_samples": errors[:5], "wall_s": wall,
            "streams_per_s": len(total) / wall, "first_event": common.summary(first), "total": common.summary(total)}


def _one_config(fake: common.FakeProcess, workers: int, n: int, rounds: int) -> dict[str, Any]:
    proxy = common.ProxyProcess(fake.base_url, workers=workers, name=f"proxy-scale-{workers}w")
    try:
        health = common.first_ok(proxy.port)
        message = common.first_ok(proxy.port, "POST", "/v1/messages", BODY_NS, HEADERS)
        if health is None or message is None:
            raise RuntimeError(f"proxy ({workers} workers) did not start; see {proxy.log_path}")
        startup = {"to_health_s": health - proxy.launched, "to_first_message_s": message - proxy.launched}
        asyncio.run(_burst(proxy.url, 64, 60))  # warm-up: imports, pools, a few connections per worker
        cpu0 = {pid: common.cpu_seconds(pid) for pid in proxy.worker_pids()}
        runs = [asyncio.run(_burst(proxy.url, n, 300)) for _ in range(rounds)]
        cpu = {pid: common.cpu_seconds(pid) - c for pid, c in cpu0.items()}
        memory = proxy.memory()
    finally:
        proxy.stop()
    ok = sum(r["ok"] for r in runs)
    return {"workers": workers, "startup": startup, "rounds": runs, "memory": memory,
            "worker_cpu_s": cpu, "proxy_cpu_ms_per_stream": sum(cpu.values()) * 1000 / ok if ok else float("nan")}


def run(quick: bool = False, e2e_figures: dict[str, Any] | None = None) -> dict[str, Any]:
    n, rounds = (200, 1) if quick else (1000, 2)
    fake = common.FakeProcess(common.SMALL_ANSWER)
    try:
        configs = [_one_config(fake, w, n, rounds) for w in (1, 2)]
    finally:
        fake.stop()
    rows = []
    for cfg in configs:
        for i, r in enumerate(cfg["rounds"]):
            rows.append((f"{cfg['workers']} worker{'s' if cfg['workers'] > 1 else ''}, round {i + 1}", r["n"], r["ok"],
                         r["errors"], r["streams_per_s"], r["first_event"]["median"], r["first_event"]["p90"],
                         r["first_event"]["p99"], r["total"]["median"], r["total"]["p90"], r["total"]["p99"]))
    print(common.table(["config", "streams", "ok", "err", "streams/s", "first p50", "first p90", "first p99",
                        "total p50", "total p90", "total p99"], rows,
                       title=f"\n== 4. Scale: {n} concurrent streams (7-chunk answer; latencies in ms)"))
    rows = []
    for cfg in configs:
        mem = cfg["memory"]
        per = ", ".join(f"{p.get('VmHWM', 0):.0f}" for p in mem["processes"]
                        if p["pid"] != mem["processes"][0]["pid"] and "resource_tracker" not in p.get("cmd", ""))
        rows.append((f"{cfg['workers']} worker{'s' if cfg['workers'] > 1 else ''}",
                     cfg["startup"]["to_health_s"] * 1000, cfg["startup"]["to_first_message_s"] * 1000,
                     mem["workers_vmhwm_mib"], per, mem["all_vmhwm_mib"], cfg["proxy_cpu_ms_per_stream"]))
    print(common.table(["config", "startup→/health ms", "startup→1st message ms", "peak RSS workers MiB",
                        "per worker", "all processes MiB", "proxy CPU ms/stream"], rows))
    results = {"streams": n, "configs": configs}
    results["plot"] = _plot(configs, e2e_figures)
    return results


def _plot(configs: list[dict[str, Any]], e2e_figures: dict[str, Any] | None) -> str | None:
    plt = common.pyplot()
    if plt is None:
        return None
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    for ax, (figure, key, title) in zip(axes, (("stream_first_event", "first_event", "streaming, first event"),
                                               ("stream_total", "total", "streaming, total"))):
        for cfg, color in zip(configs, ("tab:blue", "tab:orange")):
            xs, p50, p99 = [], [], []
            if cfg["workers"] == 1 and e2e_figures and figure in e2e_figures and "proxy" in e2e_figures[figure]:
                for c, s in sorted(e2e_figures[figure]["proxy"].items()):
                    xs.append(int(c))
                    p50.append(s["median"])
                    p99.append(s["p99"])
            last = cfg["rounds"][-1]
            xs.append(last["n"])
            p50.append(last[key]["median"])
            p99.append(last[key]["p99"])
            label = f"proxy, {cfg['workers']} worker{'s' if cfg['workers'] > 1 else ''}"
            ax.plot(xs, p50, "o-", color=color, label=f"{label} p50")
            ax.plot(xs, p99, "x--", color=color, alpha=0.7, label=f"{label} p99")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("concurrent streams")
        ax.set_ylabel("latency, ms")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Proxy latency against concurrency (c=1/16/64 from suite 2; the burst from suite 4)")
    fig.tight_layout()
    path = common.RESULTS / "scale.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)
