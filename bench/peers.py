"""Suite 6: the peer comparison of issue 14 — CPU per request, throughput and stream validity of this proxy,
claude-code-router and LiteLLM's proxy server, against in-process ``litellm.acompletion`` (``direct``).

All three servers talk to the same fake Gemini (``python -m tests.fake_gemini``) and get the e2e suite's small
request from the same aiohttp client, variants interleaved round by round (``e2e.measure``):

* ``proxy``: this proxy (Hypercorn, 1 worker, as the e2e suite runs it);
* ``ccr``: claude-code-router (npm, installed on demand into ``.cache/peers/ccr``), ``node cli.js start`` with a
  temporary HOME holding its ``~/.claude-code-router/config.json``: the gemini provider and transformer, its
  ``api_base_url`` the fake's ``/v1beta/models/``;
* ``litellm_proxy``: ``litellm --config`` (``litellm[proxy]`` in its own venv, ``.cache/peers/litellm-venv``), one
  worker, its ``/v1/messages``; each model's ``api_base`` is the fake;
* ``direct``: ``litellm.acompletion`` with the translator's kwargs in the client process (the issue's denominator).

No server checks a client key (the proxy and CCR run without one; LiteLLM's proxy is started with its "no master
key" override), so none pays for authentication. The Gemini model of each Anthropic name is the one the
translator routes to. A peer that cannot be installed or started is skipped with the reason.

Then the Claude-Code-shaped request (``claude_code_request.py``, streamed) goes once to each server and the answer
is checked against Anthropic's stream grammar (``tests/sse_grammar.py``) plus a non-zero output usage.
"""
from __future__ import annotations

import asyncio
import collections
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from service import memory

from . import common, e2e
from .answer_check import check_answer, claude_code_bodies

CACHE = common.ROOT / ".cache" / "peers"
CCR_PACKAGE, CCR_VERSION = "@musistudio/claude-code-router", "2.0.0"
LITELLM_VERSION = "1.106.2"
VARIANTS = ("proxy", "ccr", "litellm_proxy", "direct")
NOTES = {
    "proxy": "aiohttp client → this proxy (Hypercorn, 1 worker) → fake",
    "ccr": f"aiohttp client → claude-code-router {CCR_VERSION} (node, gemini transformer) → fake",
    "litellm_proxy": f"aiohttp client → LiteLLM {LITELLM_VERSION} proxy server /v1/messages (1 worker) → fake",
    "direct": "litellm.acompletion with the translator's kwargs, in the client process",
}
# Issue 14's targets for the proxy's ratio, and what claude-code-router scored on the issue author's run.
TARGETS = {"nonstream": 0.65, "stream": 0.35}
CCR_REPORTED = {"nonstream": 0.68, "stream": 0.36}
MODE_FIGURE = {"nonstream": "nonstream_total", "stream": "stream_total"}


class Skip(Exception):
    """A peer that cannot be installed or started; the message says why."""


# ------------------------------------------------------------------------------------ installs
def _step(args: list[str], what: str, timeout: float) -> None:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=common.ROOT,
                              check=False)
    except FileNotFoundError as exc:
        raise Skip(f"{what}: {exc}") from None
    except subprocess.TimeoutExpired:
        raise Skip(f"{what}: no result within {timeout:.0f} s") from None
    if done.returncode != 0:
        raise Skip(f"{what} failed ({done.returncode}): {(done.stderr or done.stdout).strip()[-400:]}")


def install_ccr() -> Path:
    """claude-code-router's CLI (``dist/cli.js``), npm-installed into .cache/peers/ccr unless there already."""
    if not shutil.which("node") or not shutil.which("npm"):
        raise Skip("node and npm are needed (not on PATH)")
    package = CACHE / "ccr" / "node_modules" / CCR_PACKAGE
    if _installed_version(package / "package.json") != CCR_VERSION:
        print(f"(installing {CCR_PACKAGE}@{CCR_VERSION} into {package.parent.parent.relative_to(common.ROOT)})")
        _step(["npm", "install", "--prefix", str(CACHE / "ccr"), "--no-audit", "--no-fund", "--loglevel=error",
               f"{CCR_PACKAGE}@{CCR_VERSION}"], "npm install", 600)
    cli = package / "dist" / "cli.js"
    if not cli.exists():
        raise Skip(f"npm installed no {cli.relative_to(common.ROOT)}")
    return cli


def _installed_version(package_json: Path) -> str | None:
    try:
        return json.loads(package_json.read_text()).get("version")
    except (OSError, ValueError):
        return None


def install_litellm_proxy() -> Path:
    """The ``litellm`` CLI of a venv (.cache/peers/litellm-venv) holding ``litellm[proxy]`` at the project's
    LiteLLM version, made with uv unless there already."""
    venv = CACHE / "litellm-venv"
    cli = venv / "bin" / "litellm"
    if cli.exists() and list(venv.glob(f"lib/python*/site-packages/litellm-{LITELLM_VERSION}.dist-info")):
        return cli
    uv = shutil.which("uv")
    if not uv:
        raise Skip("uv is needed to make the litellm[proxy] venv (not on PATH)")
    print(f"(installing litellm[proxy]=={LITELLM_VERSION} into {venv.relative_to(common.ROOT)})")
    # The interpreter running this bench: the venv needs no download.
    _step([uv, "venv", "--quiet", "--allow-existing", "--python", sys.executable, str(venv)], "uv venv", 120)
    _step([uv, "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
           f"litellm[proxy]=={LITELLM_VERSION}"], "uv pip install", 600)
    if not cli.exists():
        raise Skip(f"uv installed no {cli.relative_to(common.ROOT)}")
    return cli


# ------------------------------------------------------------------------------------ servers
class PeerServer:
    """A peer's server process (common.Proc), its stdout drained into a short tail so that a chatty server
    never blocks on a full pipe, and every process of its tree ended at stop()."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], port: int):
        self.name, self.port = name, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc = common.Proc(args, env, f"{name}-peers.log")
        self.tail: collections.deque[str] = collections.deque(maxlen=20)
        threading.Thread(target=self._drain, name=f"drain-{name}", daemon=True).start()
        self.pids: list[int] = [self.proc.pid]

    def _drain(self) -> None:
        for line in self.proc.popen.stdout:
            self.tail.append(line.rstrip())

    def wait_ready(self, path: str, method: str = "GET", body: bytes | None = None, timeout: float = 90) -> float:
        """Seconds from launch to the first 200 on ``path``; when none comes within ``timeout`` or the process
        exits first, the server is stopped and Skip raised."""
        deadline = time.perf_counter() + timeout
        while self.proc.popen.poll() is None and time.perf_counter() < deadline:
            at = common.first_ok(self.port, method, path, body, {"content-type": "application/json"}, timeout=2)
            if at is not None:
                self.pids = self.proc.tree()
                return at - self.proc.launched
        died = self.proc.popen.poll()
        self.stop()
        what = f"exited ({died}) before answering" if died is not None else f"did not answer within {timeout:.0f} s"
        raise Skip(f"{self.name} {what} {method} {path}; see {self.proc.log_path.relative_to(common.ROOT)} "
                   f"(stdout: {' | '.join(self.tail)[-300:]})")

    def stop(self) -> None:
        pids = self.proc.tree() if self.proc.popen.poll() is None else self.pids
        self.proc.stop()
        for pid in pids[1:]:  # descendants that outlived their parent
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def gemini_models(*extra: dict[str, Any]) -> dict[str, str]:
    """Anthropic model name → the Gemini model the translator routes it to, for the requests of this suite
    (and of ``extra`` bodies)."""
    import translator

    from .claude_code_request import claude_code_request

    spec = translator.load_spec()
    out = {}
    for body in (e2e.SMALL_BODY, claude_code_request(), *extra):
        out[body["model"]] = translator.translate_request(body, spec).route.target.removeprefix("gemini/")
    return out


def _small_body() -> bytes:
    return json.dumps({**e2e.SMALL_BODY, "stream": False}).encode()


def start_ccr(cli: Path, fake: common.FakeProcess, models: dict[str, str], home: Path) -> PeerServer:
    from .claude_code_request import claude_code_request

    port = common.free_port()
    small, big = models[e2e.SMALL_BODY["model"]], models[claude_code_request()["model"]]
    config = {"LOG": False, "HOST": "127.0.0.1", "PORT": port, "API_TIMEOUT_MS": 120000,
              "Providers": [{"name": "gemini", "api_base_url": f"{fake.base_url}/models/", "api_key": common.API_KEY,
                             "models": sorted(set(models.values())), "transformer": {"use": ["gemini"]}}],
              # CCR routes claude-*-haiku to "background"; everything else here to the big model, as we do.
              "Router": {"default": f"gemini,{big}", "background": f"gemini,{small}", "think": f"gemini,{big}",
                         "longContext": f"gemini,{big}"}}
    (home / ".claude-code-router").mkdir(parents=True)
    (home / ".claude-code-router" / "config.json").write_text(json.dumps(config, indent=1))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "GEMINI_", "OPENAI_"))}
    env.update(HOME=str(home), NO_COLOR="1")
    server = PeerServer("ccr", ["node", str(cli), "start"], env, port)
    server.startup_s = server.wait_ready("/v1/messages", "POST", _small_body(), timeout=60)
    return server


def start_litellm_proxy(cli: Path, fake: common.FakeProcess, models: dict[str, str], workdir: Path) -> PeerServer:
    port = common.free_port()
    lines = ["model_list:"]
    for name, model in models.items():
        lines += [f"  - model_name: {name}", "    litellm_params:", f"      model: gemini/{model}",
                  f"      api_base: {fake.base_url}", f"      api_key: {common.API_KEY}"]
    # No cooldown: one deployment per model, and one failed check must not turn the next into a 429.
    lines += ["litellm_settings:", "  num_retries: 0", "  suppress_debug_info: true",
              "router_settings:", "  disable_cooldowns: true",
              "general_settings:", "  dangerously_permit_weak_or_unset_master_key: true", ""]
    config = workdir / "litellm-config.yaml"
    config.write_text("\n".join(lines))
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH") and not k.startswith(("GEMINI_", "LITELLM_"))}
    # The bundled price map, no .env read (LITELLM_MODE other than DEV), logging at ERROR.
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR", LITELLM_MODE="PRODUCTION",
               PYTHONUNBUFFERED="1", HOME=str(workdir))
    server = PeerServer("litellm_proxy", [str(cli), "--config", str(config), "--host", "127.0.0.1", "--port",
                                          str(port), "--num_workers", "1"], env, port)
    server.startup_s = server.wait_ready("/health/liveliness", timeout=120)
    server.wait_ready("/v1/messages", "POST", _small_body(), timeout=30)
    return server


# ------------------------------------------------------------------------------------ measuring
class PeerClients:
    """``fn(variant, mode)`` for e2e.measure: the HTTP variants through e2e.Clients' client against each server's
    URL, ``direct`` through its in-process LiteLLM call."""

    def __init__(self, clients: e2e.Clients, urls: dict[str, str]):
        self.clients, self.urls = clients, urls

    def fn(self, variant: str, mode: str):
        if variant == "direct":
            return self.clients.fn("direct", mode)
        method = self.clients.proxy_s if mode == "stream" else self.clients.proxy_ns
        url = self.urls[variant] + "/v1/messages"
        return lambda: method(url)


def _plan(quick: bool) -> dict[int, tuple[int, int]]:
    """concurrency → (rounds, requests per task per round)."""
    if quick:
        return {1: (20, 1), 16: (2, 3), 64: (1, 2)}
    return {1: (100, 1), 16: (4, 4), 64: (2, 3)}


def ratios(figures: dict[str, Any]) -> dict[str, dict[str, dict[int, float]]]:
    """{mode: {variant: {c: serving CPU per request ÷ direct's}}} (bench/e2e.py's measure, per c)."""
    return {mode: {variant: {c: e2e.cpu_ratio(figures, figure, variant, (c,)) for c in by_c}
                   for variant, by_c in figures.get(figure, {}).items()}
            for mode, figure in MODE_FIGURE.items()}


async def claude_code_check(session, urls: dict[str, str]) -> list[dict[str, Any]]:
    """The Claude-Code-shaped streamed request, in both forms, once to each server."""
    import aiohttp

    out = []
    for variant, url in urls.items():
        for form, body in claude_code_bodies(variant).items():
            row = {"server": variant, "request": form}
            try:
                async with session.post(url + "/v1/messages", data=body, headers=e2e.HEADERS,
                                        timeout=aiohttp.ClientTimeout(total=60)) as resp:
                    raw = await resp.read()
                row.update(check_answer(resp.status, resp.headers.get("content-type", ""), raw))
            except (TimeoutError, aiohttp.ClientError) as exc:
                row.update(valid=False, problem=f"{type(exc).__name__}: {exc}"[:300])
            out.append(row)
    return out


# ------------------------------------------------------------------------------------ the suite
async def _measure(quick: bool, fake: common.FakeProcess, servers: dict[str, Any]) -> dict[str, Any]:
    import aiohttp
    import litellm

    litellm.suppress_debug_info = True
    litellm.num_retries = 0  # as the proxy
    urls = {name: s.url for name, s in servers.items()}
    procs = {name: (s.worker_pids() if name == "proxy" else s.pids) for name, s in servers.items()}
    procs["fake"] = [fake.pid]
    variants = tuple(v for v in VARIANTS if v in servers or v == "direct")
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        clients = PeerClients(e2e.Clients(urls["proxy"], fake.base_url, session), urls)
        memory.settle()  # as bench/e2e.py: direct is not charged LiteLLM's full collections
        rec = await e2e.measure(clients, procs, quick, plan=_plan(quick), variants=variants,
                                budget_s=150 if quick else 300)
        validity = await claude_code_check(session, urls)
    figures = e2e._figures(rec)
    errors = {f"{v}/{m}/c{c}": e[:3] for (v, m, c), e in rec.errors.items() if e}
    return {"variants": variants, "figures": figures, "ratios": ratios(figures), "errors": errors,
            "claude_code_stream": validity,
            "server_processes": {name: [common.proc_status(pid) for pid in pids] for name, pids in procs.items()}}


def start_peers(fake: common.FakeProcess, workdir: Path, servers: dict[str, Any], skipped: dict[str, str],
                models: dict[str, str] | None = None) -> None:
    """Install and start each peer into ``servers``; one that cannot be is named in ``skipped`` with why."""
    models = models or gemini_models()
    starters = {"ccr": lambda: start_ccr(install_ccr(), fake, models, workdir / "ccr-home"),
                "litellm_proxy": lambda: start_litellm_proxy(install_litellm_proxy(), fake, models, workdir)}
    for name, start in starters.items():
        try:
            servers[name] = start()
        except (Skip, OSError) as exc:
            skipped[name] = str(exc)
            print(f"(peers: {name} skipped — {exc})")


def run(quick: bool = False) -> dict[str, Any]:
    servers: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    fake = common.FakeProcess(common.SMALL_ANSWER)
    try:
        CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="run-", dir=CACHE) as tmp:
            proxy = servers["proxy"] = common.ProxyProcess(fake.base_url, workers=1, name="proxy-peers")
            ready = common.first_ok(proxy.port)
            if ready is None:
                raise RuntimeError(f"proxy did not start; see {proxy.log_path}")
            proxy.startup_s = ready - proxy.launched
            start_peers(fake, Path(tmp), servers, skipped)
            results = asyncio.run(_measure(quick, fake, servers))
            results["startup_s"] = {name: getattr(s, "startup_s", None) for name, s in servers.items()}
    finally:
        for server in servers.values():
            server.stop()
        fake.stop()
    results["skipped"] = skipped
    report(results)
    return results


# ------------------------------------------------------------------------------------ report
def report(results: dict[str, Any]) -> None:
    figures, rat = results["figures"], results["ratios"]
    rows = []
    for mode, figure in MODE_FIGURE.items():
        for c in sorted(figures.get(figure, {}).get("direct", {})):
            for variant in results["variants"]:
                s = figures[figure].get(variant, {}).get(c)
                if s is None:
                    continue
                cpu = s["cpu_ms_per_request"]
                first = figures["stream_first_event"][variant][c]["median"] if mode == "stream" else float("nan")
                rows.append((mode, c, variant, s["n"], s["errors"], s["median"], s["p99"], first,
                             s["throughput_rps"], e2e.cpu_per_request(figures, figure, variant, (c,)),
                             rat[mode][variant][c],
                             cpu.get("client", float("nan")), cpu.get("fake", float("nan"))))
    print(common.table(["mode", "c", "variant", "n", "err", "p50 ms", "p99 ms", "first ev p50", "req/s",
                        "server CPU ms/req", "÷ direct", "client CPU ms/req", "fake CPU ms/req"], rows,
                       title="\n== 6. Peers: the small request through each server vs direct LiteLLM (total latency; "
                             "server CPU = the serving process tree, the client process for direct)"))
    print("\n".join(f"  {v}: {NOTES[v]}" for v in results["variants"]))
    for name, why in results["skipped"].items():
        print(f"  {name}: skipped — {why}")
    print(f"  issue 14 target: proxy ÷ direct ≤ {TARGETS['nonstream']} non-stream, ≤ {TARGETS['stream']} stream "
          f"(claude-code-router {CCR_REPORTED['nonstream']} / {CCR_REPORTED['stream']} on the issue author's run)")
    if results["errors"]:
        print("errors:", json.dumps(results["errors"], indent=1)[:2000])
    startup = results.get("startup_s", {})
    print("  startup (launch → first answer), s: " + ", ".join(f"{v} {t:.1f}" for v, t in startup.items() if t))
    checks = results["claude_code_stream"]
    rows = [(r["server"], r["request"], r.get("status", "-"), "yes" if r["valid"] else "NO", r.get("events", "-"),
             r.get("blocks") or "-", r.get("stop_reason") or "-", r.get("output_tokens", "-")) for r in checks]
    print(common.table(["server", "request", "HTTP", "valid", "events", "blocks", "stop", "out tok"], rows,
                       title="\nClaude-Code-shaped request (84 KB, 24 tools, thinking), streamed once to each "
                             "server: a valid Anthropic stream?"))
    for r in checks:
        if r["problem"] or r.get("remarks"):
            print(f"  {r['server']} ({r['request']}): {r['problem'] or '; '.join(r['remarks'])}")


def targets(results: dict[str, Any]) -> list[common.Target]:
    """The proxy's CPU ratio at c=16 and c=64 against issue 14's targets; claude-code-router's as info."""
    out = []
    for mode, limit in TARGETS.items():
        by_variant = results["ratios"].get(mode, {})
        for variant, info in (("proxy", False), ("ccr", True)):
            for c in (16, 64):
                value = by_variant.get(variant, {}).get(c)
                if value is not None:
                    out.append(common.Target(f"peers: {variant} CPU per request ÷ direct LiteLLM's, {mode}, c={c}",
                                             value, limit, unit="×", info=info))
    return out
