"""The Quart app. Run it with ``hypercorn service.app:app`` (see hypercorn.toml).

``create_app`` builds a :class:`Proxy` (settings, tables, the caches and clients the handlers
share) and hangs the routes (routes.py), the hooks around every request (hooks.py) and the error
handlers (errors.py) on a Quart app."""
from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import Any

import httpx
from quart import Quart

import translator
from translator import Spec

from . import errors, exposure, hooks
from .config import Settings, load_settings, media_limits
from .lifecycle import Lifecycle
from .logs import configure_logging
from .routes import routes

log = logging.getLogger("proxy")


@dataclass
class Proxy:
    """What every handler shares, as ``current_app.proxy``."""

    settings: Settings
    spec: Spec
    tool_cache: translator.DeclarationCache
    limits: dict[str, int]
    lifecycle: Lifecycle
    http: Any = None                 # httpx.AsyncClient for countTokens, open while serving
    exposure_checked: bool = False


def load_tables(settings: Settings) -> Spec:
    return translator.load_spec(settings.spec_dir or translator.DEFAULT_SPEC_DIR, big_model=settings.big_model,
                                small_model=settings.small_model,
                                provider_prefixes=settings.provider_prefixes or None)


def create_app(settings: Settings | None = None, spec: Spec | None = None) -> Quart:
    settings = settings or load_settings()
    spec = spec or load_tables(settings)
    configure_logging(settings)
    app = Quart(__name__)
    app.config["MAX_CONTENT_LENGTH"] = None  # hooks.read_body() enforces the limit, and drains what is over it
    app.proxy = proxy = Proxy(settings, spec, translator.DeclarationCache(spec.tools.declaration_cache_size),
                              media_limits(settings), Lifecycle(spec.errors.own.shutting_down.error()))
    if not settings.gemini_api_key:
        log.warning("GEMINI_API_KEY is not set: requests for Gemini models will be answered with an error "
                    "until it is set in the environment or .env.")

    @app.before_serving
    async def open_clients() -> None:
        proxy.exposure_checked = exposure.warn_if_exposed(exposure.hosts_of(exposure.binds_from_argv(sys.argv)),
                                                          bool(settings.proxy_api_key))
        # HTTP/1.1 on purpose: closing an unfinished HTTP/1.1 response closes the connection.
        proxy.http = httpx.AsyncClient(timeout=httpx.Timeout(30.0))
        proxy.lifecycle.install()

    @app.after_serving
    async def close_clients() -> None:
        await proxy.lifecycle.close()
        await proxy.http.aclose()

    hooks.register(app)
    errors.register(app)
    app.register_blueprint(routes)
    return app


app = create_app()
