"""What happens around every request: ids, authentication, the request body, the access log."""
from __future__ import annotations

import asyncio
import time
from typing import Any

from quart import Response, g, request

import translator
from translator import AnthropicError

from ..current import ProxyApp, current_app
from . import cors, exposure
from ..teams import dashboard, usage
from .errors import error_response, new_id
from .logs import access_log


def client_keys() -> list[str]:
    """What the client presented: ``x-api-key`` and/or ``Authorization: Bearer`` (Claude Code may send both)."""
    keys = [request.headers.get("x-api-key", "")]
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        keys.append(auth[7:].strip())
    return [k for k in keys if k]


async def read_body() -> bytes:
    """The request body, refused past MAX_BODY_BYTES.

    A body over the limit is still read to its end (up to as much again, discarded) before the 413
    goes out: Hypercorn closes a connection whose request was not read in full, and closing a socket
    with unread input resets it, which can destroy the answer before the client reads it."""
    settings, own = current_app.proxy.settings, current_app.proxy.spec.errors.own
    limit = settings.max_body_bytes
    too_large = own.body_too_large.error(limit=limit)
    declared = request.content_length
    if declared is not None and declared > 2 * limit:
        raise too_large
    g.body_read = True
    parts: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(settings.body_timeout_seconds):
            async for chunk in request.body:
                size += len(chunk)
                if size <= limit:
                    parts.append(chunk)
                elif size > 2 * limit:
                    break
    except TimeoutError:
        raise own.body_timeout.error(seconds=f"{settings.body_timeout_seconds:g}") from None
    if size > limit:
        raise too_large
    return b"".join(parts)


async def json_body() -> Any:
    """The body as JSON; a large one is decoded in a worker thread (see ``OFFLOAD_BYTES``)."""
    data = await read_body()
    depth = current_app.proxy.settings.max_json_depth
    if len(data) > current_app.proxy.settings.offload_bytes:
        return await asyncio.to_thread(translator.decode_json, data, depth)
    return translator.decode_json(data, depth)


def _requested_model(data: bytes) -> str | None:
    """The ``model`` a refused message asked for, if its body is small enough to decode on the spot."""
    if not data or len(data) > current_app.proxy.settings.offload_bytes:
        return None
    try:
        model = translator.decode_json(data, current_app.proxy.settings.max_json_depth).get("model")
    except (AnthropicError, AttributeError):
        return None
    return model if isinstance(model, str) else None


def register(app: ProxyApp) -> None:
    app.before_request(begin)
    app.after_request(end)


async def begin() -> Response | None:
    """Ids and timing for the access log; then who is asking (a CORS preflight from an origin in
    CORS_ORIGINS carries no key: cors.py answers it), and, for a message, its key's rate limits."""
    proxy = current_app.proxy
    g.request_id = new_id("req_")
    g.started = time.perf_counter()
    g.log = {}
    proxy.lifecycle.watch()
    if not proxy.exposure_checked:
        proxy.exposure_checked = True
        server = request.scope.get("server") or ("127.0.0.1", 0)
        exposure.warn_if_exposed([server[0]], proxy.keys.required)
    if request.path in ("/health", "/ready") or cors.allowed_preflight():
        return None
    if request.method == "GET" and dashboard.own_auth(request.path):
        return None  # the dashboard's link and cookie (dashboard.py): a browser sends no API key
    g.client = proxy.keys.identify(client_keys())
    if g.client is None:
        return error_response(proxy.spec.errors.own.bad_api_key.error())
    g.log["key"] = g.client.name
    if request.method == "POST" and request.path == "/v1/messages":
        return await proxy.rate_limits.admit(g.client)
    return None


async def end(response: Response) -> Response:
    """The request id on every answer, an unread body drained, and the access-log line
    (streams write theirs when they end)."""
    response.headers["request-id"] = g.request_id
    if not g.get("body_read"):  # an answer without reading the body (404, 405, 429, ...): see read_body
        try:
            data = await read_body()
        except AnthropicError:
            data = b""
        if request.path == "/v1/messages" and "model" not in g.log:
            g.log["model"] = _requested_model(data)  # a rate-limited row keeps the model it asked for
    if not g.log.get("stream") or response.status_code != 200:
        seconds = time.perf_counter() - g.started
        access_log(g.request_id, request.method, request.path, response.status_code, seconds, g.log)
        if request.method == "POST" and request.path == "/v1/messages":
            usage.record(current_app.proxy, g.request_id, g.get("client"), response.status_code, seconds, g.log)
    return response
