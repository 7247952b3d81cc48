"""Shared pieces of the benchmark suite: quiet LiteLLM settings, statistics, tables, machine facts,
and the processes (fake Gemini, Hypercorn serving the proxy) the suites start and stop.

Every process started here is started by this module, in its own session, and ended by its pid.
Only 127.0.0.1 is used.
"""
from __future__ import annotations

import http.client
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

# Before anything imports LiteLLM: the bundled price map (no fetch at import) and no warnings.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_LOG", "ERROR")

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
# Bytecode is cached (under bench/results/pycache), as in any normal Python deployment, even when the
# environment says PYTHONDONTWRITEBYTECODE (this box does): without it every process start, and every
# failed import retried per call (LiteLLM's Anthropic interface does one), would compile from source.
PYCACHE = RESULTS / "pycache"
sys.dont_write_bytecode = False
sys.pycache_prefix = str(PYCACHE)
LOGS = RESULTS / "logs"
FIXTURES = Path("/work/shared/fixtures/claude-code")

# The answer used by the end-to-end and scale suites: a 50-character text in 7 stream chunks.
SMALL_ANSWER = {"text": "Hello from the fake Gemini server. How can I help?", "text_chunks": 7}
API_KEY = "bench-gemini-key"


# ------------------------------------------------------------------------------------ statistics
def percentile(values: list[float], p: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not values:
        return float("nan")
    data = sorted(values)
    k = (len(data) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (k - lo)


def summary(values: list[float], scale: float = 1000.0) -> dict[str, float]:
    """median / p90 / p99 (and n, mean, max) of seconds, in ms by default."""
    if not values:
        return {"n": 0, "median": float("nan"), "p90": float("nan"), "p99": float("nan"),
                "mean": float("nan"), "max": float("nan")}
    return {"n": len(values), "median": percentile(values, 50) * scale, "p90": percentile(values, 90) * scale,
            "p99": percentile(values, 99) * scale, "mean": sum(values) / len(values) * scale,
            "max": max(values) * scale}


def table(headers: list[str], rows: Iterable[Iterable[Any]], title: str | None = None) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            if v != v:
                return "-"
            return f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}" if abs(v) < 1000 else f"{v:.0f}"
        return str(v)

    text_rows = [[cell(v) for v in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in text_rows)) if text_rows else len(h) for i, h in enumerate(headers)]
    out = []
    if title:
        out.append(title)
    out.append("  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(headers, widths))))
    out.append("  ".join("-" * w for w in widths))
    for r in text_rows:
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(out)


@dataclass
class Target:
    name: str
    value: float
    limit: float
    unit: str = "ms"
    info: bool = False  # a comparison shown next to the targets, not one of them
    passed: bool = field(init=False)

    def __post_init__(self) -> None:
        self.passed = self.value == self.value and self.value <= self.limit

    def line(self) -> str:
        verdict = "info" if self.info else "PASS" if self.passed else "MISS"
        return f"{verdict:4}  {self.name}: {self.value:.3f} {self.unit} (target <= {self.limit:g} {self.unit})"


# ------------------------------------------------------------------------------------ machine
def machine() -> dict[str, Any]:
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import litellm  # noqa: PLC0415 - after the environment above

    try:
        from importlib.metadata import version
        versions = {name: version(name) for name in ("litellm", "quart", "hypercorn", "aiohttp", "httpx")}
    except Exception:  # noqa: BLE001
        versions = {}
    del litellm
    return {"nproc": os.cpu_count(), "cpu_model": cpu, "python": sys.version.split()[0],
            "platform": platform.platform(), "packages": versions}


def write_json(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(data, indent=1, default=str))
    return path


def pyplot():
    """matplotlib.pyplot with the Agg backend, or None when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        return plt
    except ImportError:
        print("(matplotlib is not installed: no plot; `uv add --dev matplotlib`)")
        return None


# ------------------------------------------------------------------------------------ processes
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.update({"PYTHONPYCACHEPREFIX": str(PYCACHE), "PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR",
                "PYTHONUNBUFFERED": "1"})
    env.update(extra)
    return env


class Proc:
    """A child process in its own session, ended by its pid (SIGTERM, then SIGKILL of its group)."""

    def __init__(self, args: list[str], env: dict[str, str], log_name: str):
        LOGS.mkdir(parents=True, exist_ok=True)
        self.log_path = LOGS / log_name
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed in stop()
        self.launched = time.perf_counter()
        self.popen = subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=self._log,
                                      text=True, start_new_session=True)
        self.pid = self.popen.pid

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.pid, signal.SIGKILL)  # our child's own session only
                except ProcessLookupError:
                    pass
                self.popen.wait(5)
        self._log.close()

    def tree(self) -> list[int]:
        """This process and its descendants (from /proc/<pid>/task/*/children)."""
        seen, todo = [], [self.pid]
        while todo:
            pid = todo.pop()
            seen.append(pid)
            try:
                for task in Path(f"/proc/{pid}/task").iterdir():
                    todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
        return seen


def proc_status(pid: int) -> dict[str, Any]:
    """VmHWM / VmRSS (MiB), CPU seconds and command line of a live process."""
    out: dict[str, Any] = {"pid": pid}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmHWM", "VmRSS"):
                out[key] = int(value.split()[0]) / 1024
        out["cpu_s"] = cpu_seconds(pid)
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        out["cmd"] = cmd[:160]
    except OSError:
        pass
    return out


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return float("nan")


class FakeProcess(Proc):
    """The project's fake Gemini (``python -m tests.fake_gemini``) in its own process, logging off, with a listen
    backlog large enough for 1,000 connections opened at once (aiohttp's default of 128 would make the scale test
    measure SYN retransmits instead of the proxy)."""

    def __init__(self, default_spec: dict, backlog: int = 4096):
        super().__init__([sys.executable, "-m", "tests.fake_gemini", "--quiet", "--backlog", str(backlog),
                          "--default-spec", json.dumps(default_spec)], _env({}), "fake_gemini.log")
        line = self.popen.stdout.readline()
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"fake Gemini did not start; see {self.log_path}")
        self.port = int(line.split()[1])
        self.base_url = f"http://127.0.0.1:{self.port}/v1beta"


# The worker class the README's hypercorn.toml uses, so the benchmark runs the proxy the same way.
_README_WORKER_CLASS = tomllib.loads((Path(__file__).resolve().parent.parent / "hypercorn.toml").read_text()).get(
    "worker_class", "asyncio")


class ProxyProcess(Proc):
    """`hypercorn --config <generated toml> service.app:app`, as the README runs it, logging off."""

    def __init__(self, fake_base_url: str, workers: int = 1, name: str = "proxy", app: str = "service.app:app",
                 extra_env: dict[str, str] | None = None):
        self.port = free_port()
        RESULTS.mkdir(parents=True, exist_ok=True)
        config = RESULTS / f"hypercorn-{name}.toml"
        config.write_text("\n".join([
            f'bind = ["127.0.0.1:{self.port}"]',
            f"workers = {workers}",
            f'worker_class = "{_README_WORKER_CLASS}"',
            "backlog = 4096",
            "keep_alive_max_requests = 1000000",
            "keep_alive_timeout = 75",
            "read_timeout = 900",
            "graceful_timeout = 2",
            "h2_max_concurrent_streams = 1000",
            'errorlog = "-"',
            "",
        ]))
        env = _env({"GEMINI_API_KEY": API_KEY, "GEMINI_API_BASE": fake_base_url, "LOG_LEVEL": "ERROR",
                    "DATABASE_URL": f"sqlite:///{RESULTS / f'usage-{name}.db'}", **(extra_env or {})})
        super().__init__([sys.executable, "-m", "hypercorn", "--config", str(config), app], env,
                         f"{name}.log")
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers

    def worker_pids(self) -> list[int]:
        """Processes that serve requests (those with a listening-socket worker loop): every descendant
        but the supervisor and multiprocessing's resource tracker."""
        pids = []
        for pid in self.tree():
            if pid == self.pid:
                continue
            cmd = proc_status(pid).get("cmd", "")
            if "resource_tracker" in cmd:
                continue
            pids.append(pid)
        return pids

    def memory(self) -> dict[str, Any]:
        procs = [proc_status(pid) for pid in self.tree()]
        workers = [p for p in procs if p["pid"] != self.pid and "resource_tracker" not in p.get("cmd", "")]
        return {"processes": procs,
                "workers_vmhwm_mib": sum(p.get("VmHWM", 0) for p in workers),
                "all_vmhwm_mib": sum(p.get("VmHWM", 0) for p in procs)}


def first_ok(port: int, method: str = "GET", path: str = "/health", body: bytes | None = None,
             headers: dict[str, str] | None = None, timeout: float = 60.0) -> float | None:
    """When (perf_counter) the first 200 answer to this request arrived, polling every 5 ms; None if
    none came within ``timeout`` seconds. Waits for a server to start, and times its start-up."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            response.read()
            conn.close()
            if response.status == 200:
                return time.perf_counter()
        except OSError:
            pass
        time.sleep(0.005)
    return None


# ------------------------------------------------------------------------------------ contention
def _machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, summed over CPUs (/proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(fields[:8])
    idle = fields[3] + fields[4]
    return (total - idle) / _TICK, total / _TICK


def _ours() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


class Contention:
    """How much CPU other processes (other sessions' test runs on this shared box) took during a suite:
    machine-wide busy time (/proc/stat) minus this process and its reaped children."""

    def __init__(self) -> None:
        self.busy0, self.total0 = _machine_busy()
        self.ours0 = _ours()
        self.wall0 = time.perf_counter()

    def result(self) -> dict[str, float]:
        busy, total = _machine_busy()
        ours = _ours() - self.ours0
        wall = time.perf_counter() - self.wall0
        other = max(0.0, busy - self.busy0 - ours)
        span = max(total - self.total0, 1e-9)
        return {"wall_s": wall, "bench_cpu_s": ours, "other_cpu_s": other, "other_share": other / span,
                "machine_busy_share": (busy - self.busy0) / span}

    def line(self, name: str) -> str:
        r = self.result()
        return (f"[{name}: {r['wall_s']:.0f} s; machine {100 * r['machine_busy_share']:.0f}% busy, of which other "
                f"processes (not this benchmark) {100 * r['other_share']:.0f}% of the {os.cpu_count()} CPUs]")
