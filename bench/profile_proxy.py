"""Where the proxy's time goes: py-spy samples the Hypercorn worker while this process sends it the
small request of suite 2, one at a time (c=1) or 16 at a time, non-streaming and streaming.

``uv run python -m bench.profile_proxy [--quick] [--concurrency 1] [--seconds 12] [--body-kb 1100]``

``--body-kb N`` profiles a Claude Code turn grown to about N KB (bench/growth_body.py, as the session-growth
suite sends it) instead of the small request, and skips the decomposition (its in-process LiteLLM call
would turn the turn's ``cache_control`` into a context-cache call the fake does not serve).

py-spy (a dev dependency) attaches to the worker by pid (root, or ptrace permission, is needed)
and samples only while it runs Python (idle time waiting for sockets is left out), with
``--nonblocking`` so the worker is not paused. The raw stacks (bench/results/profile-*.txt, usable
with flamegraph tools) are summed up here by where the sampled frame's code lives (``--gil``: only samples of a thread holding the GIL, i.e. running Python): our code
(service/, translator/), LiteLLM, Hypercorn/h11, Quart/Werkzeug, aiohttp, httpx, pydantic, asyncio,
other stdlib; "self" = samples whose innermost frame is there, "incl" = samples with such a frame
anywhere on the stack.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from . import common
from .e2e import SMALL_BODY, Clients

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
CATEGORIES = (
    ("ours: service", ("/work/main/service/", "service/")),
    ("ours: translator", ("/work/main/translator/", "translator/")),
    ("litellm", ("litellm/",)),
    ("hypercorn+h11+h2", ("hypercorn/", "h11/", "h2/", "hpack/")),
    ("quart+werkzeug", ("quart/", "werkzeug/", "flask/")),
    ("aiohttp", ("aiohttp/", "multidict/", "yarl/")),
    ("httpx+httpcore", ("httpx/", "httpcore/")),
    ("pydantic", ("pydantic/", "pydantic_core/")),
    ("asyncio", ("asyncio/",)),
    ("json", ("json/",)),
    ("logging", ("logging/",)),
)


# Stages of a request, for issue 26's before/after split: the first rule whose function (or package) is on a
# sampled stack names its stage. Keyed by function names: a renamed function falls into the next rule.
STAGES = (
    ("decode the body", ("decode_json",)),
    ("plan context edits", ("plan_edits",)),
    ("LiteLLM's Gemini transform", ("litellm", "gemini_body")),   # worker threads' stacks name files, not paths
    ("context-cache key", ("_canonical", "prefixes")),
    ("translate + validate (rest)", ("translate_call", "translate_request")),
    ("build the Gemini request (rest)", ("gemini_request",)),
    ("stream the answer", ("_pump", "_chunks")),
    ("send to Gemini (aiohttp)", ("aiohttp",)),
)


def stage(frames: list[tuple[str, str]]) -> str:
    names = {f[0] for f in frames}
    packages = {category(f[1]) for f in frames}
    for name, needles in STAGES:
        if any(n in names or n in packages for n in needles):
            return name
    return "rest (Hypercorn, Quart, ledger, ...)"


def category(path: str) -> str:
    if path.startswith(str(common.ROOT) + "/service/") or path.startswith("service/"):
        return "ours: service"
    if path.startswith(str(common.ROOT) + "/translator/") or path.startswith("translator/"):
        return "ours: translator"
    for name, needles in CATEGORIES[2:]:
        if any(n in path for n in needles):
            return name
    if "/lib/python3" in path and "site-packages" not in path or path.startswith("<frozen"):
        return "stdlib (other)"
    return "other: " + (path.split("site-packages/", 1)[-1].split("/", 1)[0] if "site-packages" in path else path)


def parse(path: Path) -> list[tuple[list[tuple[str, str]], int]]:
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        frames_text, _, count = line.rpartition(" ")
        if not frames_text or not count.isdigit():
            continue  # --nonblocking can read a torn stack now and then
        frames = []
        for frame in frames_text.split(";"):
            m = _FRAME.match(frame)
            frames.append((m.group("func"), m.group("file")) if m else (frame, "?"))
        stacks.append((frames, int(count)))
    return stacks


def summarize(stacks: list[tuple[list[tuple[str, str]], int]], requests: int, rate: int) -> dict[str, Any]:
    total = sum(c for _, c in stacks) or 1
    self_cat: collections.Counter = collections.Counter()
    incl_cat: collections.Counter = collections.Counter()
    self_fn: collections.Counter = collections.Counter()
    incl_fn: collections.Counter = collections.Counter()
    threads: collections.Counter = collections.Counter()
    stages: collections.Counter = collections.Counter()
    for frames, count in stacks:
        stages[stage(frames)] += count
        if any("hypercorn/asyncio/run.py" in f[1] for f in frames):
            threads["event loop thread"] += count
        elif frames[0][0] == "Thread._bootstrap" and len(frames) > 2:
            threads[f"thread {frames[2][0]}" + (f" > {frames[3][0]}" if len(frames) > 3 else "")] += count
        else:
            threads["torn stack"] += count
        leaf = frames[-1]
        self_cat[category(leaf[1])] += count
        self_fn[f"{leaf[0]} ({leaf[1]})"] += count
        for cat in {category(f[1]) for f in frames}:
            incl_cat[cat] += count
        for fn in {f"{f[0]} ({f[1]})" for f in frames}:
            incl_fn[fn] += count
    ours = [(fn, n) for fn, n in incl_fn.most_common() if category(fn.rsplit("(", 1)[1].rstrip(")")).startswith("ours")]
    ms_per_sample = 1000 / rate
    return {
        "samples": total, "requests": requests,
        "cpu_ms_per_request": total * ms_per_sample / requests if requests else float("nan"),
        "by_thread": {k: v / total for k, v in threads.most_common()},
        "by_stage": {k: v / total for k, v in stages.most_common()},
        "self_by_category": {k: v / total for k, v in self_cat.most_common()},
        "incl_by_category": {k: v / total for k, v in incl_cat.most_common()},
        "top_self": [(fn, n / total) for fn, n in self_fn.most_common(15)],
        "top_ours_incl": [(fn, n / total) for fn, n in ours[:15]],
        "top_incl": [(fn, n / total) for fn, n in incl_fn.most_common(40)],
    }


def print_summary(title: str, s: dict[str, Any]) -> None:
    print(f"\n== profile: {title}: {s['samples']} samples over {s['requests']} requests "
          f"≈ {s['cpu_ms_per_request']:.2f} ms of proxy CPU per request")
    print(common.table(["thread", "%"], [(k, 100 * v) for k, v in s["by_thread"].items()]))
    print(common.table(["stage", "%"], [(k, 100 * v) for k, v in s["by_stage"].items()]))
    cats = sorted(set(s["self_by_category"]) | set(s["incl_by_category"]),
                  key=lambda k: -s["self_by_category"].get(k, 0))
    print(common.table(["where", "self %", "incl %"],
                       [(k, 100 * s["self_by_category"].get(k, 0), 100 * s["incl_by_category"].get(k, 0))
                        for k in cats]))
    print(common.table(["top functions (self)", "%"], [(_short(fn), 100 * p) for fn, p in s["top_self"][:12]]))
    print(common.table(["our functions (incl)", "%"], [(_short(fn), 100 * p) for fn, p in s["top_ours_incl"][:12]]))


def _short(fn: str) -> str:
    fn = re.sub(r"/[^ (]*/site-packages/", "", fn)
    fn = re.sub(r"/[^ (]*/lib/python3\.\d+/", "", fn)
    fn = fn.replace(str(common.ROOT) + "/", "")
    return fn[:110]


async def _drive(clients: Clients, mode: str, seconds: float, concurrency: int) -> int:
    fn = clients.fn("proxy", mode)
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await fn()
            done += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done


async def _profile(proxy: common.ProxyProcess, fake: common.FakeProcess, seconds: float, concurrency: int,
                   rate: int, body: dict[str, Any]) -> dict[str, Any]:
    import aiohttp

    out: dict[str, Any] = {}
    worker = proxy.worker_pids()[0]
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        clients = Clients(proxy.url, fake.base_url, session, body=body)
        for mode in ("nonstream", "stream"):
            await _drive(clients, mode, 1.0, concurrency)  # warm-up
            raw = common.RESULTS / f"profile-{mode}-c{concurrency}{_suffix(body)}.txt"
            spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(worker),
                                    "--rate", str(rate), "--format", "raw", "--full-filenames", "--nonblocking", "--gil",
                                    "--output", str(raw), "--duration", str(int(seconds))],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            await asyncio.sleep(0.5)  # py-spy attaches
            requests = await _drive(clients, mode, seconds - 1.0, concurrency)
            _, err = await asyncio.to_thread(spy.communicate, None, seconds + 30)
            if spy.returncode != 0 or not raw.exists():
                print(f"py-spy failed ({spy.returncode}): {err.strip()[-500:]}")
                continue
            s = summarize(parse(raw), requests, rate)
            s["raw"] = str(raw)
            out[mode] = s
            print_summary(f"{mode}, c={concurrency}", s)
    return out


async def _decompose(proxy: common.ProxyProcess, baseline: common.ProxyProcess, fake: common.FakeProcess,
                     samples: int) -> dict[str, Any]:
    """c=1, interleaved: direct LiteLLM, the proxy, and the two baselines of bench/baseline_app.py."""
    import aiohttp

    from . import e2e

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        clients = Clients(proxy.url, fake.base_url, session, baseline_url=baseline.url)
        rec = await e2e.measure(clients, {"proxy": proxy.worker_pids(), "fake": [fake.pid]}, False,
                                plan={1: (samples, 1)}, variants=("proxy", "bare", "hop", "direct"), budget_s=120)
    figures = e2e._figures(rec)
    e2e.print_tables(figures, "\n== Decomposition at c=1 (ms): hop = client+Hypercorn+Quart answering a constant; "
                              "bare = Quart + litellm.acompletion, minimal answer (bench/baseline_app.py)")
    rows = []
    for figure, by in figures.items():
        if figure not in e2e.FIGURE_TITLES:
            continue
        m = {v: by[v][1]["median"] for v in by}
        rows.append((e2e.FIGURE_TITLES[figure], m["proxy"] - m["direct"], m["hop"], m["bare"] - m["direct"],
                     m["proxy"] - m["bare"]))
    print(common.table(["figure (medians)", "proxy − direct", "hop alone", "bare − direct", "proxy − bare"], rows,
                       title="\nWhere the added latency goes: (bare − direct) = serving LiteLLM behind "
                             "Hypercorn+Quart over HTTP; (proxy − bare) = our service + translator"))
    return {"figures": figures, "split": [dict(zip(("figure", "proxy_minus_direct", "hop", "bare_minus_direct",
                                                     "proxy_minus_bare"), r)) for r in rows]}


def _suffix(body: dict[str, Any]) -> str:
    """File-name suffix of a profile: none for the small request, ``-<KB>kb`` for a grown turn."""
    return "" if body is SMALL_BODY else f"-{len(json.dumps(body)) // 1000}kb"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(prog="python -m bench.profile_proxy", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--rate", type=int, default=1000)
    ap.add_argument("--no-spy", action="store_true", help="only the decomposition, no py-spy sampling")
    ap.add_argument("--no-decompose", action="store_true", help="only py-spy sampling")
    ap.add_argument("--body-kb", type=int, default=None,
                    help="profile a Claude Code turn grown to about this many KB (implies --no-decompose)")
    args = ap.parse_args(argv)
    body = SMALL_BODY
    if args.body_kb:
        from .growth_body import encode, grown_request

        body, args.no_decompose = grown_request(args.body_kb * 1000), True
        print(f"(profiling a Claude Code turn of {len(encode(body))} bytes; no decomposition)")
    seconds = args.seconds or (5.0 if args.quick else 12.0)
    fake = common.FakeProcess(common.SMALL_ANSWER)
    proxy = baseline = None
    try:
        proxy = common.ProxyProcess(fake.base_url, workers=1, name="proxy-profile")
        import translator
        kwargs = translator.translate_request({**SMALL_BODY, "stream": False}, translator.load_spec()).kwargs
        baseline = common.ProxyProcess(fake.base_url, workers=1, name="baseline", app="bench.baseline_app:app",
                                       extra_env={"BENCH_LITELLM_KWARGS": json.dumps(
                                           {**kwargs, "api_base": fake.base_url, "api_key": common.API_KEY})})
        for server in (proxy, baseline):
            if common.first_ok(server.port) is None:
                raise RuntimeError(f"server did not start; see {server.log_path}")
        result = {} if args.no_decompose else {
            "decomposition": asyncio.run(_decompose(proxy, baseline, fake, 60 if args.quick else 200))}
        baseline.stop()
        baseline = None
        if not args.no_spy:
            result.update(asyncio.run(_profile(proxy, fake, seconds, args.concurrency, args.rate, body)))
    finally:
        for server in (baseline, proxy):
            if server:
                server.stop()
        fake.stop()
    common.write_json(f"profile-c{args.concurrency}{_suffix(body)}.json", result)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
