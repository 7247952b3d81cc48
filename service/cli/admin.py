"""``gemini-proxy keys``, ``reload`` and ``dashboard``: the small admin commands."""
from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import httpx

from ..config import load_settings
from ..teams.keys import add_key, read_keys, revoke_key
from translator import SpecError


def arguments(name: str, sub: argparse.ArgumentParser) -> None:
    {"keys": _keys_arguments, "reload": _reload_arguments, "dashboard": _dashboard_arguments}[name](sub)


def _keys_arguments(sub: argparse.ArgumentParser) -> None:
    actions = sub.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="create a key: print its secret once, append its hash to the file")
    add.add_argument("name")
    add.add_argument("--rpm", type=int, help="requests per minute")
    add.add_argument("--tpm", type=int, help="tokens per minute (input + output)")
    add.add_argument("--model", action="append", dest="models", help="a model (fnmatch pattern) it may use")
    listing = actions.add_parser("list", help="the keys' names and limits (the file holds no secrets)")
    revoke = actions.add_parser("revoke", help="remove a key: it stops working at the next request")
    revoke.add_argument("name")
    for action in (add, listing, revoke):
        action.add_argument("--file", help="the keys file (default: PROXY_KEYS_FILE)")
    sub.set_defaults(run=keys)


def keys(args: argparse.Namespace) -> int:
    path = args.file or load_settings().proxy_keys_file
    if not path:
        print("gemini-proxy: no keys file: set PROXY_KEYS_FILE or pass --file", file=sys.stderr)
        return 2
    try:
        if args.action == "add":
            secret = add_key(Path(path), args.name, args.rpm, args.tpm, args.models)
            print(f"Key {args.name!r} added to {path}. Its secret, shown only this once:", file=sys.stderr)
            print(secret)
        elif args.action == "revoke":
            revoke_key(Path(path), args.name)
            print(f"Key {args.name!r} removed from {path}.", file=sys.stderr)
        else:
            for _, client in read_keys(path) if Path(path).exists() else []:
                print(f"{client.name}\trpm={client.rpm or '-'}\ttpm={client.tpm or '-'}\t"
                      f"models={','.join(client.models) or '*'}")
    except (SpecError, OSError) as failure:
        print(f"gemini-proxy: {failure}", file=sys.stderr)
        return 1
    return 0


def _reload_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--port", type=int, default=None, help="the port of the `gemini-proxy serve` to reload "
                                                            "(default: hypercorn.toml's)")
    sub.set_defaults(run=reload)


def reload(args: argparse.Namespace) -> int:
    from .launch import configured_url
    from .serve import pid_file
    path = pid_file(args.port or int(configured_url().rpartition(":")[2]))
    try:
        os.kill(int(path.read_text()), signal.SIGHUP)
    except (OSError, ValueError) as failure:
        print(f"gemini-proxy: no `gemini-proxy serve` found through {path} ({failure}); with Hypercorn's own "
              "command, send SIGHUP to each worker", file=sys.stderr)
        return 1
    print(f"SIGHUP sent to {path.read_text()}: each worker re-reads the tables (a broken edit is logged, "
          "the old tables stay)", file=sys.stderr)
    return 0


def _dashboard_arguments(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--url", help="the proxy (default: GEMINI_PROXY_URL, else hypercorn.toml's)")
    sub.set_defaults(run=dashboard)


def dashboard(args: argparse.Namespace) -> int:
    """A one-time link (the admin key goes in a POST, never in a URL that lasts)."""
    from .launch import configured_url
    url = (args.url or os.environ.get("GEMINI_PROXY_URL") or configured_url()).rstrip("/")
    admin = load_settings().proxy_api_key
    try:
        answer = httpx.post(url + "/dashboard/login", headers={"x-api-key": admin} if admin else {}, timeout=10)
    except httpx.HTTPError as failure:
        print(f"gemini-proxy: no proxy answers at {url} ({type(failure).__name__})", file=sys.stderr)
        return 1
    if answer.status_code != 200:
        print(f"gemini-proxy: {url} refused the dashboard login ({answer.status_code}: {answer.text[:200]})",
              file=sys.stderr)
        return 1
    print(url + answer.json()["url"])
    return 0
