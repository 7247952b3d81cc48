"""A loud warning when the proxy listens beyond loopback without PROXY_API_KEY: it would be a
free relay for the owner's Gemini key."""
from __future__ import annotations

import ipaddress
import logging
import tomllib
from pathlib import Path
from typing import Iterable, Sequence

log = logging.getLogger("proxy")
WARNING = ("The proxy listens on %s without PROXY_API_KEY: anyone who reaches this address can use "
           "your Gemini key. Set PROXY_API_KEY, or bind to 127.0.0.1.")


def _host(bind: str) -> str:
    if bind.startswith(("unix:", "fd://")):
        return "127.0.0.1"
    host = bind.rsplit(":", 1)[0] if ":" in bind else bind
    return host.strip("[]") or "0.0.0.0"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def binds_from_argv(argv: Sequence[str]) -> list[str]:
    """The addresses a ``hypercorn`` command line binds (``-b``/``--bind``, or a ``--config`` file's)."""
    binds: list[str] = []
    config: str | None = None
    args = list(argv)
    for i, arg in enumerate(args[:-1]):
        if arg in ("-b", "--bind"):
            binds.append(args[i + 1])
        elif arg in ("-c", "--config"):
            config = args[i + 1]
    for arg in args:
        if arg.startswith("--bind="):
            binds.append(arg.split("=", 1)[1])
        elif arg.startswith("--config="):
            config = arg.split("=", 1)[1]
    if not binds and config and Path(config).is_file() and config.endswith(".toml"):
        value = tomllib.loads(Path(config).read_text()).get("bind", [])
        binds = [value] if isinstance(value, str) else list(value)
    return binds


def warn_if_exposed(hosts: Iterable[str], has_key: bool) -> bool:
    exposed = [h for h in hosts if not is_loopback(h)]
    if exposed and not has_key:
        log.warning(WARNING, ", ".join(sorted(set(exposed))))
        return True
    return False


def hosts_of(binds: Iterable[str]) -> list[str]:
    return [_host(b) for b in binds]
