"""The CPU of one long Claude Code turn (issue 26), and how long it holds the event loop.

``uv run python -m bench.big_turn [--sizes 0,110,470] [--requests 20] [--stall] [--spy ROUNDS]``

A real Claude Code request (fixture 04: thinking, two parallel tool calls; two of its largest tool
schemas left out, so that it is ~50 KB) grown by N tool rounds of ~2.3 KB (an assistant turn with a
text and a ``tool_use``, the user's ``tool_result`` with ~2 KB of output), sent streamed, one at a
time, to the proxy (Hypercorn, 1 worker) in front of the fake Gemini. CPU per request is the
worker's /proc CPU over the requests. ``--stall``: while two ~900 KB turns are served again and
again, ``/health`` is asked every 5 ms; its slowest answer is how long a request held the loop.
``--spy N``: py-spy samples the worker while N-round turns are served (the raw stacks in
bench/results/profile-big-turn.txt). The JSON floor is ``json.loads`` + ``json.dumps`` of the body here.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import string
import subprocess
import time
from typing import Any

from . import common
from .profile_proxy import parse, print_summary, summarize

FIXTURE = common.FIXTURES / "04-tool-parallel-thinking-followup-request.json"
LEFT_OUT = ("Workflow", "CronCreate")
HEADERS = {"content-type": "application/json", "anthropic-version": "2023-06-01", "x-api-key": "bench"}
HELLO = {"model": "claude-haiku-4-5", "max_tokens": 256, "stream": True,
         "messages": [{"role": "user", "content": "Say hello in one short sentence."}]}


def _output(round_: int) -> str:
    lines = [f"{n:>5}\tline {n} of file_{round_}.py: def handler_{n}(request): return respond(request, {n})"
             for n in range(1, 30)]
    return "\n".join(lines)[:2000]


def grown(rounds: int) -> dict[str, Any]:
    """The fixture's request with ``rounds`` tool rounds inserted before its last user turn."""
    body = json.loads(FIXTURE.read_text())
    body["tools"] = [tool for tool in body["tools"] if tool["name"] not in LEFT_OUT]
    extra: list[dict[str, Any]] = []
    rng = random.Random(rounds)
    for n in range(rounds):
        call = "toolu_01" + "".join(rng.choice(string.ascii_letters + string.digits) for _ in range(22))
        extra += [{"role": "assistant", "content": [
                      {"type": "text", "text": f"Reading file_{n}.py to see how the handlers answer."},
                      {"type": "tool_use", "id": call, "name": "Read",
                       "input": {"file_path": f"/home/user/project/file_{n}.py"}}]},
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call, "content": _output(n)}]}]
    body["messages"] = body["messages"][:1] + extra + body["messages"][1:]
    return body


def encoded(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def json_floor_ms(data: bytes, repeat: int = 20) -> float:
    started = time.process_time()
    for _ in range(repeat):
        json.dumps(json.loads(data))
    return (time.process_time() - started) / repeat * 1000


async def _send(session: Any, url: str, data: bytes) -> None:
    async with session.post(url + "/v1/messages", data=data, headers=HEADERS) as response:
        text = await response.text()
        if response.status != 200 or "message_stop" not in text:
            raise RuntimeError(f"{response.status}: {text[:300]}")


async def cpu_per_request(session: Any, proxy: common.ProxyProcess, data: bytes, requests: int) -> float:
    """ms of the worker's CPU per request (after two warm-up requests)."""
    for _ in range(2):
        await _send(session, proxy.url, data)
    pids = proxy.worker_pids()
    before = sum(common.cpu_seconds(pid) for pid in pids)
    for _ in range(requests):
        await _send(session, proxy.url, data)
    return (sum(common.cpu_seconds(pid) for pid in pids) - before) / requests * 1000


async def stall(session: Any, proxy: common.ProxyProcess, data: bytes, seconds: float, turns: int = 2) -> dict:
    """/health's answer times (ms: the slowest, p99) while ``turns`` copies of ``data`` are served
    again and again (none: what the machine's load alone does)."""
    deadline = time.perf_counter() + seconds
    waits: list[float] = []

    async def big() -> None:
        while time.perf_counter() < deadline:
            await _send(session, proxy.url, data)

    async def health() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            async with session.get(proxy.url + "/health") as response:
                await response.read()
            waits.append(time.perf_counter() - started)
            await asyncio.sleep(0.005)

    await asyncio.gather(*(big() for _ in range(turns)), health())
    return {"max": max(waits) * 1000, "p99": common.percentile(waits, 99) * 1000}


def spy(proxy: common.ProxyProcess, data: bytes, seconds: float) -> None:
    raw = common.RESULTS / "profile-big-turn.txt"
    command = ["py-spy", "record", "--pid", str(proxy.worker_pids()[0]), "--rate", "1000", "--format", "raw",
               "--nonblocking", "--gil", "--duration", str(int(seconds)), "--output", str(raw)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)  # py-spy attaching
    requests = asyncio.run(_repeat(proxy, data, seconds - 1.5))
    process.communicate(timeout=seconds + 30)
    print_summary(f"{len(data) / 1024:.0f} KB turn", summarize(parse(raw), requests, 1000))


async def _repeat(proxy: common.ProxyProcess, data: bytes, seconds: float) -> int:
    import aiohttp

    done, deadline = 0, time.perf_counter() + seconds
    async with aiohttp.ClientSession() as session:
        while time.perf_counter() < deadline:
            await _send(session, proxy.url, data)
            done += 1
    return done


async def _measure(proxy: common.ProxyProcess, sizes: list[int], requests: int, stall_rounds: int | None) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        hello = await cpu_per_request(session, proxy, encoded(HELLO), requests)
        print(f"Say hello: {hello:.2f} ms CPU per request")
        for rounds in sizes:
            data = encoded(grown(rounds))
            cpu = await cpu_per_request(session, proxy, data, requests)
            floor = json_floor_ms(data)
            print(f"{rounds:4} rounds, {len(data) / 1024:7.0f} KB: {cpu:6.2f} ms CPU per request "
                  f"(+{cpu - hello:.2f} over hello; JSON floor {floor:.2f} ms, {cpu / floor:.1f}x)")
        if stall_rounds is not None:
            data = encoded(grown(stall_rounds))
            for turns in (0, 2, 0, 2):
                waits = await stall(session, proxy, data, 8.0, turns)
                print(f"/health while {turns} {len(data) / 1024:.0f} KB turns are served: slowest {waits['max']:.1f} ms, "
                      f"p99 {waits['p99']:.1f} ms (load average {os.getloadavg()[0]:.2f})")


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.big_turn", description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="0,110,470", help="tool rounds per turn (0 ≈ 50 KB, 110 ≈ 300 KB, 470 ≈ 1.1 MB)")
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--stall", type=int, default=None, metavar="ROUNDS", help="measure the loop stall (380 ≈ 900 KB)")
    ap.add_argument("--spy", type=int, default=None, metavar="ROUNDS")
    args = ap.parse_args()
    fake = common.FakeProcess(common.SMALL_ANSWER)
    proxy = None
    try:
        proxy = common.ProxyProcess(fake.base_url, name="big-turn")
        if common.first_ok(proxy.port) is None:
            raise RuntimeError(f"proxy did not start; see {proxy.log_path}")
        print(f"load average {os.getloadavg()[0]:.2f}")
        if args.spy is not None:
            spy(proxy, encoded(grown(args.spy)), 15.0)
        else:
            sizes = [int(n) for n in args.sizes.split(",") if n]
            asyncio.run(_measure(proxy, sizes, args.requests, args.stall))
    finally:
        if proxy:
            proxy.stop()
        fake.stop()


if __name__ == "__main__":
    main()
