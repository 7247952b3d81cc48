"""``/dashboard``: usage and cost over time by key and by model, the cache hit rate, the pool's keys and their
rests, the models that answered (fallbacks), recent errors. Server-rendered HTML and SVG from the ledger and
the pool; nothing is loaded from elsewhere.

Only the admin opens it, and the admin key never goes into a URL that lasts: ``POST /dashboard/login`` with
the admin key answers ``{"url": "/dashboard/open/TOKEN"}``, a link that works once within two minutes and
sets a session cookie (HttpOnly, SameSite=Strict, 12 hours); ``gemini-proxy dashboard`` prints it. Tokens
and cookies are signed with a key derived from PROXY_API_KEY, so every worker accepts them; a link's
single use is remembered by the worker that took it."""
from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from html import escape
from typing import Any

from quart import Blueprint, Response, g, redirect, request
from werkzeug.wrappers import Response as WerkzeugResponse

import translator
from translator import AnthropicError

from ..current import current_app
from .dashboard_data import Usage, fold, model_prices, recent, seconds, summary
from .dashboard_svg import stacked_bars
from ..web.errors import JSON, own_errors

dashboard = Blueprint("dashboard", __name__)
COOKIE = "gemini_proxy_dashboard"
LINK_SECONDS, SESSION_SECONDS = 120, 12 * 3600
OPEN_PATHS = ("/dashboard", "/dashboard/open/")  # their own check (the cookie, the link), not the key hooks'
_PROCESS_SECRET = secrets.token_bytes(32)  # an open proxy (no PROXY_API_KEY): links work on this worker only
_used_links: dict[str, float] = {}


def own_auth(path: str) -> bool:
    return path == OPEN_PATHS[0] or path.startswith(OPEN_PATHS[1])


def _secret() -> bytes:
    admin = current_app.proxy.settings.proxy_api_key
    return hashlib.sha256(b"gemini-proxy dashboard\0" + admin.encode()).digest() if admin else _PROCESS_SECRET


def _signed(kind: str, lifetime: int) -> str:
    payload = f"{kind}.{int(time.time()) + lifetime}.{secrets.token_urlsafe(12)}"
    return payload + "." + hmac.new(_secret(), payload.encode(), hashlib.sha256).hexdigest()


def _valid(token: str, kind: str) -> bool:
    payload, _, mac = token.rpartition(".")
    parts = payload.split(".")
    expected = hmac.new(_secret(), payload.encode(), hashlib.sha256).hexdigest()
    return (len(parts) == 3 and parts[0] == kind and parts[1].isdigit() and int(parts[1]) > time.time()
            and hmac.compare_digest(mac, expected))


def _unauthorized() -> Response:
    return Response("<!doctype html><title>401</title><p>Open the dashboard through a link from "
                    "<code>gemini-proxy dashboard</code> (or <code>POST /dashboard/login</code> with the admin key).",
                    status=401, content_type="text/html; charset=utf-8")


@dashboard.post("/dashboard/login")
async def login() -> Response:
    client = g.get("client")
    if client is None or not client.admin:
        raise own_errors().dashboard_admin_only.error()
    return Response(f'{{"url": "/dashboard/open/{_signed("link", LINK_SECONDS)}"}}', content_type=JSON)


@dashboard.get("/dashboard/open/<token>")
async def open_link(token: str) -> Response | WerkzeugResponse:  # quart.redirect's type is Werkzeug's
    now = time.time()
    for used, until in list(_used_links.items()):
        if until < now:
            del _used_links[used]
    if not _valid(token, "link") or token in _used_links:
        return _unauthorized()
    _used_links[token] = now + LINK_SECONDS
    response = redirect("/dashboard", 303)
    response.set_cookie(COOKIE, _signed("session", SESSION_SECONDS), max_age=SESSION_SECONDS, path="/dashboard",
                        httponly=True, samesite="Strict", secure=request.scheme == "https")
    return response


@dashboard.get("/dashboard")
async def page() -> Response:
    if not _valid(request.cookies.get(COOKIE, ""), "session"):
        return _unauthorized()
    proxy = current_app.proxy
    try:
        since = seconds(request.args.get("since", "7d"))
    except ValueError:
        since = seconds("7d")
    width = 86400 if since > 2 * 86400 else 3600
    now = time.time()
    body = ["<h1>gemini-proxy</h1>", f"<p>The last {since // 3600} hours, in UTC "
            f"{'days' if width == 86400 else 'hours'}.</p>", await _pool_section(proxy)]
    if proxy.ledger is None:
        body.append("<p>The usage ledger is off (DATABASE_URL=off).</p>")
    else:
        rows = await summary(proxy.ledger, since, now, width)
        prices = model_prices(rows)
        body += [_usage_section(rows, prices, width, now, since), _recent_section(await recent(proxy.ledger, since, now),
                                                                                  proxy.spec.models)]
    html = ("<!doctype html><html><head><meta charset='utf-8'><title>gemini-proxy dashboard</title><style>"
            "body{font-family:sans-serif;margin:2em;max-width:60em}table{border-collapse:collapse;margin:1em 0}"
            "td,th{border:1px solid #ccc;padding:.2em .6em;text-align:right}td:first-child,th:first-child"
            "{text-align:left}</style></head><body>" + "".join(body) + "</body></html>")
    return Response(html, content_type="text/html; charset=utf-8",
                    headers={"cache-control": "no-store", "content-security-policy": "default-src 'none'; "
                             "style-src 'unsafe-inline'; img-src 'self'", "x-frame-options": "DENY"})


def _table(headers: tuple[str, ...], rows: list[tuple[Any, ...]], css_id: str) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table id='{css_id}'><tr>{head}</tr>{body}</table>"


def _usage_table(groups: list[Usage], title: str, css_id: str) -> str:
    rows = [(u.name, u.tokens["uncached_input_tokens"], u.tokens["cache_creation_input_tokens"],
             u.tokens["cache_read_input_tokens"], u.tokens["output_tokens"], f"{u.cache_hit_rate:.1%}",
             f"{u.cost_usd:.4f}") for u in groups]
    return _table((title, "input", "cache write", "cache read", "output", "cache hit", "cost USD"), rows, css_id)


def _usage_section(rows: list[dict[str, Any]], prices: dict, width: int, now: float, since: int) -> str:
    start = int((now - since) // width * width)
    buckets = list(range(start, int(now // width * width) + width, width))
    charts = []
    for group, label in (("model", "model"), ("api_key_id", "key")):
        tokens: dict[str, dict[int, float]] = {}
        cost: dict[str, dict[int, float]] = {}
        for row in rows:
            usage = Usage(str(row[group]))
            usage.add(row, prices.get(row["model"], {}))
            by_bucket = tokens.setdefault(usage.name, {})
            by_bucket[row["bucket"]] = by_bucket.get(row["bucket"], 0) + sum(usage.tokens.values())
            costs = cost.setdefault(usage.name, {})
            costs[row["bucket"]] = costs.get(row["bucket"], 0.0) + usage.cost_usd
        charts.append(f"<h3>Tokens by {label}</h3>" + stacked_bars(f"tokens by {label}", buckets, tokens, "tokens"))
        charts.append(f"<h3>Cost by {label}</h3>" + stacked_bars(f"cost by {label}", buckets, cost, "USD"))
    return ("<h2>Usage</h2>" + _usage_table(fold(rows, "api_key_id", prices), "key", "by-key")
            + _usage_table(fold(rows, "model", prices), "model", "by-model") + "".join(charts))


async def _pool_section(proxy: Any) -> str:
    state = await proxy.pool.state()
    rows = [(target, keys, resting) for target, (keys, resting) in sorted(state.items())]
    return ("<h2>Gemini keys</h2><p>Per model asked for since this worker started: the keys of its pool and how "
            f"many rest (after a 429 or a refusal).</p>{_table(('model', 'keys', 'resting'), rows, 'pool')}")


def _recent_section(found: dict[str, list[dict[str, Any]]], models: Any) -> str:
    routes = []
    for row in found["routes"]:
        try:
            primary = translator.resolve_model(row["model"], models).target
        except (AnthropicError, TypeError):
            primary = "?"
        answered = row["answered_by"].rsplit("@", 1)[0]
        routes.append((row["model"], answered, row["requests"], "fallback" if answered != primary else ""))
    errors = [(time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r["time_ms"] / 1000)), r["key_name"], r["model"] or "",
               r["status"]) for r in found["errors"]]
    return ("<h2>Models that answered</h2>" + _table(("asked for", "answered by", "requests", ""), routes, "routes")
            + "<h2>Recent errors</h2>" + _table(("time (UTC)", "key", "model", "status"), errors, "errors"))
