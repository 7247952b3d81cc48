"""The Quart app: routes, authentication, error shapes, and the access log. Run it with
``hypercorn service.app:app`` (see hypercorn.toml)."""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import re
import sys
import time
import uuid
from typing import Any

import httpx
from quart import Quart, Response, g, request
from werkzeug.exceptions import HTTPException

import translator
from translator import AnthropicError, Spec

from . import exposure, sse, streaming, upstream
from .lifecycle import Lifecycle
from .config import Settings, load_settings, media_limits
from .logs import access_log, configure_logging

log = logging.getLogger("proxy")
JSON = "application/json"


def _new_id(prefix: str) -> str:
    return prefix + uuid.uuid4().hex


def _error_response(error: AnthropicError, request_id: str) -> Response:
    response = Response(json.dumps(error.body(request_id)), status=error.status, content_type=JSON)
    if error.retry_after is not None:
        response.headers["retry-after"] = str(max(1, round(error.retry_after)))
    return response


# A lone surrogate can only come from a \uD800-\uDFFF escape or CESU-8 bytes; only then is
# the body checked by encoding it again.
_MAYBE_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")


class _NotJSONNumber(ValueError):
    pass


def _not_json(constant: str) -> Any:
    raise _NotJSONNumber(constant)


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _NotJSONNumber(text)
    return value


def _bad_value_path(value: Any, path: str = "") -> str:
    """Where the first non-finite number or lone surrogate sits (``messages.0.content``)."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            return where or "(body)"
        if isinstance(item, str):
            try:
                item.encode()
            except UnicodeEncodeError:
                return where or "(body)"
        elif isinstance(item, dict):
            for key, inner in item.items():
                try:
                    key.encode()
                except UnicodeEncodeError:
                    return where or "(body)"
                stack.append((inner, f"{where}.{key}" if where else key))
        elif isinstance(item, list):
            stack.extend((inner, f"{where}.{i}" if where else str(i)) for i, inner in enumerate(item))
    return "(body)"


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return deepest


def _client_keys() -> list[str]:
    """What the client presented: ``x-api-key`` and/or ``Authorization: Bearer`` (Claude Code may send both)."""
    keys = [request.headers.get("x-api-key", "")]
    auth = request.headers.get("authorization", "")
    if auth[:7].lower() == "bearer ":
        keys.append(auth[7:].strip())
    return [k for k in keys if k]


def create_app(settings: Settings | None = None, spec: Spec | None = None) -> Quart:
    settings = settings or load_settings()
    spec = spec or translator.load_spec(settings.spec_dir or translator.DEFAULT_SPEC_DIR,
                                        big_model=settings.big_model, small_model=settings.small_model)
    configure_logging(settings)
    app = Quart(__name__)
    app.config["MAX_CONTENT_LENGTH"] = None  # read_body() enforces the limit, and drains what is over it
    tool_cache = translator.DeclarationCache(spec.tools["declaration_cache_size"])
    limits = media_limits(settings)
    app.exposure_checked = False
    lifecycle = Lifecycle()
    if not settings.gemini_api_key:
        log.warning("GEMINI_API_KEY is not set: requests for Gemini models will be answered with an error "
                    "until it is set in the environment or .env.")

    @app.before_serving
    async def open_clients() -> None:
        app.exposure_checked = exposure.warn_if_exposed(exposure.hosts_of(exposure.binds_from_argv(sys.argv)),
                                                        bool(settings.proxy_api_key))
        # HTTP/1.1 on purpose: closing an unfinished HTTP/1.1 response closes the connection.
        app.http = httpx.AsyncClient(timeout=httpx.Timeout(30.0))
        lifecycle.install()

    @app.after_serving
    async def close_clients() -> None:
        await lifecycle.close()
        await app.http.aclose()

    @app.before_request
    async def authenticate() -> Response | None:
        g.request_id = _new_id("req_")
        g.started = time.perf_counter()
        g.log = {}
        lifecycle.watch()
        if not app.exposure_checked:
            app.exposure_checked = True
            server = request.scope.get("server") or ("127.0.0.1", 0)
            exposure.warn_if_exposed([server[0]], bool(settings.proxy_api_key))
        if request.path == "/health" or not settings.proxy_api_key:
            return None
        expected = settings.proxy_api_key.encode()
        if any([hmac.compare_digest(k.encode(), expected) for k in _client_keys()]):
            return None
        return _error_response(AnthropicError(401, "authentication_error", "invalid x-api-key"), g.request_id)

    @app.after_request
    async def stamp(response: Response) -> Response:
        response.headers["request-id"] = g.request_id
        if not g.get("body_read"):  # an answer without reading the body (404, 405, ...): see read_body
            try:
                await read_body()
            except AnthropicError:
                pass
        if not g.log.get("stream") or response.status_code != 200:
            access_log(g.request_id, request.method, request.path, response.status_code,
                       time.perf_counter() - g.started, g.log)
        return response

    @app.errorhandler(AnthropicError)
    async def anthropic_error(error: AnthropicError) -> Response:
        return _error_response(error, g.get("request_id", _new_id("req_")))

    @app.errorhandler(HTTPException)
    async def http_error(error: HTTPException) -> Response:
        kind = {404: "not_found_error", 405: "invalid_request_error"}.get(error.code or 500, "api_error")
        status = error.code or 500
        return _error_response(AnthropicError(status, kind if status < 500 else "api_error",
                                              error.description or error.name), g.get("request_id", _new_id("req_")))

    @app.errorhandler(Exception)
    async def unexpected(error: Exception) -> Response:
        log.exception("unexpected error", extra={"request_id": g.get("request_id")})
        return _error_response(AnthropicError(500, "api_error", "Internal proxy error."),
                               g.get("request_id", _new_id("req_")))

    async def read_body() -> bytes:
        """The request body, refused past MAX_BODY_BYTES.

        A body over the limit is still read to its end (up to as much again, discarded) before the 413
        goes out: Hypercorn closes a connection whose request was not read in full, and closing a socket
        with unread input resets it, which can destroy the answer before the client reads it."""
        limit = settings.max_body_bytes
        too_large = AnthropicError(413, "request_too_large", f"Request exceeds the maximum size of {limit} bytes.")
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
            raise AnthropicError(408, "timeout_error", f"The request body did not arrive within "
                                 f"{settings.body_timeout_seconds:g} seconds.") from None
        if size > limit:
            raise too_large
        return b"".join(parts)

    async def json_body() -> Any:
        data = await read_body()
        try:
            body = json.loads(data, parse_constant=_not_json, parse_float=_finite)
            if _MAYBE_SURROGATE.search(data):
                json.dumps(body, ensure_ascii=False).encode()  # raises on a lone surrogate
        except (_NotJSONNumber, UnicodeEncodeError):
            # Rare: parse again leniently to name the field that holds the bad value.
            try:
                where = _bad_value_path(json.loads(data))
            except RecursionError:
                where = "(body)"
            raise AnthropicError(400, "invalid_request_error",
                                 f"{where}: not a finite JSON number or not valid Unicode text "
                                 "(NaN, Infinity, out-of-range numbers and lone surrogates are refused).") from None
        except RecursionError:
            raise AnthropicError(400, "invalid_request_error", "The request body is nested too deeply.") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise AnthropicError(400, "invalid_request_error", f"The request body is not valid JSON: {exc}") from None
        if settings.max_json_depth and _depth(body) > settings.max_json_depth:
            raise AnthropicError(400, "invalid_request_error",
                                 f"The request body is nested deeper than {settings.max_json_depth} levels.")
        return body

    async def translate(function: Any, body: Any) -> translator.UpstreamCall:
        """Translate on the event loop, or, for a large request, in a worker thread (without the
        shared declaration cache), so that one huge request does not hold up every other client."""
        large = (request.content_length or 0) > settings.offload_bytes
        try:
            if large:
                return await asyncio.to_thread(function, body, spec, tool_cache=None, limits=limits)
            return function(body, spec, tool_cache=tool_cache, limits=limits)
        except RecursionError:
            raise AnthropicError(400, "invalid_request_error", "The request is nested too deeply.") from None

    @app.route("/", methods=["HEAD", "GET"])
    async def root() -> Response:
        return Response("", status=200)

    @app.get("/health")
    async def health() -> Response:
        return Response(json.dumps({"status": "ok"}), content_type=JSON)

    @app.post("/v1/messages")
    async def messages() -> Response:
        body = await json_body()
        if isinstance(body, dict) and isinstance(body.get("model"), str):
            g.log["model"] = body["model"]
        call = await translate(translator.translate_request, body)
        g.log.update(target=call.route.target, stream=call.stream)  # model: logged above
        if call.tools.left_out:
            g.log["tools_left_out"] = list(call.tools.left_out)
        message_id = _new_id("msg_")
        if call.stream:
            return await _stream(call, message_id)
        message = await streaming.complete(call, spec, settings, _translators(call, message_id), lifecycle.live)
        g.log.update(usage=message["usage"], stop=message["stop_reason"])
        return Response(json.dumps(message, ensure_ascii=False), content_type=JSON)

    def _translators(call: translator.UpstreamCall, message_id: str) -> Any:
        estimate = int(request.headers.get("content-length") or 0) // 4
        return lambda: translator.StreamTranslator(call, spec, message_id, input_estimate=estimate)

    async def _stream(call: translator.UpstreamCall, message_id: str) -> Response:
        make = _translators(call, message_id)

        request_id, started, fields = g.request_id, g.started, g.log

        def done(outcome: dict) -> None:
            access_log(request_id, "POST", "/v1/messages", 200, time.perf_counter() - started, {**fields, **outcome})

        stream, head = await streaming.start(call, spec, settings, make)
        if head.error:
            raise head.error
        stream.on_done = done
        stream.request_id = request_id
        stream.live = lifecycle.live
        response = Response(stream.body(head), status=200, headers=dict(sse.HEADERS))
        response.timeout = None  # Quart would cut streams at RESPONSE_TIMEOUT (60 s)
        return response

    @app.post("/v1/messages/count_tokens")
    async def count_tokens() -> Response:
        body = await json_body()
        call = await translate(translator.translate_count_tokens, body)
        g.log.update(model=call.route.requested, target=call.route.target)
        tokens, source = await upstream.count_tokens(call, settings, app.http)
        g.log.update(count_source=source)
        return Response(json.dumps({"input_tokens": tokens}), content_type=JSON)

    @app.get("/v1/models")
    async def models() -> Response:
        entries = translator.model_list(spec.models)
        limit = request.args.get("limit", default=20, type=int) or 20
        after, before = request.args.get("after_id"), request.args.get("before_id")
        ids = [e["id"] for e in entries]
        limit = max(1, min(limit, 1000))
        start = ids.index(after) + 1 if after in ids else 0
        end = ids.index(before) if before in ids else len(entries)
        if before in ids and after not in ids:
            start = max(0, end - limit)  # the page just before the cursor
        page = entries[start:end][:limit]
        return Response(json.dumps({"data": page, "has_more": start + len(page) < end,
                                    "first_id": page[0]["id"] if page else None,
                                    "last_id": page[-1]["id"] if page else None}), content_type=JSON)

    @app.get("/v1/models/<path:model_id>")
    async def model(model_id: str) -> Response:
        for entry in translator.model_list(spec.models):
            if entry["id"] == model_id:
                return Response(json.dumps(entry), content_type=JSON)
        # Any name /v1/messages accepts (claude-sonnet-4-5, ...) is a model here too.
        return Response(json.dumps(translator.model_entry(translator.resolve_model(model_id, spec.models))),
                        content_type=JSON)

    return app


app = create_app()
