"""Requests from web pages: CORS for the origins named in ``CORS_ORIGINS``, with the policy of
``endpoints.yaml`` ``cors``; every other origin refused.

Off by default: no answer carries an Access-Control header, so no web page can read from the proxy
(an open CORS would let any page a user visits spend the proxy's key). A page can still *send* a
"simple" request without CORS (a POST with a text/plain body is one), and the proxy would run it on
the key, so a request whose ``Origin`` is not named is refused (403) before anything is translated;
clients that are not browsers send no ``Origin``. A preflight from a named origin is answered 204
before authentication (browsers send preflights without credentials), and every answer to that
origin says it may read it."""
from __future__ import annotations

from typing import Any, Mapping

from quart import Response, request


from ..current import ProxyApp, current_app
from .errors import error_response, own_errors


def _origin() -> str | None:
    """The request's Origin when CORS_ORIGINS names it."""
    origin = request.headers.get("origin", "").lower()
    return origin if origin and origin in current_app.proxy.settings.cors_origins else None


def allowed_preflight() -> bool:
    """A browser's preflight (OPTIONS with Origin and Access-Control-Request-Method) from a named origin."""
    return request.method == "OPTIONS" and "access-control-request-method" in request.headers \
        and _origin() is not None


def _policy() -> Mapping[str, Any]:
    return current_app.proxy.endpoints["cors"]


def _allowed_headers(policy: Mapping[str, Any]) -> list[str]:
    """The requested headers the policy allows (named, or under one of its prefixes), as asked."""
    asked = [h.strip().lower() for h in request.headers.get("access-control-request-headers", "").split(",")]
    prefixes = tuple(policy["request_header_prefixes"])
    return [h for h in asked if h and (h in policy["request_headers"] or h.startswith(prefixes))]


def _preflight_answer() -> Response:
    policy = _policy()
    response = Response("", status=204)
    response.headers["access-control-allow-methods"] = ", ".join(policy["methods"])
    headers = _allowed_headers(policy)
    if headers:
        response.headers["access-control-allow-headers"] = ", ".join(headers)
    response.headers["access-control-max-age"] = str(policy["max_age_seconds"])
    return response


async def check_origin() -> Response | None:
    """Refuse a request from a web page whose origin is not named; answer a named origin's preflight."""
    origin = request.headers.get("origin")
    if origin is None:
        return None
    if _origin() is None:
        return error_response(own_errors().origin_refused.error(origin=origin[:200]))
    return _preflight_answer() if allowed_preflight() else None


async def add_headers(response: Response) -> Response:
    """Allow a named origin to read the answer; ``Vary: Origin`` on every answer, since it depends on it."""
    response.vary.add("Origin")
    origin = _origin()
    if origin is not None:
        response.headers["access-control-allow-origin"] = origin
        response.headers["access-control-expose-headers"] = ", ".join(_policy()["expose_headers"])
    return response


def register(app: ProxyApp) -> None:
    """The origin check always; the CORS headers when CORS_ORIGINS names an origin. After
    ``hooks.register``: request ids and authentication come first."""
    app.before_request(check_origin)
    if app.proxy.settings.cors_origins:
        app.after_request(add_headers)
