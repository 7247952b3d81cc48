"""Real clients for the end-to-end tests: Claude Code and the TypeScript SDK from npm.

``package.json`` and ``package-lock.json`` here pin the versions. The session fixture ``node_modules``
installs them with ``npm ci`` into ``<repo>/.cache/e2e-node`` (ignored by git) and reuses that folder
while its stamp matches the two files. No node/npm, or a failed install: the tests that need them are
skipped, with the reason.

Every Claude Code run is timed; the figures are printed (``pytest -s``) and listed in the summary.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
NODE_DIR = REPO / ".cache" / "e2e-node"
CLAUDE_CODE_VERSION = "2.1.197"
INSTALL_TIMEOUT_S = 600
CLAUDE_TIMEOUT_S = 120

# The three variables that keep Claude Code off api.anthropic.com (bootstrap, telemetry, updates).
QUIET_ENV = {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1"}

CLAUDE_TIMINGS: list[tuple[str, float]] = []


def _stamp() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((HERE / name).read_bytes())
    return digest.hexdigest()


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
def node_modules() -> Path:
    """``<repo>/.cache/e2e-node/node_modules`` with the pinned Claude Code and @anthropic-ai/sdk."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if not npm or not node:
        pytest.skip(f"e2e: node/npm not found on PATH (node={node}, npm={npm}); cannot install the real clients")
    claude = NODE_DIR / "node_modules" / ".bin" / "claude"
    stamp_file = NODE_DIR / ".installed"
    wanted = _stamp()
    with _locked(REPO / ".cache" / "e2e-node.lock"):
        fresh = (stamp_file.is_file() and stamp_file.read_text() == wanted and claude.exists()
                 and (NODE_DIR / "node_modules" / "@anthropic-ai" / "sdk" / "package.json").is_file())
        if not fresh:
            NODE_DIR.mkdir(parents=True, exist_ok=True)
            stamp_file.unlink(missing_ok=True)
            for name in ("package.json", "package-lock.json"):
                shutil.copyfile(HERE / name, NODE_DIR / name)
            command = [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"]
            try:
                done = subprocess.run(command, cwd=NODE_DIR, capture_output=True, text=True,
                                      timeout=INSTALL_TIMEOUT_S, stdin=subprocess.DEVNULL)
            except (OSError, subprocess.TimeoutExpired) as exc:
                pytest.skip(f"e2e: `npm ci` in {NODE_DIR} failed: {exc}")
            if done.returncode != 0:
                tail = (done.stderr or done.stdout).strip()[-1500:]
                pytest.skip(f"e2e: `npm ci` in {NODE_DIR} exited {done.returncode}: {tail}")
        version = _claude_version(claude)
        if not version.startswith(CLAUDE_CODE_VERSION):
            pytest.skip(f"e2e: {claude} --version gave {version!r}, expected {CLAUDE_CODE_VERSION} "
                        "(postinstall skipped? npm ignore-scripts?)")
        stamp_file.write_text(wanted)
    return NODE_DIR / "node_modules"


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
        blocks = []
        for path in sorted((self.home / ".claude" / "projects").glob("*/*.jsonl")):
            for line in path.read_text().splitlines():
                entry = json.loads(line)
                message = entry.get("message")
                if entry.get("type") == role and isinstance(message, dict) and isinstance(message.get("content"), list):
                    blocks += message["content"]
        return blocks

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
def claude(node_modules: Path, tmp_path: Path, project: Path, request) -> Callable[..., ClaudeRun]:
    """``claude(base_url, prompt, *flags, env={...})``: one headless ``claude -p`` run, timed."""
    binary = node_modules / ".bin" / "claude"
    home = tmp_path / "home"
    home.mkdir()

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


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ARG001
    if CLAUDE_TIMINGS:
        terminalreporter.section("Claude Code run times")
        for name, seconds in CLAUDE_TIMINGS:
            terminalreporter.write_line(f"{seconds:6.2f}s  {name}")
        total = sum(s for _, s in CLAUDE_TIMINGS)
        terminalreporter.write_line(f"{total:6.2f}s  total over {len(CLAUDE_TIMINGS)} runs")
