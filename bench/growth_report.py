"""The session-growth suite's table, targets and plot (bench/session_growth.py measures)."""
from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

from . import common
from .session_growth import (
    FLOOR_RATIO_MAX,
    HELLO,
    HELLO_EXTRA_MAX_MS,
    NO_CACHE,
    STALL_MAX_MS,
)

NAMES = {"proxy": "this proxy", "ccr": "claude-code-router", "litellm_proxy": "LiteLLM proxy",
         NO_CACHE: "LiteLLM proxy, no cache_control"}
DOCS_PLOT = common.ROOT / "docs" / "session-growth.svg"
BIG, SMALL = "1.1 MB", "49 KB"


def _cell(figure: dict[str, Any] | None) -> str:
    if figure is None:
        return "-"
    verdict = "valid" if figure["valid"] == figure["n"] else f"{figure['valid']}/{figure['n']} valid"
    return f"{figure['cpu_ms_per_request']:.1f} ({verdict})"


def floor_ratio(results: dict[str, Any], label: str, server: str = "proxy") -> float:
    figure = results["cpu"].get(label, {}).get(server)
    if figure is None:
        return float("nan")
    return figure["cpu_ms_per_request"] / results["bodies"][label]["json_floor_ms"]


def hello_extra_ms(results: dict[str, Any], paired: bool = True) -> float:
    """The 49 KB turn's CPU − "Say hello"'s on this proxy: from the alternating blocks (session_growth.paired)
    when the results have them, else from the two segments."""
    if paired and "paired" in results:
        return results["paired"][SMALL] - results["paired"][HELLO]
    cpu = results["cpu"]
    return cpu[SMALL]["proxy"]["cpu_ms_per_request"] - cpu[HELLO]["proxy"]["cpu_ms_per_request"]


def report(results: dict[str, Any]) -> None:
    servers = results["servers"]
    rows = []
    for label, body in results["bodies"].items():
        by_server = results["cpu"][label]
        rows.append((label, body["bytes"], body["rounds"], body["json_floor_ms"],
                     *(_cell(by_server.get(s)) for s in servers),
                     floor_ratio(results, label) if label != HELLO else float("nan")))
    print(common.table(["body", "bytes", "rounds", "JSON floor ms", *(f"{NAMES[s]} ms" for s in servers),
                        "proxy ÷ floor"], rows,
                       title=f"\n== 7. Session growth: CPU per streamed request of each server's process tree "
                             f"(ms), and its answers; base: {results['source']}, {results['tools']} tools"))
    for label, by_server in results["cpu"].items():
        for server, figure in by_server.items():
            if figure["problem"]:
                print(f"  {label} / {server}: {figure['problem'][:240]}")
    for name, why in results["skipped"].items():
        print(f"  {name}: skipped — {why}")
    print(f"  49 KB turn − \"Say hello\" on this proxy: {hello_extra_ms(results):.2f} ms of CPU in alternating "
          f"blocks ({hello_extra_ms(results, paired=False):.2f} from the segments above)")
    rows = [(phase, s["polls"], s["median_ms"], s["p99_ms"], s["max_ms"], s["turns_served"], s["turns_invalid"])
            for phase, s in results["stall"].items()]
    print(common.table(["two turns of", "polls", "p50 ms", "p99 ms", "max ms", "turns served", "invalid"], rows,
                       title="\nLoop stall: /health waits (polled every ~10 ms on its own connection) while two "
                             "big turns are served concurrently and back to back"))


def targets(results: dict[str, Any]) -> list[common.Target]:
    out = [common.Target("growth: proxy CPU per 1.1 MB Claude Code turn ÷ json.loads+dumps of it (the floor)",
                         floor_ratio(results, BIG), FLOOR_RATIO_MAX, unit="×"),
           common.Target("growth: proxy CPU, 49 KB Claude Code turn − \"Say hello\"", hello_extra_ms(results),
                         HELLO_EXTRA_MAX_MS)]
    for phase, s in results["stall"].items():
        if phase != "idle":
            out.append(common.Target(f"growth: longest /health wait while two {phase} turns are served",
                                     s["max_ms"], STALL_MAX_MS))
            out.append(common.Target(f"growth: p99 /health wait while two {phase} turns are served",
                                     s["p99_ms"], STALL_MAX_MS, info=True))
    invalid = sum(f["proxy"]["n"] - f["proxy"]["valid"] for f in results["cpu"].values())
    out.append(common.Target("growth: proxy answers that were not a valid stream", invalid, 0, unit="answers"))
    for server in results["servers"][1:]:
        out.append(common.Target(f"growth: {server} CPU per 1.1 MB turn ÷ the floor", floor_ratio(results, BIG, server),
                                 FLOOR_RATIO_MAX, unit="×", info=True))
    return out


def plot(results: dict[str, Any], docs: bool) -> str | None:
    """CPU per request against body size, one line per server (hollow where answers were invalid) and the
    JSON floor; into bench/results/, and docs/ too when ``docs`` (a full run)."""
    plt = common.pyplot()
    if plt is None:
        return None
    plt.rcParams["svg.hashsalt"] = "session-growth"  # the same figures draw the same file
    labels = [label for label in results["bodies"] if label != HELLO]
    kb = [results["bodies"][label]["bytes"] / 1000 for label in labels]
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    for server in results["servers"]:
        cpu = [results["cpu"][label][server]["cpu_ms_per_request"] for label in labels]
        line, = ax.plot(kb, cpu, "-", label=NAMES[server])
        for x, y, label in zip(kb, cpu, labels):
            figure = results["cpu"][label][server]
            full = figure["valid"] == figure["n"]
            ax.plot([x], [y], "o", color=line.get_color(), markerfacecolor=line.get_color() if full else "white")
    floor = [results["bodies"][label]["json_floor_ms"] for label in labels]
    ax.plot(kb, floor, "k--", label="JSON floor (json.loads + json.dumps, one process)")
    ax.plot(kb, [FLOOR_RATIO_MAX * f for f in floor], "k:", label=f"{FLOOR_RATIO_MAX:g}× the floor (issue 26's target)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("request body (KB), a Claude Code turn grown by tool rounds")
    ax.set_ylabel("CPU per streamed request (ms)")
    date = datetime.date.today().isoformat()
    ax.set_title(f"Session growth, one fake Gemini, {date} (hollow: answers not valid)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    common.RESULTS.mkdir(parents=True, exist_ok=True)
    path = common.RESULTS / "session-growth.svg"
    paths = [path, DOCS_PLOT] if docs else [path]
    for target in paths:
        fig.savefig(target, metadata={"Date": None})
    plt.close(fig)
    return str(Path(paths[-1]))
