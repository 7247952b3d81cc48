"""Settings from the environment and ``.env`` (the environment wins).

python-dotenv comes with LiteLLM already; it parses ``.env`` the way users expect (quotes,
comments, ``export``), so the proxy does not carry its own parser.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Mapping

from dotenv import dotenv_values


def _float(value: str | None, default: float) -> float:
    return float(value) if value not in (None, "") else default


def _int(value: str | None, default: int) -> int:
    return int(value) if value not in (None, "") else default


@dataclass(frozen=True)
class Settings:
    gemini_api_key: str = ""
    gemini_api_base: str = ""
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
    offload_bytes: int = 1024 * 1024        # requests larger than this are translated in a worker thread
    upstream_retries: int = 2               # retries of 429/529 before any byte reached the client
    retry_max_wait_seconds: float = 30.0    # total backoff budget across those retries
    max_body_bytes: int = 32 * 1024 * 1024
    body_timeout_seconds: float = 120.0     # the whole request body must arrive within this
    max_json_depth: int = 0                 # 0: only the JSON parser's own bound (about 900 levels)
    max_media_per_request: int | None = None  # None: spec/content.yaml limits
    max_media_bytes: int | None = None
    thread_ttl_seconds: float = 300.0       # a message thread expires this long after its last stored reply
    thread_store_max_bytes: int = 64 * 1024 * 1024  # threads in process (oldest dropped first); also one thread's limit
    redis_url: str = field(default="", repr=False)  # threads shared by every replica (the URL may hold a password)
    log_level: str = "INFO"
    secrets: tuple[str, ...] = field(default=(), repr=False)

    def __repr__(self) -> str:  # never print keys
        shown = {f.name: getattr(self, f.name) for f in fields(self) if "key" not in f.name and f.repr}
        return f"Settings({shown})"


def _checked(settings: Settings) -> Settings:
    """Refuse settings that would make the proxy misbehave (a zero ping interval floods clients)."""
    positive = ("stream_grace_seconds", "ping_interval_seconds", "first_byte_timeout_seconds",
                "idle_timeout_seconds", "request_timeout_seconds", "write_timeout_seconds",
                "max_body_bytes", "body_timeout_seconds", "thread_ttl_seconds", "thread_store_max_bytes")
    for name in positive:
        if getattr(settings, name) <= 0:
            raise ValueError(f"{name.upper()} must be greater than 0 (got {getattr(settings, name)})")
    for name in ("upstream_retries", "retry_max_wait_seconds", "max_json_depth", "offload_bytes"):
        if getattr(settings, name) < 0:
            raise ValueError(f"{name.upper()} must not be negative (got {getattr(settings, name)})")
    return settings


def load_settings(environ: Mapping[str, str] | None = None, env_file: str | Path | None = ".env") -> Settings:
    values: dict[str, str | None] = {}
    if env_file and Path(env_file).is_file():
        values.update(dotenv_values(env_file))
    values.update(os.environ if environ is None else environ)
    get = values.get
    keys = (get("GEMINI_API_KEY") or "", get("ANTHROPIC_API_KEY") or "", get("PROXY_API_KEY") or "")
    return _checked(Settings(
        gemini_api_key=keys[0],
        gemini_api_base=(get("GEMINI_API_BASE") or "").rstrip("/"),
        anthropic_api_key=keys[1],
        proxy_api_key=keys[2],
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
        offload_bytes=_int(get("OFFLOAD_BYTES"), 1024 * 1024),
        upstream_retries=_int(get("UPSTREAM_RETRIES"), 2),
        retry_max_wait_seconds=_float(get("RETRY_MAX_WAIT_SECONDS"), 30.0),
        max_body_bytes=_int(get("MAX_BODY_BYTES"), 32 * 1024 * 1024),
        body_timeout_seconds=_float(get("BODY_TIMEOUT_SECONDS"), 120.0),
        max_json_depth=_int(get("MAX_JSON_DEPTH"), 0),
        max_media_per_request=int(get("MAX_MEDIA_PER_REQUEST")) if get("MAX_MEDIA_PER_REQUEST") else None,
        max_media_bytes=int(get("MAX_MEDIA_BYTES")) if get("MAX_MEDIA_BYTES") else None,
        thread_ttl_seconds=_float(get("THREAD_TTL_SECONDS"), 300.0),
        thread_store_max_bytes=_int(get("THREAD_STORE_MAX_BYTES"), 64 * 1024 * 1024),
        redis_url=get("REDIS_URL") or "",
        log_level=(get("LOG_LEVEL") or "INFO").upper(),
        secrets=tuple(k for k in keys if len(k) >= 4),
    ))


def media_limits(settings: Settings) -> dict[str, int]:
    """The overrides of content.yaml's media limits that the environment asks for."""
    limits = {"media_per_request": settings.max_media_per_request, "media_bytes": settings.max_media_bytes}
    return {k: v for k, v in limits.items() if v is not None}
