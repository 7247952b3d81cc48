"""Who is asking: the admin key (``PROXY_API_KEY``) or a client key of ``PROXY_KEYS_FILE``.

The keys file holds SHA-256 hashes of the keys, never the keys (a plain ``key:`` is accepted for
local use, with a warning), each with the name that the ledger, the usage report and the metrics
show, and its limits. Presented keys are hashed and compared with every entry in constant time. The
file is looked at (one ``stat``) on every request and read again when it changed, so a key removed
from it stops working at once, without a restart; a file that became unreadable or invalid keeps
the keys last read, with an error in the log.

``gemini-proxy keys add NAME [--rpm N] [--tpm N] [--model PATTERN ...]`` (or ``python -m service.teams.keys add ...``)
creates a key: it
prints the new secret once and appends the entry with its hash to the file.
"""
from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
import sys
import tempfile
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import yaml

from translator import DEFAULT_SPEC_DIR, ErrorText, Route, SpecError

from ..config import Settings
from ..tables import read_checked

log = logging.getLogger("proxy.keys")
SCHEMA = DEFAULT_SPEC_DIR / "schemas" / "keys.schema.json"


@dataclass(frozen=True)
class Client:
    """A caller, by the name its key has in the keys file (``admin``: PROXY_API_KEY; ``anonymous``: no keys)."""

    name: str
    admin: bool = False
    rpm: int | None = None
    tpm: int | None = None
    models: tuple[str, ...] = ()
    service_tier: str | None = None   # the Gemini tier its requests ask for (flex: background work at half price)

    def check_model(self, route: Route, refusal: ErrorText) -> None:
        """Refuse a model outside the key's ``models`` (matched as the client names it, or as it resolves)
        with ``refusal`` (errors.yaml's model_not_allowed)."""
        names = (route.requested, route.target, route.gemini_name)
        if self.models and not any(fnmatchcase(name, pattern) for pattern in self.models for name in names):
            raise refusal.error(model=route.requested)


ADMIN = Client("admin", admin=True)
ANONYMOUS = Client("anonymous", admin=True)


def digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def read_keys(path: Path | str) -> list[tuple[bytes, Client]]:
    """The file's entries as (hash, client); a SpecError when it is not valid."""
    entries = read_checked(path, SCHEMA)["keys"] or []
    names = [entry["name"] for entry in entries]
    if len(set(names)) != len(names):
        raise SpecError(f"{path}: a name is used twice: {sorted({n for n in names if names.count(n) > 1})}")
    keys = []
    for entry in entries:
        if "key" in entry:
            log.warning("%s: the key %r is written in plain text: keep only its key_sha256 in the file "
                        "(python -m service.teams.keys add makes such entries)", path, entry["name"])
        hashed = bytes.fromhex(entry["key_sha256"]) if "key_sha256" in entry else digest(entry["key"])
        keys.append((hashed, Client(entry["name"], rpm=entry.get("rpm"), tpm=entry.get("tpm"),
                                    models=tuple(entry.get("models", ())), service_tier=entry.get("service_tier"))))
    return keys


def _signature(path: str) -> tuple[int, int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


class ClientKeys:
    """The keys a request may present, the keys file re-read whenever it changes."""

    def __init__(self, settings: Settings):
        self.admin = digest(settings.proxy_api_key) if settings.proxy_api_key else None
        self.path = settings.proxy_keys_file
        self.seen = _signature(self.path) if self.path else None
        self.clients = read_keys(self.path) if self.path else []

    @property
    def required(self) -> bool:
        return bool(self.admin or self.path)

    def _reload_if_changed(self) -> None:
        signature = _signature(self.path)
        if signature == self.seen:
            return
        self.seen = signature
        try:
            self.clients = read_keys(self.path)
        except SpecError as exc:
            log.error("the keys file is not valid; the keys read before stay in use: %s", exc)
            return
        log.info("%s read again: %d client keys", self.path, len(self.clients))

    def identify(self, presented: list[str]) -> Client | None:
        """The caller whose key is among ``presented``, or None. Every entry is compared (no early exit)."""
        if not self.required:
            return ANONYMOUS
        if self.path:
            self._reload_if_changed()
        found = None
        for key in presented:
            hashed = digest(key)
            if self.admin is not None and hmac.compare_digest(hashed, self.admin):
                found = found or ADMIN
            for entry, client in self.clients:
                if hmac.compare_digest(hashed, entry):
                    found = found or client
        return found


def new_entry(name: str, rpm: int | None, tpm: int | None, models: list[str]) -> tuple[str, dict[str, Any]]:
    """A new secret and the keys-file entry that names it by its hash."""
    secret = "sk-proxy-" + secrets.token_urlsafe(32)
    entry: dict[str, Any] = {"name": name, "key_sha256": digest(secret).hex()}
    entry.update((field, value) for field, value in (("rpm", rpm), ("tpm", tpm), ("models", models)) if value)
    return secret, entry


def _appended(text: str, entry: dict[str, Any]) -> str:
    """``text`` with ``entry`` added to its ``keys`` list: appended as text (comments kept) when the list is the
    file's last block, else the whole document written anew."""
    document = yaml.safe_load(text) if text.strip() else None
    document = document if isinstance(document, dict) else {}
    keys = list(document.get("keys") or [])
    if any(existing.get("name") == entry["name"] for existing in keys):
        raise SpecError(f"a key named {entry['name']!r} is already in the file")
    wanted = {**document, "keys": [*keys, entry]}
    found = re.search(r"(?m)^keys:[ \t]*\n(?:[ \t]*(?:#.*)?\n)*([ \t]*)- ", text)
    indent = found.group(1) if found else ""
    block = "".join(indent + line + "\n" for line in yaml.safe_dump([entry], sort_keys=False).splitlines())
    head = text if not text or text.endswith("\n") else text + "\n"
    candidate = head + ("" if "keys" in document else "keys:\n") + block
    try:
        if yaml.safe_load(candidate) == wanted:
            return candidate
    except yaml.YAMLError:
        pass
    return yaml.safe_dump(wanted, sort_keys=False)


def add_key(path: Path, name: str, rpm: int | None = None, tpm: int | None = None,
            models: list[str] | None = None) -> str:
    """Append a new key's entry to the file (created if missing, replaced atomically) and return the secret."""
    secret, entry = new_entry(name, rpm, tpm, models or [])
    replace_keys_file(path, _appended(path.read_text(encoding="utf-8") if path.exists() else "", entry))
    return secret


def revoke_key(path: Path, name: str) -> None:
    """Remove the key named ``name`` from the file (replaced atomically): it stops working at the next request."""
    document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    keys = list(document.get("keys") or [])
    kept = [entry for entry in keys if entry.get("name") != name]
    if len(kept) == len(keys):
        raise SpecError(f"no key named {name!r} in {path}")
    replace_keys_file(path, yaml.safe_dump({**document, "keys": kept}, sort_keys=False))


def replace_keys_file(path: Path, text: str) -> None:
    """Write the keys file anew in one step (the proxy never reads half a file), once ``text`` is valid."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o600
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        read_keys(temporary)  # what the proxy will read is valid
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def main(argv: list[str] | None = None) -> int:
    """``python -m service.teams.keys ...``: the same as ``gemini-proxy keys ...``."""
    from ..cli import main as cli
    return cli(["keys", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
