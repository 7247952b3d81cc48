"""Tables re-read without a restart: SIGHUP (``gemini-proxy reload``) makes each worker load ``spec/`` and the
model settings (BIG_MODEL, SMALL_MODEL, PROVIDER_PREFIXES, SPEC_DIR from the environment and .env) again.

The new tables are loaded and validated completely before anything changes; a broken edit keeps the tables
in use and logs why. The swap is one assignment of ``proxy.spec``: an answer in flight holds the tables it
started with (its own reference, taken when it began), so a stream crossing a reload ends as it began."""
from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import replace
from typing import Any

import translator
from translator import Spec

from .config import Settings, load_settings
from .engines import litellm_adapter

log = logging.getLogger("proxy")
MODEL_SETTINGS = ("big_model", "small_model", "provider_prefixes", "spec_dir")
_reload_baseline: list[Any] = []  # in a ``serve`` worker: the master's SIGHUP counter, and its value at spawn


def load_tables(settings: Settings) -> Spec:
    return translator.load_spec(settings.spec_dir or translator.DEFAULT_SPEC_DIR, big_model=settings.big_model,
                                small_model=settings.small_model,
                                provider_prefixes=settings.provider_prefixes or None)


def history_caches(settings: Settings) -> translator.TurnCache | None:
    """Both history caches sized by HISTORY_CACHE_MB (0: none): LiteLLM's converted contents, one per
    process (resized), and the memo of translated turns, one per loaded tables (returned)."""
    litellm_adapter.HISTORY.resize(settings.history_cache_mb << 20)
    return translator.TurnCache(settings.history_cache_mb << 20) if settings.history_cache_mb else None


def reload_tables(proxy: Any) -> bool:
    """Load the tables again and swap them in; on any failure keep those in use and log why."""
    try:
        fresh = load_settings()
        settings = replace(proxy.settings, **{name: getattr(fresh, name) for name in MODEL_SETTINGS})
        spec = load_tables(settings)
    except Exception as failure:  # noqa: BLE001 - whatever broke, the tables in use stay
        log.error("reload: the tables in use are kept, the new ones are not valid: %s", failure)
        return False
    proxy.settings, proxy.spec = settings, spec
    proxy.tool_cache = translator.DeclarationCache(spec.tools.declaration_cache_size)  # built by the old tables
    proxy.turn_cache = history_caches(settings)
    log.warning("reload: tables re-read from %s (%d models; BIG_MODEL %s, SMALL_MODEL %s)",
                settings.spec_dir or translator.DEFAULT_SPEC_DIR, len(spec.models.models),
                spec.models.target_name("BIG_MODEL"), spec.models.target_name("SMALL_MODEL"))
    return True


def note_reload_baseline(reloads_sent: Any) -> None:
    """In a ``serve`` worker, first thing: note the master's reload count (a shared integer it raises before
    each SIGHUP), so that a reload sent while this worker was starting is not lost."""
    _reload_baseline[:] = [reloads_sent, reloads_sent.value]


def install(proxy: Any) -> None:
    """In a worker, at start-up: SIGHUP reloads (``gemini-proxy serve`` passes its SIGHUP on to each worker)."""
    try:
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload_tables, proxy)
    except (ValueError, RuntimeError, NotImplementedError):
        return  # not the main thread (an embedded server, the tests' ProxyServer): reload_tables is called directly
    if _reload_baseline and _reload_baseline[0].value != _reload_baseline[1]:  # a SIGHUP came before the handler did
        reload_tables(proxy)
