"""``uv run python -m bench [--quick] [--only translator,e2e,scale,teams,peers,growth] [--no-peers] [--profile]``

Runs the suites (bench/README.md), prints their tables and the PASS/MISS of each target, and
writes bench/results/bench-<date>.json (+ latest.json) and the PNG plots.
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

from . import common

SUITES = ("translator", "e2e", "scale", "teams", "peers", "growth")


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _run_suite(name: str, args: argparse.Namespace, results: dict) -> list[common.Target]:
    """Run one suite into ``results[name]``; its targets."""
    if name == "translator":
        from . import translator_bench

        r = results[name] = translator_bench.run(args.quick)
        return [common.Target("translator: Claude-Code-sized request → LiteLLM arguments, median (warm cache)",
                              r["request"]["warm"]["median"], 0.5)]
    if name == "e2e":
        from . import e2e

        results[name] = e2e.run(args.quick)
        return e2e.targets(results[name]["figures"])
    if name == "scale":
        from . import scale

        results[name] = scale.run(args.quick, results.get("e2e", {}).get("figures"))
        return []
    if name == "teams":
        from . import teams_bench

        results[name] = teams_bench.run(args.quick)
        return teams_bench.targets(results[name])
    if name == "peers":
        from . import peers

        results[name] = peers.run(args.quick)
        return peers.targets(results[name])
    from . import growth_report, session_growth

    results[name] = session_growth.run(args.quick, with_peers=not args.no_peers)
    return growth_report.targets(results[name])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench", description="Benchmarks and the performance budget.")
    ap.add_argument("--quick", action="store_true", help="a ~1.5 minute smoke run (fewer samples, 200-stream burst)")
    ap.add_argument("--only", default=",".join(SUITES), help=f"comma-separated subset of {','.join(SUITES)}")
    ap.add_argument("--no-peers", action="store_true",
                    help="the growth suite measures this proxy only (no claude-code-router, LiteLLM proxy)")
    ap.add_argument("--profile", action="store_true",
                    help="afterwards, sample the proxy worker with py-spy under load (bench/profile_proxy.py)")
    args = ap.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SUITES)
    if unknown:
        ap.error(f"unknown suite(s): {', '.join(sorted(unknown))}")

    started = time.perf_counter()
    now = datetime.datetime.now().astimezone()
    info = common.machine()
    print(f"bench {'(quick) ' if args.quick else ''}{now:%Y-%m-%d %H:%M:%S %z} — {info['nproc']} CPUs, "
          f"{info['cpu_model']}, Python {info['python']}, LiteLLM {info['packages'].get('litellm', '?')}; "
          f"load average before: {_load()}")
    results: dict = {"date": now.isoformat(), "quick": args.quick, "machine": info, "load_before": _load()}
    targets: list[common.Target] = []

    contention: dict[str, dict] = {}
    results["contention"] = contention

    def done(name: str, c: common.Contention) -> None:
        contention[name] = c.result()
        print(c.line(name))

    for name in SUITES:
        if name in only:
            c = common.Contention()
            targets += _run_suite(name, args, results)
            done(name, c)

    results["load_after"] = _load()
    results["targets"] = [{"name": t.name, "value": t.value, "limit": t.limit, "unit": t.unit, "passed": t.passed,
                           "info": t.info}
                          for t in targets]
    results["elapsed_s"] = time.perf_counter() - started
    print("\n== Targets")
    for t in targets:
        print(t.line())
    name = f"bench-{now:%Y%m%d-%H%M%S}{'-quick' if args.quick else ''}.json"
    path = common.write_json(name, results)
    common.write_json("latest.json", results)
    plots = [p for p in (results.get(k, {}).get("plot") for k in SUITES) if p]
    print(f"\nraw figures: {path.relative_to(common.ROOT)}; plots: "
          f"{', '.join(str(Path(p).relative_to(common.ROOT)) for p in plots) or 'none'}")
    print(f"load average after: {results['load_after']}; elapsed {results['elapsed_s']:.0f} s")

    if args.profile:
        from . import profile_proxy

        profile_proxy.main(["--quick"] if args.quick else [])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # LiteLLM's logging thread sometimes prints noise at interpreter exit


if __name__ == "__main__":
    sys.exit(main())
