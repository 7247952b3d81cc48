"""Suites 2 and 3: the latency the proxy adds, and LiteLLM's own Anthropic interface, side by side.

Three processes: the fake Gemini (``python -m tests.fake_gemini``, logging off), the proxy (``hypercorn
--config <generated toml> service.app:app``, one worker, LOG_LEVEL=ERROR) and this client process.
For the same small request (a short user message; the fake answers a 50-character text, in 7
chunks when streamed) three variants are timed, interleaved round by round so that drift on this
shared box hits them alike:

* ``proxy``: an aiohttp client (one pooled session) → the proxy → LiteLLM → the fake;
* ``direct``: ``litellm.acompletion(**translator kwargs, api_base=fake, api_key=...)`` in this process;
* ``interface``: ``litellm.anthropic_interface.messages.acreate(model="gemini/...", ...)`` in this process;
* ``interface_np``: the same, with LiteLLM's per-call attempt to import its proxy server's router
  stubbed out. Without ``litellm[proxy]`` that import fails (no ``websockets``) and, failed imports
  not being cached, is tried again on every call: ~4 ms with bytecode cached, ~220 ms without.

Figures: non-streaming total; streaming time to the first event and total. "First event" is the
first content event, the moment a client can show text (proxy: the first ``content_block_delta``
received; direct: the first chunk with text; interface: the first ``content_block_delta`` yielded):
the proxy holds ``message_start`` until Gemini's first content (so that early errors are real HTTP
statuses) while LiteLLM's interface yields ``message_start`` as soon as the upstream answers; the
time to the first byte/event of any kind is kept in the JSON as ``stream_first_byte``. Concurrency 1, 16,
64 as closed loops (c tasks, each sending its requests back to back). CPU per request of each
process (client, proxy, fake) comes from /proc over the c=16 and c=64 segments.

LiteLLM's proxy server (``litellm --config``, ``/v1/messages``) and claude-code-router are measured
by the peers suite (bench/peers.py), from their own installs under ``.cache/peers/``.

Issue 14's target is read here too: the proxy's CPU per request ÷ ``direct``'s, over the c=16 and
c=64 segments (non-streaming ≤ 0.65, streaming ≤ 0.35). The client process freezes its start-up
objects out of the garbage collector before measuring, as the proxy does, so that ``direct`` is not
charged LiteLLM's full collections either.
"""
from __future__ import annotations

import asyncio
import json
import time
from typing import Any, Awaitable, Callable

from service import memory

from . import common

VARIANTS = ("proxy", "direct", "interface", "interface_np", "hop")
VARIANT_NOTES = {
    "proxy": "aiohttp client → proxy (Hypercorn, 1 worker) → LiteLLM → fake",
    "direct": "litellm.acompletion with the translator's kwargs, in the client process",
    "interface": "litellm.anthropic_interface.messages.acreate, in the client process",
    "interface_np": "the same, with its per-call `from litellm.proxy.proxy_server import llm_router` attempt "
                    "stubbed out (it fails without litellm[proxy] and is retried on every call)",
    "hop": "aiohttp client → a Quart app answering a constant (bench/baseline_app.py, served like the proxy): "
           "the cost of any HTTP hop, no LiteLLM",
}
SMALL_BODY = {"model": "claude-haiku-4-5", "max_tokens": 256,
              "messages": [{"role": "user", "content": "Say hello in one short sentence."}]}
HEADERS = {"content-type": "application/json", "anthropic-version": "2023-06-01", "x-api-key": "bench"}


class Clients:
    """The three ways of asking, each returning seconds (total) or (first event, total)."""

    def __init__(self, proxy_url: str, fake_url: str, session, body: dict[str, Any] = SMALL_BODY,
                 baseline_url: str | None = None):
        import litellm
        import translator

        self.litellm = litellm
        self.session = session
        self.url = proxy_url + "/v1/messages"
        # bench/baseline_app.py, for bench/profile_proxy.py's decomposition
        self.urls = {"proxy": self.url}
        if baseline_url:
            self.urls.update(hop=baseline_url + "/hop/v1/messages", bare=baseline_url + "/bare/v1/messages")
        spec = translator.load_spec()
        self.body_ns = json.dumps({**body, "stream": False}).encode()
        self.body_s = json.dumps({**body, "stream": True}).encode()
        call_ns = translator.translate_request({**body, "stream": False}, spec)
        call_s = translator.translate_request({**body, "stream": True}, spec)
        creds = {"api_base": fake_url, "api_key": common.API_KEY}
        # The translator's kwargs + credentials: what the proxy builds its Gemini request from (service/engines/litellm_adapter/)
        # (+ the request timeout on non-streaming calls), for `direct`.
        self.kw_ns = {**call_ns.kwargs, **creds, "timeout": 600.0}
        self.kw_s = {**call_s.kwargs, **creds}
        self.iface = {"model": call_ns.route.target, "max_tokens": body["max_tokens"], "messages": body["messages"],
                      **{k: body[k] for k in ("system", "tools", "thinking", "metadata") if k in body}, **creds}

    # ---- non-streaming
    async def proxy_ns(self, url: str | None = None) -> float:
        t0 = time.perf_counter()
        async with self.session.post(url or self.url, data=self.body_ns, headers=HEADERS) as resp:
            data = await resp.read()
        t1 = time.perf_counter()
        if resp.status != 200 or not json.loads(data)["content"]:
            raise RuntimeError(f"proxy answered {resp.status}: {data[:300]!r}")
        return t1 - t0

    async def direct_ns(self) -> float:
        t0 = time.perf_counter()
        response = await self.litellm.acompletion(**self.kw_ns)
        t1 = time.perf_counter()
        if not response.choices[0].message.content:
            raise RuntimeError("direct: empty answer")
        return t1 - t0

    async def interface_ns(self) -> float:
        t0 = time.perf_counter()
        response = await self.litellm.anthropic_interface.messages.acreate(**self.iface)
        t1 = time.perf_counter()
        if not response["content"]:
            raise RuntimeError("interface: empty answer")
        return t1 - t0

    # ---- streaming
    async def proxy_s(self, url: str | None = None) -> tuple[float, float]:
        t0 = time.perf_counter()
        first = first_byte = None
        buf = bytearray()
        async with self.session.post(url or self.url, data=self.body_s, headers=HEADERS) as resp:
            async for data in resp.content.iter_any():
                if first_byte is None:
                    first_byte = time.perf_counter()
                buf += data
                if first is None and b"event: content_block_delta" in buf:
                    first = time.perf_counter()
        t1 = time.perf_counter()
        if resp.status != 200 or b"event: message_stop" not in buf or first is None:
            raise RuntimeError(f"proxy stream {resp.status}: {bytes(buf[-300:])!r}")
        return first - t0, t1 - t0, first_byte - t0

    async def direct_s(self) -> tuple[float, float]:
        t0 = time.perf_counter()
        first = first_byte = None
        n = 0
        stream = await self.litellm.acompletion(**self.kw_s)
        async for chunk in stream:
            if first_byte is None:
                first_byte = time.perf_counter()
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter()
            n += 1
        t1 = time.perf_counter()
        if n < 2 or first is None:
            raise RuntimeError("direct: short stream")
        return first - t0, t1 - t0, first_byte - t0

    async def interface_s(self) -> tuple[float, float]:
        t0 = time.perf_counter()
        first = first_byte = None
        last = b""
        stream = await self.litellm.anthropic_interface.messages.acreate(**self.iface, stream=True)
        async for event in stream:
            if first_byte is None:
                first_byte = time.perf_counter()
            if first is None and b"content_block_delta" in (event if isinstance(event, bytes) else str(event).encode()):
                first = time.perf_counter()
            last = event
        t1 = time.perf_counter()
        if b"message_stop" not in (last if isinstance(last, bytes) else str(last).encode()) or first is None:
            raise RuntimeError(f"interface stream ended with {last!r:.200}")
        return first - t0, t1 - t0, first_byte - t0

    def fn(self, variant: str, mode: str) -> Callable[[], Awaitable[Any]]:
        """The call for a variant; also switches the interface's proxy-router lookup (segments of different
        variants never overlap)."""
        from litellm.llms.anthropic.pass_through.adapters import handler

        if not hasattr(handler, "_bench_original_fallback"):
            handler._bench_original_fallback = handler._proxy_router_fallback
        handler._proxy_router_fallback = (lambda: None) if variant == "interface_np" else \
            handler._bench_original_fallback
        suffix = "s" if mode == "stream" else "ns"
        if variant in ("hop", "bare"):
            method, url = getattr(self, f"proxy_{suffix}"), self.urls[variant]
            return lambda: method(url)
        base = "interface" if variant == "interface_np" else variant
        return getattr(self, f"{base}_{suffix}")


class Recorder:
    def __init__(self) -> None:
        self.samples: dict[tuple, list] = {}
        self.errors: dict[tuple, list[str]] = {}
        self.cpu: dict[tuple, dict[str, float]] = {}
        self.wall: dict[tuple, float] = {}

    def key(self, variant: str, mode: str, c: int) -> tuple:
        return variant, mode, c


async def _segment(fn, c: int, per_worker: int, out: list, errors: list) -> None:
    async def worker() -> None:
        for _ in range(per_worker):
            try:
                out.append(await fn())
            except Exception as exc:  # noqa: BLE001 - counted and reported
                errors.append(f"{type(exc).__name__}: {exc}"[:300])

    await asyncio.gather(*(worker() for _ in range(c)))


def _plan(quick: bool) -> dict[int, tuple[int, int]]:
    """concurrency → (rounds, requests per task per round)."""
    if quick:
        return {1: (30, 1), 16: (1, 3), 64: (1, 2)}
    return {1: (200, 1), 16: (4, 4), 64: (2, 3)}


async def measure(clients: Clients, procs: dict[str, list[int]], quick: bool, modes=("nonstream", "stream"),
                  plan: dict[int, tuple[int, int]] | None = None, variants=VARIANTS,
                  budget_s: float = 240) -> Recorder:
    rec = Recorder()
    plan = plan or _plan(quick)
    deadline = time.perf_counter() + budget_s
    for mode in modes:
        for variant in variants:  # warm-up: 10 sequential calls each
            await _segment(clients.fn(variant, mode), 1, 10, [], [])
        for c, (rounds, per_worker) in plan.items():
            for variant in variants:  # warm-up at this concurrency (opens the connection pools)
                await _segment(clients.fn(variant, mode), c, 1, [], [])
            for r in range(rounds):
                order = variants[r % len(variants):] + variants[:r % len(variants)]
                for variant in order:
                    key = rec.key(variant, mode, c)
                    before = {name: sum(common.cpu_seconds(p) for p in pids) for name, pids in procs.items()}
                    before["client"] = time.process_time()
                    t0 = time.perf_counter()
                    await _segment(clients.fn(variant, mode), c, per_worker, rec.samples.setdefault(key, []),
                                   rec.errors.setdefault(key, []))
                    rec.wall[key] = rec.wall.get(key, 0.0) + time.perf_counter() - t0
                    after = {name: sum(common.cpu_seconds(p) for p in pids) for name, pids in procs.items()}
                    after["client"] = time.process_time()
                    cpu = rec.cpu.setdefault(key, {})
                    for name in after:
                        cpu[name] = cpu.get(name, 0.0) + after[name] - before[name]
                if time.perf_counter() > deadline:
                    print(f"(time budget reached at {mode} c={c} round {r + 1}/{rounds})")
                    break
    return rec


def _figures(rec: Recorder) -> dict[str, Any]:
    """{figure: {variant: {c: summary}}} with figure in nonstream_total, stream_first_event, stream_total."""
    out: dict[str, Any] = {}
    for (variant, mode, c), samples in rec.samples.items():
        if mode == "nonstream":
            series = {"nonstream_total": samples}
        else:
            series = {"stream_first_event": [s[0] for s in samples], "stream_total": [s[1] for s in samples],
                      "stream_first_byte": [s[2] for s in samples]}
        for figure, values in series.items():
            s = common.summary(values)
            n = len(rec.samples[(variant, mode, c)])
            s["errors"] = len(rec.errors.get((variant, mode, c), []))
            s["throughput_rps"] = n / rec.wall[(variant, mode, c)] if rec.wall.get((variant, mode, c)) else 0.0
            cpu = rec.cpu.get((variant, mode, c), {})
            s["cpu_ms_per_request"] = {k: v * 1000 / n for k, v in cpu.items()} if n else {}
            out.setdefault(figure, {}).setdefault(variant, {})[c] = s
    return out


FIGURE_TITLES = {"nonstream_total": "non-streaming, total", "stream_first_event": "streaming, first event",
                 "stream_total": "streaming, total"}


def print_tables(figures: dict[str, Any], title: str) -> None:
    rows = []
    for figure, by_variant in figures.items():
        if figure not in FIGURE_TITLES:
            continue
        for c in sorted(next(iter(by_variant.values()))):
            direct = by_variant.get("direct", {}).get(c)
            for variant in [v for v in (*VARIANTS, "bare") if v in by_variant]:
                s = by_variant.get(variant, {}).get(c)
                if s is None:
                    continue
                added = (s["median"] - direct["median"], s["p99"] - direct["p99"]) if direct and variant != "direct" \
                    else (float("nan"), float("nan"))
                rows.append((FIGURE_TITLES[figure], c, variant, s["n"], s["errors"], s["median"], s["p90"], s["p99"],
                             added[0], added[1], s["throughput_rps"]))
    print(common.table(["figure", "c", "variant", "n", "err", "median ms", "p90 ms", "p99 ms", "+p50 vs direct",
                        "+p99 vs direct", "req/s"], rows, title=title))


# The serving process of each variant: where its CPU per request is read (another variant, such as
# bench/peers.py's servers, is its own process's name).
SERVER = {"direct": "client", "interface": "client", "interface_np": "client"}


def cpu_per_request(figures: dict[str, Any], figure: str, variant: str, cs: tuple[int, ...] = (16, 64)) -> float:
    """CPU ms per request of the variant's serving process over the segments at ``cs``, weighted by requests."""
    by_c = figures.get(figure, {}).get(variant, {})
    server = SERVER.get(variant, variant)
    pairs = [(by_c[c]["cpu_ms_per_request"].get(server, float("nan")), by_c[c]["n"]) for c in cs if c in by_c]
    n = sum(count for _, count in pairs)
    return sum(ms * count for ms, count in pairs) / n if n else float("nan")


def cpu_ratio(figures: dict[str, Any], figure: str, variant: str = "proxy", cs: tuple[int, ...] = (16, 64)) -> float:
    """The issue's measure: CPU per request of ``variant`` ÷ in-process ``litellm.acompletion``'s."""
    return cpu_per_request(figures, figure, variant, cs) / cpu_per_request(figures, figure, "direct", cs)


def print_cpu(figures: dict[str, Any]) -> None:
    rows = []
    for figure in ("nonstream_total", "stream_total"):
        for variant, by_c in figures.get(figure, {}).items():
            for c in (16, 64):
                if c in by_c:
                    cpu = by_c[c]["cpu_ms_per_request"]
                    ratio = cpu_ratio(figures, figure, variant, (c,))
                    rows.append((FIGURE_TITLES[figure].split(",")[0], c, variant, cpu.get("client", float("nan")),
                                 cpu.get("proxy", float("nan")), cpu.get("hop", float("nan")),
                                 cpu.get("fake", float("nan")), ratio))
    if rows:
        print(common.table(["mode", "c", "variant", "client CPU ms/req", "proxy CPU ms/req", "hop app CPU ms/req",
                            "fake CPU ms/req", "serving CPU ÷ direct's"],
                           rows, title="\nCPU time per request by process (from /proc, c=16 and c=64 segments)"))


def targets(figures: dict[str, Any]) -> list[common.Target]:
    out: list[common.Target] = []

    def added(figure: str, c: int, stat: str) -> float:
        by = figures.get(figure, {})
        try:
            return by["proxy"][c][stat] - by["direct"][c][stat]
        except KeyError:
            return float("nan")

    out.append(common.Target("proxy over direct LiteLLM, p50 added, non-streaming (c=1)",
                             added("nonstream_total", 1, "median"), 1.0))
    out.append(common.Target("proxy over direct LiteLLM, p50 added to the first event (c=1)",
                             added("stream_first_event", 1, "median"), 2.0))
    # The same two, over direct LiteLLM plus the bare HTTP hop: what the proxy adds beyond the hop that
    # any HTTP proxy costs its client (a constant Quart app through the same Hypercorn and client).
    for figure, title, budget in (("nonstream_total", "p50 added, non-streaming", 1.0),
                                  ("stream_first_event", "p50 added to the first event", 2.0)):
        hop = figures.get(figure, {}).get("hop", {}).get(1, {}).get("median", float("nan"))
        out.append(common.Target(f"proxy over direct LiteLLM + the HTTP hop, {title} (c=1)",
                                 added(figure, 1, "median") - hop, budget))
    for figure in ("nonstream_total", "stream_first_event", "stream_total"):
        out.append(common.Target(f"proxy over direct LiteLLM, p99 added at c=64, {FIGURE_TITLES[figure]}",
                                 added(figure, 64, "p99"), 10.0))
    # Issue 14: the proxy's CPU per request against in-process litellm.acompletion's (c=16 and 64 pooled).
    for figure, limit in (("nonstream_total", 0.65), ("stream_total", 0.35)):
        out.append(common.Target(f"proxy CPU per request ÷ in-process litellm.acompletion's, "
                                 f"{FIGURE_TITLES[figure].split(',')[0]} (c=16 and 64)",
                                 cpu_ratio(figures, figure), limit, unit=""))
    for other in ("interface", "interface_np"):
        for figure in ("nonstream_total", "stream_first_event", "stream_total"):
            for c in sorted(figures.get(figure, {}).get("proxy", {})):
                p, i = figures[figure]["proxy"][c], figures[figure].get(other, {}).get(c)
                if i is None:
                    continue
                worst = max(p[s] - i[s] for s in ("median", "p90", "p99"))
                t = common.Target(f"proxy ahead of {other}, {FIGURE_TITLES[figure]}, c={c} "
                                  f"(worst of p50/p90/p99, proxy − {other})", worst, 0.0, info=other != "interface")
                t.passed = worst < 0
                out.append(t)
    return out


def plot(figures: dict[str, Any], path_name: str = "e2e_latency.png") -> str | None:
    plt = common.pyplot()
    if plt is None:
        return None
    names = list(FIGURE_TITLES)
    fig, axes = plt.subplots(1, len(names), figsize=(16, 4.8))
    colors = {"proxy": "tab:blue", "direct": "tab:green", "interface": "tab:red", "interface_np": "tab:purple",
              "hop": "tab:gray"}
    for ax, figure in zip(axes, names):
        for variant, by_c in figures.get(figure, {}).items():
            cs = sorted(by_c)
            ax.plot(cs, [by_c[c]["median"] for c in cs], "o-", color=colors[variant], label=f"{variant} p50")
            ax.plot(cs, [by_c[c]["p99"] for c in cs], "x--", color=colors[variant], alpha=0.7,
                    label=f"{variant} p99")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks([1, 16, 64])
        ax.set_xticklabels(["1", "16", "64"])
        ax.set_xlabel("concurrency")
        ax.set_ylabel("latency, ms")
        ax.set_title(FIGURE_TITLES[figure])
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Small request, 7-chunk answer, fake Gemini: proxy (Hypercorn, 1 worker) vs direct LiteLLM vs "
                 "LiteLLM Anthropic interface")
    fig.tight_layout()
    path = common.RESULTS / path_name
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


async def _run(quick: bool, fake: common.FakeProcess, proxy: common.ProxyProcess,
               baseline: common.ProxyProcess) -> dict[str, Any]:
    import aiohttp
    import litellm

    litellm.suppress_debug_info = True
    litellm.num_retries = 0  # as the proxy (service/engines/litellm_adapter/)
    procs = {"proxy": proxy.worker_pids(), "fake": [fake.pid], "hop": baseline.worker_pids()}
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        clients = Clients(proxy.url, fake.base_url, session, baseline_url=baseline.url)
        # As the proxy does once it serves (service/memory.py): LiteLLM's start-up objects out of the
        # collector's reach, so that `direct` is not charged ~220 ms per full collection either, and the
        # youngest objects collected as seldom.
        memory.settle()
        rec = await measure(clients, procs, quick, budget_s=120 if quick else 260)
        figures = _figures(rec)
        errors = {f"{v}/{m}/c{c}": e[:3] for (v, m, c), e in rec.errors.items() if e}

        # Info: the Claude-Code-sized request (24 tools), non-streaming, c=1.
        from .claude_code_request import claude_code_request

        big_body = {k: v for k, v in claude_code_request().items() if k != "stream"}
        big = Clients(proxy.url, fake.base_url, session, body=big_body)
        big_rec = await measure(big, procs, quick, modes=("nonstream",), plan={1: (5 if quick else 40, 1)},
                                variants=("proxy", "direct", "interface", "interface_np"), budget_s=60)
        big_figures = _figures(big_rec)
        big_errors = {f"{v}/{m}/c{c}": e[:2] for (v, m, c), e in big_rec.errors.items() if e}
    return {"figures": figures, "errors": errors, "big_request": {"figures": big_figures, "errors": big_errors},
            "raw_ms": {f"{v}/{m}/c{c}": [[round(x * 1000, 4) for x in (s if isinstance(s, tuple) else (s,))]
                                         for s in samples] for (v, m, c), samples in rec.samples.items()}}


def run(quick: bool = False) -> dict[str, Any]:
    fake = common.FakeProcess(common.SMALL_ANSWER)
    proxy = baseline = None
    try:
        proxy = common.ProxyProcess(fake.base_url, workers=1, name="proxy-e2e")
        baseline = common.ProxyProcess(fake.base_url, workers=1, name="baseline-e2e", app="bench.baseline_app:app")
        if common.first_ok(proxy.port) is None:
            raise RuntimeError(f"proxy did not start; see {proxy.log_path}")
        if common.first_ok(baseline.port) is None:
            raise RuntimeError(f"baseline app did not start; see {baseline.log_path}")
        results = asyncio.run(_run(quick, fake, proxy, baseline))
        results["proxy_memory"] = proxy.memory()
    finally:
        for server in (proxy, baseline):
            if server:
                server.stop()
        fake.stop()
    figures = results["figures"]
    print_tables(figures, "\n== 2+3. Added latency: proxy vs direct LiteLLM vs LiteLLM's Anthropic interface "
                          "(small request; ms)")
    print("\n".join(f"  {k}: {v}" for k, v in VARIANT_NOTES.items()))
    print_cpu(figures)
    if results["errors"]:
        print("errors:", json.dumps(results["errors"], indent=1)[:2000])
    print_tables(results["big_request"]["figures"],
                 "\n(info) Claude-Code-sized request (84 KB, 24 tools), non-streaming, c=1")
    if results["big_request"]["errors"]:
        print("errors:", json.dumps(results["big_request"]["errors"], indent=1)[:1500])
    results["plot"] = plot(figures)
    return results
