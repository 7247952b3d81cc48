"""``gemini-proxy``: the proxy's command line (installed by ``uv tool install`` or run by ``uvx``).

Each subcommand lives in its own module and is imported only when it runs, so ``--help`` and the small
commands do not load LiteLLM."""
from __future__ import annotations

import argparse
import importlib
import sys

# subcommand → (module, one-line help)
COMMANDS = {
    "serve": ("serve", "run the proxy (hypercorn.toml's settings)"),
    "claude": ("launch", "run Claude Code against the proxy, starting one for the session if none answers"),
    "keys": ("admin", "client keys: add, list, revoke (PROXY_KEYS_FILE)"),
    "usage": ("usage", "a table of tokens, cache hit rate and cost from the usage ledger"),
    "doctor": ("doctor", "check the Gemini keys, Redis, the database and the tables; show the configuration"),
    "reload": ("admin", "make a running `gemini-proxy serve` re-read spec/ and the model settings (SIGHUP)"),
    "dashboard": ("admin", "print a one-time link to the running proxy's dashboard"),
}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="gemini-proxy", description="An Anthropic Messages API proxy for Google "
                                  "Gemini. Settings come from the environment and .env (ENV_FILE names another).")
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, summary) in COMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary)
        importlib.import_module(f"{__name__}.{module}").arguments(name, sub)
    return top


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["claude"]:
        from .launch import run_claude  # its own options first, then every argument is Claude Code's
        return run_claude(argv[1:])
    args = parser().parse_args(argv)
    return int(args.run(args) or 0)
