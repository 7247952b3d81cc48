"""The admin endpoints: Anthropic's usage and cost reports (Admin API shape) from the ledger, and ``/metrics``.

Only the admin key (``PROXY_API_KEY``) reads them; a client key gets a 403 ``permission_error``. A proxy
with no key at all is open, these endpoints too. The reports first write what this worker has queued,
so they include every request it answered (other workers' rows follow within LEDGER_FLUSH_SECONDS).
"""
from __future__ import annotations

import json
import logging
import time
from typing import Any

from quart import Blueprint, Response, g, request

import translator
from translator import ReportQuery

from ..current import current_app
from ..engines import litellm_adapter
from ..web.errors import JSON, own_errors
from .ledger import Ledger

log = logging.getLogger("proxy.report")
reports = Blueprint("reports", __name__)


def _admin_only() -> None:
    client = g.get("client")
    if client is None or not client.admin:
        raise own_errors().admin_only.error()


def _ledger() -> Ledger:
    _admin_only()
    ledger = current_app.proxy.ledger
    if ledger is None:
        raise own_errors().ledger_off.error()
    return ledger


async def _totals(ledger: Ledger, query: ReportQuery, groups: tuple[str, ...]) -> list[dict[str, Any]]:
    await ledger.flush()
    try:
        return await ledger.totals(query, groups)
    except Exception as exc:  # noqa: BLE001 - any database failure is the same answer
        log.error("usage report: the ledger's database failed (%s)", type(exc).__name__)
        raise own_errors().ledger_failed.error() from None


def _args() -> dict[str, list[str]]:
    return {name: request.args.getlist(name) for name in request.args}


def _json(value: Any) -> Response:
    return Response(json.dumps(value), content_type=JSON)


@reports.get("/v1/organizations/usage_report/messages")
async def usage_report() -> Response:
    ledger = _ledger()
    query = translator.report_query(_args(), time.time())
    return _json(translator.usage_page(query, await _totals(ledger, query, query.ledger_groups)))


@reports.get("/v1/organizations/cost_report")
async def cost_report() -> Response:
    ledger = _ledger()
    query = translator.report_query(_args(), time.time(), cost=True)
    totals = await _totals(ledger, query, ("model", "service_tier", "long_context"))
    proxy = current_app.proxy
    storage = await proxy.context_cache.storage(query.start, query.end)
    models = {str(row["model"]) for row in [*totals, *storage]}
    return _json(translator.cost_page(query, totals, proxy.spec.prices, litellm_adapter.prices(models), storage))


def warn_unpriced(spec: translator.Spec) -> list[str]:
    """Say at start-up which models.yaml models neither prices.yaml nor LiteLLM's map prices."""
    names = list(spec.models.models)
    known = litellm_adapter.prices({*names, *(f"gemini/{name}" for name in names)})
    unpriced = [m for m in translator.unpriced_models(spec.prices, names, known) if not known.get(f"gemini/{m}")]
    if unpriced:
        log.warning("no price for %s in spec/prices.yaml or LiteLLM's map: the cost report lists their usage "
                    "as unpriced", ", ".join(unpriced))
    return unpriced


@reports.get("/metrics")
async def metrics() -> Response:
    _admin_only()
    proxy = current_app.proxy
    if not proxy.metrics.enabled:
        raise proxy.spec.errors.own.metrics_off.error()
    body, content_type = await proxy.metrics.exposition(proxy.pool, len(proxy.ledger.rows) if proxy.ledger else 0)
    return Response(body, content_type=content_type)
