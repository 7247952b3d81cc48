"""Settings from the environment and ``.env`` (the environment wins; ``ENV_FILE`` names another file, or
``off`` for none, which the tests use so that a developer's ``.env`` does not reach the proxies they start).

python-dotenv comes with LiteLLM already; it parses ``.env`` the way users expect (quotes,
comments, ``export``), so the proxy does not carry its own parser.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit
from typing import Mapping

from dotenv import dotenv_values

from .engines import vertex_settings


DEFAULT_DATABASE_URL = "sqlite:///proxy-usage.db"  # in the working directory


def _float(value: str | None, default: float) -> float:
    return float(value) if value not in (None, "") else default


def _int(value: str | None, default: int) -> int:
    return int(value) if value not in (None, "") else default


GEMINI_API_BASE = "https://generativelanguage.googleapis.com/v1beta"  # when GEMINI_API_BASE is not set


@dataclass(frozen=True)
class Settings:
    gemini_api_keys: tuple[str, ...] = field(default=(), repr=False)  # GEMINI_API_KEYS ∪ GEMINI_API_KEY
    gemini_api_base: str = ""
    vertexai_deployments: tuple[str, ...] = field(default=(), repr=False)  # service.engines.vertex.deployments
    vertexai_api_base: str = ""             # VERTEXAI_API_BASE: replaces Vertex's regional/global host
    vertexai_named: bool = False            # the environment names a Vertex credential (vertex_settings)
    anthropic_api_key: str = ""
    proxy_api_key: str = ""
    big_model: str = ""
    small_model: str = ""
    spec_dir: str = ""
    provider_prefixes: tuple[str, ...] = ()  # PROVIDER_PREFIXES; empty: models.yaml's list
    stream_grace_seconds: float = 10.0      # wait this long for Gemini's first content before committing a 200
    ping_interval_seconds: float = 10.0     # keep-alive ping while the upstream is silent
    first_byte_timeout_seconds: float = 60.0  # a silent upstream is a 504 after this, streamed or not
    idle_timeout_seconds: float = 120.0
    request_timeout_seconds: float = 600.0  # whole non-streaming call
    write_timeout_seconds: float = 60.0     # a stream whose client reads nothing for this long is ended
    offload_bytes: int = 256 * 1024         # requests larger than this are translated in a worker thread (service/offload.py)
    turn_cache_bytes: int = 32 * 1024 * 1024  # translated conversation turns kept for the next request (0: none)
    key_rest_seconds: float = 60.0          # a key's rest after a 429 that says no retryDelay
    rejected_key_rest_seconds: float = 600.0  # a key Gemini refused (401/403) while others in the pool work
    gemini_key_rpm: int = 0                 # per key, weighs the Router's choice (0: equal)
    gemini_key_tpm: int = 0
    upstream_retries: int = 2               # retries of overloads (errors.yaml retry_statuses) before any byte
    retry_max_wait_seconds: float = 30.0    # total backoff budget across those retries
    max_body_bytes: int = 32 * 1024 * 1024
    body_timeout_seconds: float = 120.0     # the whole request body must arrive within this
    max_json_depth: int = 0                 # 0: only the JSON parser's own bound (about 900 levels)
    max_media_per_request: int | None = None  # None: spec/content.yaml limits
    max_media_bytes: int | None = None
    thread_ttl_seconds: float = 300.0       # a message thread expires this long after its last stored reply
    thread_store_max_bytes: int = 64 * 1024 * 1024  # threads in process (oldest dropped first); also one thread's limit
    context_cache: str = "explicit"  # CONTEXT_CACHE: explicit, implicit or off (service/engines/context_cache.py)
    redis_url: str = field(default="", repr=False)  # pool rests and threads shared by replicas (may hold a password)
    log_level: str = "INFO"
    cors_origins: tuple[str, ...] = ()      # CORS_ORIGINS; empty: no CORS (browsers cannot read answers)
    proxy_keys_file: str = ""               # PROXY_KEYS_FILE: client keys (hashes), their limits and models
    database_url: str = field(default=DEFAULT_DATABASE_URL, repr=False)  # the usage ledger; "off": none
    ledger_queue_rows: int = 100_000        # rows waiting for the database, at most (then counted as lost)
    ledger_flush_seconds: float = 1.0       # rows are written in one batch this often (and at shutdown)
    batch_poll_seconds: float = 30.0        # how often each process asks Gemini about unfinished batches
    files_dir: str = "proxy-files"          # FILES_DIR: the bytes of /v1/files uploads
    files_max_bytes_per_key: int = 1 << 30  # FILES_MAX_BYTES_PER_KEY: what one client key may keep there
    metrics: bool = True                    # METRICS=off: no /metrics and no counting
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def __repr__(self) -> str:  # never print keys
        shown = {f.name: getattr(self, f.name) for f in fields(self) if "key" not in f.name and f.repr}
        return f"Settings({shown})"


_ORIGIN = re.compile(r"^https?://[a-z0-9.-]+(?::\d{1,5})?$|^https?://\[[0-9a-f:.]+\](?::\d{1,5})?$")


def _origins(value: str | None) -> tuple[str, ...]:
    """CORS_ORIGINS: web origins (``scheme://host[:port]``), comma- or space-separated. ``*`` is refused: it
    would let every web page a user of the proxy visits spend its key."""
    origins = tuple(o.lower().removesuffix("/") for o in (value or "").replace(",", " ").split())
    for origin in origins:
        if not _ORIGIN.match(origin):
            raise ValueError(f"CORS_ORIGINS: {origin!r} is not a web origin (scheme://host[:port], no path, no "
                             "wildcard: an open CORS would let any web page use the proxy)")
    return origins


def _checked(settings: Settings) -> Settings:
    """Refuse settings that would make the proxy misbehave (a zero ping interval floods clients)."""
    positive = ("stream_grace_seconds", "ping_interval_seconds", "first_byte_timeout_seconds",
                "idle_timeout_seconds", "request_timeout_seconds", "write_timeout_seconds", "key_rest_seconds",
                "rejected_key_rest_seconds", "max_body_bytes", "body_timeout_seconds", "thread_ttl_seconds",
                "thread_store_max_bytes", "ledger_queue_rows", "ledger_flush_seconds", "batch_poll_seconds",
                "files_max_bytes_per_key")
    for name in positive:
        if getattr(settings, name) <= 0:
            raise ValueError(f"{name.upper()} must be greater than 0 (got {getattr(settings, name)})")
    for name in ("upstream_retries", "retry_max_wait_seconds", "max_json_depth", "offload_bytes", "gemini_key_rpm",
                 "gemini_key_tpm", "turn_cache_bytes"):
        if getattr(settings, name) < 0:
            raise ValueError(f"{name.upper()} must not be negative (got {getattr(settings, name)})")
    return settings


def key_list(*values: str | None) -> tuple[str, ...]:
    """Keys from comma- or space-separated values, each once, in the order given."""
    keys = [key for value in values for key in (value or "").replace(",", " ").split()]
    return tuple(dict.fromkeys(keys))


def env_file_path(environ: Mapping[str, str] | None = None) -> str | None:
    """The settings file: ``ENV_FILE`` from ``environ`` or the process (``off``: none), else ``.env`` in the
    working directory."""
    name = (environ or {}).get("ENV_FILE", os.environ.get("ENV_FILE", ".env"))
    return None if name.lower() in ("", "off", "none") else name


class StartupFailed(RuntimeError):
    """The proxy cannot serve (no credential, a database it cannot open): the message is the one line shown."""


def vertex_configured(settings: Settings) -> bool:
    """Whether the settings name a Vertex AI credential and PROVIDER_PREFIXES lets vertex_ai/ in."""
    vertex_on = not settings.provider_prefixes or "vertex_ai/" in settings.provider_prefixes
    return settings.vertexai_named and vertex_on


def credentials_problem(settings: Settings) -> str | None:
    """Why the proxy cannot call Gemini with these settings, or None. The one place that knows the ways to
    give a Gemini credential: AI Studio keys, or a Vertex AI credential (unless PROVIDER_PREFIXES leaves
    vertex_ai/ out)."""
    if settings.gemini_api_keys or vertex_configured(settings):
        return None
    return ("no Gemini credential: set GEMINI_API_KEY (one Google AI Studio key) or GEMINI_API_KEYS (several, "
            "comma-separated) in the environment or in .env (ENV_FILE names another file), or a Vertex AI "
            "credential (GOOGLE_APPLICATION_CREDENTIALS, VERTEXAI_CREDENTIALS, VERTEXAI_PROJECT or VERTEXAI_API_KEY; "
            "README: Vertex AI)")


def load_settings(environ: Mapping[str, str] | None = None, env_file: str | Path | None = "") -> Settings:
    """Settings from ``environ`` (default: the process's) over ``env_file`` (default: :func:`env_file_path`;
    None: no file)."""
    values: dict[str, str | None] = {}
    if env_file == "":
        env_file = env_file_path(environ)
    if env_file and Path(env_file).is_file():
        values.update(dotenv_values(env_file))
    values.update(os.environ if environ is None else environ)
    get = values.get
    gemini = key_list(get("GEMINI_API_KEYS"), get("GEMINI_API_KEY"))
    keys = (*gemini, *vertex_settings.secrets(get), get("ANTHROPIC_API_KEY") or "", get("PROXY_API_KEY") or "")
    return _checked(Settings(
        gemini_api_keys=gemini,
        gemini_api_base=(get("GEMINI_API_BASE") or "").rstrip("/"),
        vertexai_deployments=vertex_settings.deployments(get),
        vertexai_api_base=(get("VERTEXAI_API_BASE") or "").rstrip("/"),
        vertexai_named=vertex_settings.has_credentials(get),
        anthropic_api_key=keys[-2],
        proxy_api_key=keys[-1],
        big_model=get("BIG_MODEL") or "",
        small_model=get("SMALL_MODEL") or "",
        spec_dir=get("SPEC_DIR") or "",
        provider_prefixes=tuple((get("PROVIDER_PREFIXES") or "").replace(",", " ").split()),
        stream_grace_seconds=_float(get("STREAM_GRACE_SECONDS"), 10.0),
        ping_interval_seconds=_float(get("PING_INTERVAL_SECONDS"), 10.0),
        first_byte_timeout_seconds=_float(get("FIRST_BYTE_TIMEOUT_SECONDS"), 60.0),
        idle_timeout_seconds=_float(get("IDLE_TIMEOUT_SECONDS"), 120.0),
        request_timeout_seconds=_float(get("REQUEST_TIMEOUT_SECONDS"), 600.0),
        write_timeout_seconds=_float(get("WRITE_TIMEOUT_SECONDS"), 60.0),
        offload_bytes=_int(get("OFFLOAD_BYTES"), 256 * 1024),
        turn_cache_bytes=_int(get("TURN_CACHE_BYTES"), 32 * 1024 * 1024),
        key_rest_seconds=_float(get("KEY_REST_SECONDS"), 60.0),
        rejected_key_rest_seconds=_float(get("REJECTED_KEY_REST_SECONDS"), 600.0),
        gemini_key_rpm=_int(get("GEMINI_KEY_RPM"), 0),
        gemini_key_tpm=_int(get("GEMINI_KEY_TPM"), 0),
        upstream_retries=_int(get("UPSTREAM_RETRIES"), 2),
        retry_max_wait_seconds=_float(get("RETRY_MAX_WAIT_SECONDS"), 30.0),
        max_body_bytes=_int(get("MAX_BODY_BYTES"), 32 * 1024 * 1024),
        body_timeout_seconds=_float(get("BODY_TIMEOUT_SECONDS"), 120.0),
        max_json_depth=_int(get("MAX_JSON_DEPTH"), 0),
        max_media_per_request=int(media_count) if (media_count := get("MAX_MEDIA_PER_REQUEST")) else None,
        max_media_bytes=int(media_bytes) if (media_bytes := get("MAX_MEDIA_BYTES")) else None,
        thread_ttl_seconds=_float(get("THREAD_TTL_SECONDS"), 300.0),
        thread_store_max_bytes=_int(get("THREAD_STORE_MAX_BYTES"), 64 * 1024 * 1024),
        redis_url=get("REDIS_URL") or "",
        context_cache=(get("CONTEXT_CACHE") or "explicit").strip().lower(),
        log_level=(get("LOG_LEVEL") or "INFO").upper(),
        cors_origins=_origins(get("CORS_ORIGINS")),
        proxy_keys_file=get("PROXY_KEYS_FILE") or "",
        database_url=get("DATABASE_URL") or DEFAULT_DATABASE_URL,
        ledger_queue_rows=_int(get("LEDGER_QUEUE_ROWS"), 100_000),
        ledger_flush_seconds=_float(get("LEDGER_FLUSH_SECONDS"), 1.0),
        batch_poll_seconds=_float(get("BATCH_POLL_SECONDS"), 30.0),
        files_dir=get("FILES_DIR") or "proxy-files",
        files_max_bytes_per_key=_int(get("FILES_MAX_BYTES_PER_KEY"), 1 << 30),
        metrics=(get("METRICS") or "on").lower() not in ("off", "false", "0", "no"),
        secrets=tuple(k for k in (*keys, *(urlsplit(get(name) or "").password or "" for name in
                                           ("REDIS_URL", "DATABASE_URL"))) if len(k) >= 4),
    ))


def media_limits(settings: Settings) -> dict[str, int]:
    """The overrides of content.yaml's media limits that the environment asks for."""
    limits = {"media_per_request": settings.max_media_per_request, "media_bytes": settings.max_media_bytes}
    return {k: v for k, v in limits.items() if v is not None}
