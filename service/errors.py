"""Every error the proxy answers, in Anthropic's shape: ``{"type": "error", "error": {...}, "request_id"}``."""
from __future__ import annotations

import math
import json
import logging
import uuid

from quart import Quart, Response, g
from werkzeug.exceptions import HTTPException

from translator import AnthropicError

log = logging.getLogger("proxy")
JSON = "application/json"
# What the framework's own HTTP errors become (anything else of 5xx is an api_error).
HTTP_ERROR_TYPES = {404: "not_found_error", 405: "invalid_request_error"}


def new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def error_response(error: AnthropicError, request_id: str | None = None) -> Response:
    request_id = request_id or g.get("request_id") or new_id("req_")
    response = Response(json.dumps(error.body(request_id)), status=error.status, content_type=JSON)
    if error.retry_after is not None:
        response.headers["retry-after"] = str(max(1, math.ceil(error.retry_after)))  # never too early
    return response


def register(app: Quart) -> None:
    """The error handlers: the proxy's own errors, the framework's (404, 405, ...), and crashes."""

    @app.errorhandler(AnthropicError)
    async def anthropic_error(error: AnthropicError) -> Response:
        return error_response(error)

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        kind = HTTP_ERROR_TYPES.get(status, "api_error") if status < 500 else "api_error"
        return error_response(AnthropicError(status, kind, error.description or error.name))

    @app.errorhandler(Exception)
    async def unexpected(error: Exception) -> Response:
        log.exception("unexpected error", extra={"request_id": g.get("request_id")})
        return error_response(AnthropicError(500, "api_error", "Internal proxy error."))
