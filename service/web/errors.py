"""Every error the proxy answers, in Anthropic's shape: ``{"type": "error", "error": {...}, "request_id"}``."""
from __future__ import annotations

import math
import json
import logging
import uuid

from quart import Response, g
from werkzeug.exceptions import HTTPException

from translator import AnthropicError, OwnErrors

from ..current import ProxyApp, current_app

log = logging.getLogger("proxy")
JSON = "application/json"


def json_response(value: object) -> Response:
    """A 200 answer of JSON, written as the Anthropic API writes it (UTF-8, not ``\\u`` escapes)."""
    return Response(json.dumps(value, ensure_ascii=False), content_type=JSON)


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def error_response(error: AnthropicError, request_id: str | None = None) -> Response:
    request_id = request_id or g.get("request_id") or new_id("req_")
    response = Response(json.dumps(error.body(request_id)), status=error.status, content_type=JSON)
    if error.retry_after is not None:
        response.headers["retry-after"] = str(max(1, math.ceil(error.retry_after)))  # never too early
    if error.should_retry is False:   # errors.yaml's ``retry: false``: the Anthropic SDKs honour it
        response.headers["x-should-retry"] = "false"
    return response


def own_errors() -> OwnErrors:
    """errors.yaml's ``own`` errors, as the app serving this request loaded them."""
    return current_app.proxy.spec.errors.own


def register(app: ProxyApp) -> None:
    """The error handlers: the proxy's own errors, the framework's (404, 405, ...), and crashes, each
    shaped by errors.yaml (``framework``, ``own.internal``)."""

    @app.errorhandler(AnthropicError)
    async def anthropic_error(error: AnthropicError) -> Response:
        return error_response(error)

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        kinds = current_app.proxy.spec.errors.framework
        return error_response(AnthropicError(status, kinds.types.get(status, kinds.otherwise),
                                             error.description or error.name))

    @app.errorhandler(Exception)
    async def unexpected(error: Exception) -> Response:
        log.exception("unexpected error", extra={"request_id": g.get("request_id")})
        return error_response(current_app.proxy.spec.errors.own.internal.error())
