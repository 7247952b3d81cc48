"""The Quart app. Run it with ``hypercorn service.app:app`` (see hypercorn.toml).

``create_app`` builds a :class:`Proxy` (settings, tables, the caches and clients the handlers
share) and hangs the routes (routes.py), the hooks around every request (hooks.py) and the error
handlers (errors.py) on a Quart app."""
from __future__ import annotations

import gc
import logging
import sys
from dataclasses import dataclass, field
from typing import Any, Mapping

from quart import Quart

import translator
from translator import Spec

from . import answers, batches, connections, cors, errors, exposure, files, hooks, litellm_adapter, reload
from .config import Settings, StartupFailed, credentials_problem, load_settings, media_limits
from .dashboard import dashboard
from .endpoints import load_endpoints, unsupported_routes
from .keys import ClientKeys
from .ledger import Ledger
from .lifecycle import Lifecycle
from .logs import configure_logging
from .metrics import Metrics
from .pool import Pool
from .rate_limits import RateLimits
from .report import reports
from .routes import routes
from .thread_store import Threads
from .upstream import scrub
from .threads import thread_store

log = logging.getLogger("proxy")


@dataclass
class Proxy:
    """What every handler shares, as ``current_app.proxy``."""

    settings: Settings
    spec: Spec
    tool_cache: translator.DeclarationCache
    limits: dict[str, int]
    pool: Pool
    endpoints: Mapping[str, Any]     # endpoints.yaml: endpoints not offered, CORS policy
    lifecycle: Lifecycle
    http: Any = None                 # the aiohttp client every Gemini call goes through, open while serving
    threads: Threads | None = None   # message threads (in process, or Redis with REDIS_URL), while serving
    keys: ClientKeys | None = None   # the admin key and the client keys (PROXY_KEYS_FILE)
    rate_limits: RateLimits | None = None
    metrics: Metrics | None = None
    ledger: Ledger | None = None     # the usage ledger (DATABASE_URL), while serving; None when off
    exposure_checked: bool = False


def create_app(settings: Settings | None = None, spec: Spec | None = None) -> Quart:
    settings = settings or load_settings()
    spec = spec or reload.load_tables(settings)
    configure_logging(settings)
    connections.install()  # closed connections release their descriptor at once (connections.py)
    litellm_adapter.check()
    app = Quart(__name__)
    app.config["MAX_CONTENT_LENGTH"] = None  # hooks.read_body() enforces the limit, and drains what is over it
    endpoints = load_endpoints(settings.spec_dir or translator.DEFAULT_SPEC_DIR)
    app.proxy = proxy = Proxy(settings, spec, translator.DeclarationCache(spec.tools.declaration_cache_size),
                              media_limits(settings), Pool(settings), endpoints,
                              Lifecycle(spec.errors.own.shutting_down.error()))
    proxy.keys, proxy.metrics = ClientKeys(settings), Metrics(settings.metrics)
    proxy.rate_limits = RateLimits(settings, on_refused=proxy.metrics.refused)

    @app.before_serving
    async def open_clients() -> None:
        if problem := credentials_problem(settings):
            raise StartupFailed(problem)  # not a proxy whose every answer is a retryable 500
        proxy.exposure_checked = exposure.warn_if_exposed(exposure.hosts_of(exposure.binds_from_argv(sys.argv)),
                                                          proxy.keys.required)
        proxy.http = answers.http_client(settings)
        proxy.threads = thread_store(settings)
        if settings.database_url.lower() != "off":
            proxy.ledger = Ledger(settings, on_lost=proxy.metrics.lost_rows)
            try:
                await proxy.ledger.start()
            except Exception as error:  # noqa: BLE001 - one line naming the cause, not a traceback
                raise StartupFailed(f"the usage ledger (DATABASE_URL) cannot be opened: "
                                    f"{type(error).__name__}: {scrub(str(error), settings.secrets)[:300]}") from error
        proxy.lifecycle.install()
        reload.install(proxy)
        # What exists now (LiteLLM's modules and tables: ~400,000 objects) lives as long as the process.
        # Out of the collector's reach, a full collection takes microseconds instead of ~220 ms of CPU,
        # which busy workers paid every few thousand requests (bench/README.md).
        gc.freeze()

    @app.after_serving
    async def close_clients() -> None:
        await proxy.lifecycle.close()
        await proxy.http.close()
        await proxy.pool.close()
        await proxy.threads.close()
        await proxy.rate_limits.close()
        if proxy.ledger is not None:
            await proxy.ledger.close()
        proxy.metrics.close()

    hooks.register(app)
    cors.register(app)
    errors.register(app)
    app.register_blueprint(routes)
    app.register_blueprint(reports)
    app.register_blueprint(dashboard)
    app.register_blueprint(unsupported_routes(endpoints))
    files.register(app)    # before batches: a batch's requests may name files
    batches.register(app)
    return app


app = create_app()
