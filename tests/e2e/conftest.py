"""Real clients for the end-to-end tests: Claude Code and the TypeScript SDK from npm.

``clients.py`` says which releases (the pins in ``package.json`` / ``package-lock.json``, or with
``E2E_CLIENTS=latest`` the newest ones) and installs them into ``<repo>/.cache/``; the session fixture
``node_modules`` reuses an install while it matches. No node/npm, or a failed install: the tests that
need them are skipped, with the reason.

Every Claude Code run is timed; the figures and the client versions are listed in the summary.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import selectors
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import anthropic
import pytest

from tests.e2e import claude_records, clients

REPO = clients.REPO
CLAUDE_TIMEOUT_S = 120

# The three variables that keep Claude Code off api.anthropic.com (bootstrap, telemetry, updates).
QUIET_ENV = {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1"}

CLAUDE_TIMINGS: list[tuple[str, float]] = []
CLIENT_VERSIONS: dict[str, str] = {}


def _claude_version(bin_path: Path) -> str:
    try:
        out = subprocess.run([str(bin_path), "--version"], capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"<{exc}>"
    return (out.stdout or out.stderr).strip()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def proxy_defaults() -> dict[str, str]:
    """These tests read what reaches Gemini's generate calls (the tools declared, the turns). The explicit
    context cache (the default) moves the cached prefix, tools included, into a cachedContents resource, so
    here it is off unless a test asks for it: test_claude_code_caching.py measures it with Claude Code."""
    return {"CONTEXT_CACHE": "implicit"}


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """``node_modules`` with Claude Code and @anthropic-ai/sdk (pinned, or ``E2E_CLIENTS=latest``)."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if not npm or not node:
        pytest.skip(f"e2e: node/npm not found on PATH (node={node}, npm={npm}); cannot install the real clients")
    with _locked(REPO / ".cache" / "e2e-node.lock"):
        try:
            modules = clients.install(npm)
        except clients.InstallError as exc:
            if os.environ.get("E2E_CLIENTS") == "latest":  # asked for explicitly: a skip would read as a pass
                pytest.fail(f"e2e: {exc}")
            pytest.skip(f"e2e: {exc}")
    versions = clients.installed_versions(modules)
    reported = _claude_version(modules / ".bin" / "claude")
    if not reported.startswith(versions[clients.CLAUDE_CODE] + " "):
        pytest.skip(f"e2e: claude --version gave {reported!r}, expected {versions[clients.CLAUDE_CODE]}")
    CLIENT_VERSIONS.update(versions)
    return modules


@pytest.fixture(scope="session")
def ts_sdk_version(node_modules: Path) -> str:
    return clients.installed_versions(node_modules)[clients.TS_SDK]


@dataclass
class ClaudeRun:
    args: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    home: Path
    result: dict[str, Any] = field(default_factory=dict)

    def transcript_blocks(self, role: str = "assistant") -> list[dict[str, Any]]:
        """The content blocks Claude Code stored for this session (what it parsed from the proxy's answers)."""
        return [block for entry in claude_records.transcript(self.home) if entry.get("type") == role
                for message in [entry.get("message")]
                if isinstance(message, dict) and isinstance(message.get("content"), list)
                for block in message["content"]]

    def describe(self) -> str:
        return (f"claude {' '.join(self.args)} -> exit {self.returncode} in {self.seconds:.2f}s\n"
                f"stdout: {self.stdout[-3000:]}\nstderr: {self.stderr[-3000:]}")


def claude_env(home: Path, base_url: str, **extra: str) -> dict[str, str]:
    """The whole environment of a Claude Code run (nothing inherited from the test process)."""
    env = {
        "HOME": str(home), "USER": "user", "SHELL": "/bin/bash", "TERM": "dumb", "LANG": "C.UTF-8",
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_API_KEY": "sk-test",
        **QUIET_ENV,
    }
    env.update(extra)
    return env


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """An empty project directory (Claude Code's cwd)."""
    path = tmp_path / "project"
    path.mkdir()
    return path


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """Claude Code's HOME for this test (its settings, sessions and transcripts), shared by its runs."""
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture
def claude(node_modules: Path, home: Path, project: Path, request) -> Callable[..., ClaudeRun]:
    """``claude(base_url, prompt, *flags, env={...})``: one headless ``claude -p`` run, timed."""
    binary = node_modules / ".bin" / "claude"

    def run(base_url: str, prompt: str, *flags: str, env: dict[str, str] | None = None,
            timeout: float = CLAUDE_TIMEOUT_S) -> ClaudeRun:
        args = ["-p", prompt, "--output-format", "json", *flags]
        started = time.monotonic()
        try:
            done = subprocess.run([str(binary), *args], cwd=project, env=claude_env(home, base_url, **(env or {})),
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"claude {args} did not finish in {timeout}s; stdout={exc.stdout!r} stderr={exc.stderr!r}")
        seconds = time.monotonic() - started
        outcome = ClaudeRun(args, done.returncode, done.stdout, done.stderr, seconds, home)
        CLAUDE_TIMINGS.append((request.node.name, seconds))
        print(f"\n[e2e] {request.node.name}: claude run took {seconds:.2f}s (exit {done.returncode})")
        try:
            outcome.result = json.loads(done.stdout)
        except ValueError:
            pytest.fail("claude printed no JSON result\n" + outcome.describe())
        return outcome

    return run


def _control_responses(process: subprocess.Popen, wanted: set[str], deadline: float) -> dict[str, dict]:
    """Read Claude Code's stream-json output until a ``control_response`` arrived for every id in ``wanted``."""
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    buffer, found = b"", {}
    while set(found) != wanted:
        if not selector.select(max(0.0, deadline - time.monotonic())):
            pytest.fail(f"claude answered {sorted(found)} of {sorted(wanted)} in time")
        chunk = os.read(process.stdout.fileno(), 65536)
        if not chunk:
            pytest.fail(f"claude closed its output after answering {sorted(found)} of {sorted(wanted)}")
        *lines, buffer = (buffer + chunk).split(b"\n")
        for message in (json.loads(line) for line in lines if line.strip()):
            if message.get("type") == "control_response":
                found[message["response"]["request_id"]] = message["response"]
    return found


@pytest.fixture
def claude_control(node_modules: Path, home: Path, project: Path, request) -> Callable[..., list[dict]]:
    """``claude_control(base_url, *requests, env={...})``: headless Claude Code driven as the Agent SDK drives
    it (``--input-format stream-json``): an ``initialize``, then each control request (``{"subtype": ...}``);
    returns Claude Code's answers to the requests, in order."""
    binary = node_modules / ".bin" / "claude"

    def run(base_url: str, *requests: dict, env: dict[str, str] | None = None,
            timeout: float = CLAUDE_TIMEOUT_S) -> list[dict]:
        lines = [{"type": "control_request", "request_id": f"req{n}", "request": body}
                 for n, body in enumerate([{"subtype": "initialize"}, *requests])]
        command = [str(binary), "-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose"]
        started = time.monotonic()
        with subprocess.Popen(command, cwd=project, env=claude_env(home, base_url, **(env or {})),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) as process:
            try:
                process.stdin.write(b"".join(json.dumps(line).encode() + b"\n" for line in lines))
                process.stdin.flush()
                found = _control_responses(process, {line["request_id"] for line in lines}, started + timeout)
            finally:
                process.stdin.close()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
        CLAUDE_TIMINGS.append((request.node.name, time.monotonic() - started))
        return [found[line["request_id"]] for line in lines[1:]]

    return run


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001
    if CLIENT_VERSIONS or os.environ.get("E2E_CLIENTS") == "latest":
        terminalreporter.section(f"e2e clients ({os.environ.get('E2E_CLIENTS', 'pinned')})")
        pins = {**clients.pinned_npm(), clients.PY_SDK: clients.pinned_python()}
        for name, version in {**CLIENT_VERSIONS, clients.PY_SDK: anthropic.__version__}.items():
            terminalreporter.write_line(f"{name} {version}" + ("" if pins[name] == version else f" (pinned {pins[name]})"))
    if CLAUDE_TIMINGS:
        terminalreporter.section("Claude Code run times")
        for name, seconds in CLAUDE_TIMINGS:
            terminalreporter.write_line(f"{seconds:6.2f}s  {name}")
        total = sum(s for _, s in CLAUDE_TIMINGS)
        terminalreporter.write_line(f"{total:6.2f}s  total over {len(CLAUDE_TIMINGS)} runs")
