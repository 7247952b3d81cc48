"""The Quart app. Run it with ``hypercorn service.app:app`` (see hypercorn.toml).

``create_app`` builds a :class:`Proxy` (settings, tables, the caches and clients the handlers
share) and hangs the routes (routes.py), the hooks around every request (hooks.py) and the error
handlers (errors.py) on a Quart app."""
from __future__ import annotations

import contextlib
import logging
import sys
from dataclasses import dataclass
from typing import Any, AsyncGenerator, Mapping

import translator
from translator import Spec

from . import memory, offload, reload
from .batch import batches, files
from .config import Settings, StartupFailed, credentials_problem, load_settings, media_limits
from .current import ProxyApp
from .engines import answers, context_cache, litellm_adapter
from .engines.pool import Pool
from .engines.upstream import scrub
from .state import SharedState
from .state.rate_limits import RateLimits
from .state.thread_store import Threads
from .state.threads import thread_store
from .teams.dashboard import dashboard
from .teams.keys import ClientKeys
from .teams.ledger import Ledger
from .teams.metrics import Metrics
from .teams.report import reports, warn_unpriced
from .web import connections, cors, errors, exposure, hooks
from .web.endpoints import load_endpoints, unsupported_routes
from .web.lifecycle import Lifecycle
from .web.logs import configure_logging
from .web.routes import routes

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
    state: SharedState               # Redis (REDIS_URL) or the process: rests, rate limits, threads, caches
    keys: ClientKeys                 # the admin key and the client keys (PROXY_KEYS_FILE)
    rate_limits: RateLimits
    metrics: Metrics
    context_cache: context_cache.Registry   # live Gemini context caches (REDIS_URL shares them)
    http: Any = None                 # the aiohttp client every Gemini call goes through, open while serving
    threads: Threads | None = None   # message threads (in process, or Redis with REDIS_URL), while serving
    ledger: Ledger | None = None     # the usage ledger (DATABASE_URL), while serving; None when off
    exposure_checked: bool = False
    turn_cache: translator.TurnCache | None = None  # translated history turns (HISTORY_CACHE_MB), None when 0


def _set_up_process(settings: Settings) -> None:
    """What the worker process sets once, whatever app it serves: logging, sockets, LiteLLM's start-up
    check, the GIL switch interval."""
    configure_logging(settings)
    connections.install()  # closed connections release their descriptor at once (connections.py)
    litellm_adapter.check()
    offload.install()


def create_app(settings: Settings | None = None, spec: Spec | None = None) -> ProxyApp:
    settings = settings or load_settings()
    spec = spec or reload.load_tables(settings)
    _set_up_process(settings)
    app = ProxyApp(__name__)
    app.config["MAX_CONTENT_LENGTH"] = None  # hooks.read_body() enforces the limit, and drains what is over it
    endpoints = load_endpoints(settings.spec_dir or translator.DEFAULT_SPEC_DIR)
    state = SharedState(settings.redis_url)
    keys, metrics = ClientKeys(settings), Metrics(settings.metrics)
    app.proxy = proxy = Proxy(settings, spec, translator.DeclarationCache(spec.tools.declaration_cache_size),
                              media_limits(settings), Pool(settings, state), endpoints,
                              Lifecycle(spec.errors.own.shutting_down.error()), state, keys,
                              RateLimits(settings, state, refusal=spec.errors.own.over_rate_limit,
                                         on_refused=metrics.refused), metrics,
                              context_cache.registry(settings, state, list(spec.models.models)))
    proxy.turn_cache = reload.history_caches(settings)
    warn_unpriced(spec)

    @app.while_serving
    async def serve_with_clients() -> AsyncGenerator[None, None]:
        """Each resource is closed where it is opened (last opened, first closed), after serving."""
        if problem := credentials_problem(settings):
            raise StartupFailed(problem)  # not a proxy whose every answer is a retryable 500
        proxy.exposure_checked = exposure.warn_if_exposed(exposure.hosts_of(exposure.binds_from_argv(sys.argv)),
                                                          keys.required)
        async with contextlib.AsyncExitStack() as opened:
            opened.callback(metrics.close)
            proxy.http = answers.http_client(settings)
            opened.push_async_callback(proxy.http.close)
            proxy.threads = thread_store(settings, state)
            opened.push_async_callback(state.close)  # pool rests, rate limits and threads still being written
            if settings.database_url.lower() != "off":
                proxy.ledger = Ledger(settings, on_lost=metrics.lost_rows)
                try:
                    await proxy.ledger.start()
                except Exception as error:  # noqa: BLE001 - one line naming the cause, not a traceback
                    raise StartupFailed(f"the usage ledger (DATABASE_URL) cannot be opened: {type(error).__name__}: "
                                        f"{scrub(str(error), settings.secrets)[:300]}") from error
                opened.push_async_callback(proxy.ledger.close)
            proxy.lifecycle.install()
            opened.push_async_callback(proxy.lifecycle.close)  # first: the requests in flight end
            reload.install(proxy)
            memory.settle()   # start-up's objects frozen, young objects collected less often (memory.py)
            yield

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
