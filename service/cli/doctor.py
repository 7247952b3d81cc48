"""``gemini-proxy doctor``: is everything the proxy needs there? Each Gemini key (a countTokens call, which
costs nothing), Redis and the database when configured, the tables; then the configuration in effect, without
secrets. The status is 1 when a check failed."""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import sys
from dataclasses import replace
from typing import Callable

import httpx

from ..config import GEMINI_API_BASE, Settings, credentials_problem, load_settings


def arguments(name: str, sub: argparse.ArgumentParser) -> None:
    sub.set_defaults(run=doctor)


def fingerprint(key: str) -> str:
    """How a key is named in the output: a hash prefix, never a part of the key."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:10]


def check_keys(settings: Settings, model: str) -> list[tuple[bool, str]]:
    base = settings.gemini_api_base or GEMINI_API_BASE
    body = {"contents": [{"role": "user", "parts": [{"text": "ping"}]}]}
    results = []
    for key in settings.gemini_api_keys:
        try:
            answer = httpx.post(f"{base}/models/{model}:countTokens", json=body, timeout=15,
                                headers={"x-goog-api-key": key})
            message = "" if answer.status_code == 200 else (answer.json().get("error") or {}).get("message", "")
            results.append((answer.status_code == 200, f"Gemini key {fingerprint(key)}: {answer.status_code} "
                                                       f"{message[:160]}".rstrip()))
        except (httpx.HTTPError, ValueError) as failure:
            results.append((False, f"Gemini key {fingerprint(key)}: {type(failure).__name__}: {failure}"))
    return results


async def _redis(url: str) -> str:
    import redis.asyncio as aioredis
    client = aioredis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    try:
        return str(await client.ping())
    finally:
        await client.aclose()


async def _database(settings: Settings) -> str:
    from ..teams.ledger import Ledger
    ledger = Ledger(replace(settings, ledger_flush_seconds=60))
    await ledger.start()
    await ledger.close()
    return ledger.shown


def _check(label: str, probe: Callable[[], str]) -> tuple[bool, str]:
    try:
        return True, f"{label}: {probe()}"
    except Exception as failure:  # noqa: BLE001 - every failure is a line of the report
        return False, f"{label}: {type(failure).__name__}: {str(failure)[:200]}"


def doctor(args: argparse.Namespace) -> int:
    try:
        settings = load_settings()
    except ValueError as invalid:
        print(f"FAIL settings: {invalid}")
        return 1
    from ..reload import load_tables
    checks = [_check("tables", lambda: f"{len(load_tables(settings).models.models)} models")]
    if checks[0][0]:
        big = load_tables(settings).models.target_name("BIG_MODEL").split(",")[0].removeprefix("gemini/")
        problem = credentials_problem(settings)
        checks += [(False, problem)] if problem else check_keys(settings, big)
    if settings.redis_url:
        checks.append(_check("Redis", lambda: asyncio.run(_redis(settings.redis_url))))
    if settings.database_url.lower() != "off":
        checks.append(_check("database", lambda: asyncio.run(_database(settings))))
    for ok, line in checks:
        print(("ok   " if ok else "FAIL ") + line)
    print(f"configuration: {settings!r}")
    return 0 if all(ok for ok, _ in checks) else 1
