"""``gemini-proxy doctor``: is everything the proxy needs there? Each Gemini key (a countTokens call, which
costs nothing), each Vertex AI credential (an access token, then countTokens), Redis and the database when configured, the tables; then the configuration in effect, without
secrets. The status is 1 when a check failed."""
from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
from dataclasses import replace
from typing import Callable

import httpx

from ..config import GEMINI_API_BASE, Settings, credentials_problem, load_settings, vertex_configured


def arguments(name: str, sub: argparse.ArgumentParser) -> None:
    sub.set_defaults(run=doctor)


def fingerprint(key: str) -> str:
    """How a key is named in the output: a hash prefix, never a part of the key."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:10]


PING = {"contents": [{"role": "user", "parts": [{"text": "ping"}]}]}


def _error_message(answer: httpx.Response) -> str:
    """The upstream's error message (Google's ``{"error": {"message"}}``, sometimes in a list), else its text."""
    try:
        body = answer.json()
    except ValueError:
        return answer.text[:160]
    body = body[0] if isinstance(body, list) and body else body
    error = body.get("error") if isinstance(body, dict) else None
    return str(error.get("message", "") if isinstance(error, dict) else body)[:160]


def _count_tokens(label: str, url: str, headers: dict[str, str], secrets: tuple[str, ...]) -> tuple[bool, str]:
    """One countTokens call (it costs nothing): the line of a credential that works or the upstream's refusal."""
    try:
        answer = httpx.post(url, json=PING, timeout=15, headers=headers)
        message = "" if answer.status_code == 200 else _error_message(answer)
        line = f"{label}: {answer.status_code} {message}".rstrip()
    except (httpx.HTTPError, ValueError) as failure:
        answer, line = None, f"{label}: {type(failure).__name__}: {failure}"
    for secret in secrets:
        line = line.replace(secret, "[redacted]")
    return answer is not None and answer.status_code == 200, line


def check_keys(settings: Settings, model: str) -> list[tuple[bool, str]]:
    base = settings.gemini_api_base or GEMINI_API_BASE
    return [_count_tokens(f"Gemini key {fingerprint(key)}", f"{base}/models/{model}:countTokens",
                          {"x-goog-api-key": key}, settings.secrets) for key in settings.gemini_api_keys]


def check_vertex(settings: Settings, model: str) -> list[tuple[bool, str]]:
    """Each Vertex AI deployment: an express key by a countTokens call; a service account's file (or
    Application Default Credentials) by an access token from its token_uri, then a countTokens call
    with it on the project's route. Named by file path or key fingerprint, never by a secret."""
    if not vertex_configured(settings):
        return []
    from ..engines.litellm_adapter import vertex_url
    from ..engines.vertex import TokenSource, VertexCredentialsError
    from ..engines.vertex_settings import DEFAULT_LOCATION
    base, results = settings.vertexai_api_base or None, []
    for descriptor in map(json.loads, settings.vertexai_deployments):
        if "api_key" in descriptor:
            results.append(_count_tokens(
                f"Vertex AI express key {fingerprint(descriptor['api_key'])}",
                vertex_url(model, "countTokens", None, DEFAULT_LOCATION, base),
                {"x-goog-api-key": descriptor["api_key"]}, settings.secrets))
            continue
        label = f"Vertex AI credentials {descriptor['credentials'] or '(application default)'}"
        source = TokenSource(descriptor["credentials"], descriptor["project"])
        try:
            token = asyncio.run(source.token())
        except VertexCredentialsError as refused:   # its message names the file and the token endpoint's answer
            results.append((False, str(refused)))
            continue
        except ConnectionError as unreachable:
            results.append((False, f"{label}: {unreachable}"))
            continue
        if not source.project:
            results.append((False, f"{label}: an access token, but no project: set VERTEXAI_PROJECT"))
            continue
        results.append(_count_tokens(
            f"{label}, project {source.project}, location {descriptor['location']}: access token ok; countTokens",
            vertex_url(model, "countTokens", source.project, descriptor["location"], base),
            {"Authorization": f"Bearer {token}"}, settings.secrets + (token,)))
    return results


def _model(chain: list[str], prefix: str) -> str:
    """The model a credential check names: the chain's first on the provider, else its first by name."""
    return next((t.removeprefix(prefix) for t in chain if t.startswith(prefix)), chain[0].split("/", 1)[-1])


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
        chain = load_tables(settings).models.target_name("BIG_MODEL").split(",")
        problem = credentials_problem(settings)
        checks += [(False, problem)] if problem else (check_keys(settings, _model(chain, "gemini/"))
                                                       + check_vertex(settings, _model(chain, "vertex_ai/")))
    if settings.redis_url:
        checks.append(_check("Redis", lambda: asyncio.run(_redis(settings.redis_url))))
    if settings.database_url.lower() != "off":
        checks.append(_check("database", lambda: asyncio.run(_database(settings))))
    for ok, line in checks:
        print(("ok   " if ok else "FAIL ") + line)
    print(f"configuration: {settings!r}")
    return 0 if all(ok for ok, _ in checks) else 1
