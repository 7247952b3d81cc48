"""``gemini-proxy claude [--url URL] [--key KEY] [--] [claude's arguments…]``: Claude Code on Gemini.

If no proxy answers at the URL, one is started for the session (``gemini-proxy serve`` on a free loopback
port, in a session of its own, its log in a file) and stopped when Claude Code exits, and only that one.
Claude Code gets the variables it needs behind a gateway: the URL and a key, Gemini's context window and
output limit from the model tables (else it assumes 200k for names it does not know), gateway model
discovery, a Gemini model in its ``/model`` picker, and no traffic to Anthropic (telemetry, updates)."""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from ..config import DEFAULT_DATABASE_URL, Settings, load_settings

INSTALL = ("Claude Code is not on PATH. Install it with `npm install -g @anthropic-ai/claude-code` (Node 18+), "
           "or see https://code.claude.com/docs/en/setup, then run this again.")
QUIET = {"CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1",
         "DISABLE_ERROR_REPORTING": "1", "CLAUDE_CODE_ENABLE_GATEWAY_MODEL_DISCOVERY": "1"}
FORWARDED = (signal.SIGTERM, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)
START_SECONDS = 120.0  # a proxy's start-up (importing LiteLLM) on a slow machine


def arguments(name: str, sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--url", help="the proxy to use (default: GEMINI_PROXY_URL, else hypercorn.toml's "
                                   "http://127.0.0.1:8082); if none answers there, one is started for the session")
    sub.add_argument("--key", help="the key Claude Code sends (default: GEMINI_PROXY_KEY, else PROXY_API_KEY, "
                                   "else any: a proxy without keys takes any)")
    sub.add_argument("claude_args", nargs=argparse.REMAINDER, help="passed to claude as they are (`--` first "
                     "when one of them is --url or --key)")


def configured_url() -> str:
    from .serve import hypercorn_config
    bind = hypercorn_config(argparse.Namespace(config=None, host=None, port=None, workers=None)).bind[0]
    return "http://" + bind.replace("0.0.0.0", "127.0.0.1")


def _own_options(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    """The launcher's options at the front; everything after them (or after ``--``) is Claude Code's."""
    own = argparse.Namespace(url=None, key=None)
    rest = list(argv)
    while rest and rest[0].split("=", 1)[0] in ("--url", "--key"):
        option, _, value = rest.pop(0).partition("=")
        setattr(own, option[2:], value or (rest.pop(0) if rest else ""))
    if rest[:1] == ["--"]:
        rest.pop(0)
    return own, rest


def _answers(url: str) -> bool:
    try:
        return httpx.get(url.rstrip("/") + "/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def claude_env(settings: Settings, url: str, key: str) -> dict[str, str]:
    """Claude Code's environment: this one, with the proxy's variables (the user's own choices of the
    limits and the picker's model win)."""
    from ..reload import load_tables
    models = load_tables(settings).models
    names = [models.target_name(name).split(",")[0] for name in ("BIG_MODEL", "SMALL_MODEL")]
    facts = [models.models.get(name.removeprefix(models.gemini_prefix), models.fallback) for name in names]
    env = {k: v for k, v in os.environ.items() if k != "ANTHROPIC_AUTH_TOKEN"}
    env.update(QUIET, ANTHROPIC_BASE_URL=url, ANTHROPIC_API_KEY=key)
    env.setdefault("CLAUDE_CODE_MAX_CONTEXT_TOKENS", str(min(f.context_window for f in facts)))
    env.setdefault("CLAUDE_CODE_MAX_OUTPUT_TOKENS", str(min(f.max_output_tokens for f in facts)))
    env.setdefault("ANTHROPIC_CUSTOM_MODEL_OPTION", names[0])
    env.setdefault("ANTHROPIC_CUSTOM_MODEL_OPTION_DESCRIPTION",
                   f"Gemini through gemini-proxy (opus, sonnet: {names[0]}; haiku: {names[1]})")
    return env


class SessionProxy:
    """A ``gemini-proxy serve`` of this session, in its own process group (the terminal's Ctrl-C is Claude
    Code's, not the proxy's)."""

    def __init__(self, settings: Settings) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = Path(tempfile.gettempdir()) / f"gemini-proxy-claude-{self.port}.log"
        env = dict(os.environ)
        if settings.database_url == DEFAULT_DATABASE_URL and "DATABASE_URL" not in env:
            env["DATABASE_URL"] = f"sqlite:///{ledger_path()}"  # not a file in the project Claude Code works on
        with open(self.log, "w") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1",
                                             "--port", str(self.port), "--workers", "1"], env=env, stdout=log,
                                            stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)

    def ready(self) -> bool:
        deadline = time.monotonic() + START_SECONDS
        while self.process.poll() is None and time.monotonic() < deadline:
            if _answers(self.url):
                return True
            time.sleep(0.2)  # polling the proxy's start-up, not synchronising on it
        return False

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def ledger_path() -> Path:
    """The launched proxies' ledger when DATABASE_URL is not set: one per user, beside their other data."""
    folder = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "gemini-proxy"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "usage.db"


def _run(claude: str, args: list[str], env: dict[str, str]) -> int:
    """Claude Code in this process group (the terminal's signals reach it directly); the signals sent to the
    launcher alone are passed on; its exit status is ours."""
    process = subprocess.Popen([claude, *args], env=env)
    previous = {signum: signal.signal(signum, lambda signum, _: process.send_signal(signum)) for signum in FORWARDED}
    interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN)  # Claude Code has it from the terminal already
    try:
        status = process.wait()
    finally:
        for signum, handler in (*previous.items(), (signal.SIGINT, interrupt)):
            signal.signal(signum, handler)
    return 128 - status if status < 0 else status


def run_claude(argv: list[str]) -> int:
    if argv[:1] in (["-h"], ["--help"]):
        help_parser = argparse.ArgumentParser(prog="gemini-proxy claude", description=__doc__.split("\n\n")[1])
        arguments("claude", help_parser)
        help_parser.print_help()
        return 0
    own, args = _own_options(argv)
    settings = load_settings()
    claude = shutil.which("claude")
    if claude is None:
        print(f"gemini-proxy: {INSTALL}", file=sys.stderr)
        return 127
    url = (own.url or os.environ.get("GEMINI_PROXY_URL") or configured_url()).rstrip("/")
    key = own.key or os.environ.get("GEMINI_PROXY_KEY") or settings.proxy_api_key or "gemini-proxy"
    started = None if _answers(url) else SessionProxy(settings)
    try:
        if started is not None:
            if not started.ready():
                print(f"gemini-proxy: the proxy for this session did not start; its log: {started.log}\n"
                      + "".join(started.log.read_text().splitlines(keepends=True)[-5:]), file=sys.stderr, end="")
                return 1
            url = started.url
        return _run(claude, args, claude_env(settings, url, key))
    finally:
        if started is not None:
            started.stop()
