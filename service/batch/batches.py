"""``/v1/messages/batches``: the Message Batches API, as the Anthropic SDKs call it, on Gemini's Batch API
(service/batch/batch_jobs.py). Each client key sees its own batches; the admin key sees all. Gemini is polled
when a client asks about a batch, and by one background task per process every BATCH_POLL_SECONDS."""
from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import logging
import re
from typing import Any, AsyncGenerator

from quart import Blueprint, Response, g, request
from sqlalchemy import func, select, update

import translator

from ..current import ProxyApp, current_app
from .batch_jobs import BatchEngine, now_ms
from .batch_tables import batch_requests, message_batches
from ..web.errors import json_response, own_errors
from ..web.hooks import json_body

log = logging.getLogger("proxy.batches")
batches = Blueprint("batches", __name__)
CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_REQUESTS = 100_000
COUNTS = ("processing", "succeeded", "errored", "canceled", "expired")


def rfc3339(ms: int | None) -> str | None:
    if ms is None:
        return None
    moment = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def served(attribute: str, api: str) -> Any:
    """What serves ``api`` (an attribute of the app, set when there is a database), or the error saying why not."""
    found = getattr(current_app, attribute, None)
    if found is None:
        raise own_errors().needs_database.error(api=api)
    return found


def engine() -> BatchEngine:
    return served("batches", "Message Batches API")


def _requests(body: Any) -> list[tuple[str, dict[str, Any]]]:
    """The ``requests`` of a create body, checked as Anthropic checks them (params are checked per request)."""
    requests, own = body.get("requests") if isinstance(body, dict) else None, own_errors()
    if not isinstance(requests, list) or not requests:
        raise own.batch_requests_missing.error()
    if len(requests) > MAX_REQUESTS:
        raise own.batch_too_many_requests.error(limit=MAX_REQUESTS)
    found, seen = [], set()
    for number, item in enumerate(requests):
        custom_id = item.get("custom_id") if isinstance(item, dict) else None
        params = item.get("params") if isinstance(item, dict) else None
        if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
            raise own.batch_custom_id_invalid.error(number=number)
        if custom_id in seen:
            raise own.batch_custom_id_repeated.error(number=number, custom_id=custom_id)
        if not isinstance(params, dict):
            raise own.batch_params_missing.error(number=number)
        seen.add(custom_id)
        found.append((custom_id, params))
    return found


async def _row(batch_id: str) -> dict[str, Any]:
    """The batch's row, if the caller may see it (else a 404, as for a batch that does not exist)."""
    async with engine().engine.connect() as connection:
        row = (await connection.execute(select(message_batches).where(message_batches.c.id == batch_id))).mappings().first()
    if row is None or not (g.client.admin or row["key_name"] == g.client.name):
        raise own_errors().batch_not_found.error(batch_id=batch_id)
    return dict(row)


async def describe(row: dict[str, Any]) -> dict[str, Any]:
    """The MessageBatch object; a batch whose requests are all settled has ended (now, if not before)."""
    store = engine().engine
    async with store.connect() as connection:
        counted = await connection.execute(select(batch_requests.c.result_type, func.count()).where(
            batch_requests.c.batch_id == row["id"]).group_by(batch_requests.c.result_type))
        counts = {kind or "processing": number for kind, number in counted}
    if row["ended_ms"] is None and not counts.get("processing"):
        async with store.begin() as connection:
            await connection.execute(update(message_batches).where(message_batches.c.id == row["id"],
                                                                   message_batches.c.ended_ms.is_(None))
                                     .values(ended_ms=now_ms()))
        row = await _row(row["id"])
    ended = row["ended_ms"] is not None
    total = sum(counts.values())
    status = "ended" if ended else "canceling" if row["cancel_ms"] is not None else "in_progress"
    return {"id": row["id"], "type": "message_batch", "processing_status": status,
            # Anthropic counts every request as processing until the whole batch has ended.
            "request_counts": {kind: (counts.get(kind, 0) if ended else total if kind == "processing" else 0)
                               for kind in COUNTS},
            "ended_at": rfc3339(row["ended_ms"]), "created_at": rfc3339(row["created_ms"]),
            "expires_at": rfc3339(row["expires_ms"]), "archived_at": None,
            "cancel_initiated_at": rfc3339(row["cancel_ms"]),
            "results_url": f"{request.url_root.rstrip('/')}/v1/messages/batches/{row['id']}/results" if ended else None}


@batches.post("/v1/messages/batches")
async def create() -> Response:
    store = engine()
    requests = _requests(await json_body())
    g.log["requests"] = len(requests)
    batch_id = await store.create(g.client, requests)
    return json_response(await describe(await _row(batch_id)))


@batches.get("/v1/messages/batches/<batch_id>")
async def retrieve(batch_id: str) -> Response:
    row = await _row(batch_id)
    if row["ended_ms"] is None:
        await engine().refresh(batch_id)
    return json_response(await describe(await _row(batch_id)))


@batches.get("/v1/messages/batches")
async def listing() -> Response:
    statement = select(message_batches.c.id).order_by(message_batches.c.created_ms.desc(), message_batches.c.id)
    if not g.client.admin:
        statement = statement.where(message_batches.c.key_name == g.client.name)
    async with engine().engine.connect() as connection:
        ids = [{"id": row.id} for row in await connection.execute(statement)]
    page = translator.model_page(ids, request.args.get("limit", type=int), request.args.get("after_id"),
                                 request.args.get("before_id"), default_limit=20, max_limit=1000)
    page["data"] = [await describe(await _row(entry["id"])) for entry in page["data"]]
    return json_response(page)


@batches.post("/v1/messages/batches/<batch_id>/cancel")
async def cancel(batch_id: str) -> Response:
    store = engine()
    row = await _row(batch_id)
    if row["ended_ms"] is None and row["cancel_ms"] is None:
        async with store.engine.begin() as connection:
            await connection.execute(update(message_batches).where(message_batches.c.id == batch_id,
                                                                   message_batches.c.cancel_ms.is_(None))
                                     .values(cancel_ms=now_ms()))
        for job in await store.unfinished(batch_id):
            await store.cancel_gemini(job)
        await store.refresh(batch_id)
    return json_response(await describe(await _row(batch_id)))


@batches.delete("/v1/messages/batches/<batch_id>")
async def remove(batch_id: str) -> Response:
    row = await _row(batch_id)
    if row["ended_ms"] is None:
        raise own_errors().batch_in_progress.error(batch_id=batch_id)
    await engine().delete_gemini(batch_id)
    return json_response({"id": batch_id, "type": "message_batch_deleted"})


@batches.get("/v1/messages/batches/<batch_id>/results")
async def results(batch_id: str) -> Response:
    if (await describe(await _row(batch_id)))["processing_status"] != "ended":
        raise own_errors().batch_not_ended.error(batch_id=batch_id)
    async with engine().engine.connect() as connection:
        rows = await connection.execute(select(batch_requests.c.custom_id, batch_requests.c.result).where(
            batch_requests.c.batch_id == batch_id).order_by(batch_requests.c.position))
        lines = [f'{{"custom_id": {json.dumps(row.custom_id)}, "result": {row.result}}}\n' for row in rows]
    return Response("".join(lines), content_type="application/x-jsonl")


async def _poll_every_interval(app: ProxyApp, closing: asyncio.Event) -> None:
    """The background poll, so that results are ready before anyone asks."""
    while not closing.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(closing.wait(), app.proxy.settings.batch_poll_seconds)
        if not closing.is_set():
            try:
                await app.batches.refresh()
            except Exception:  # noqa: BLE001 - the next round tries again
                log.exception("polling Gemini batches failed")


def register(app: ProxyApp) -> None:
    """The routes, and (with a database) the engine and its background poll while the app serves."""
    app.register_blueprint(batches)

    @app.while_serving
    async def run_batches() -> AsyncGenerator[None, None]:
        """After the app's own resources open (the ledger's database): the engine and its poll."""
        proxy = app.proxy
        if proxy.ledger is None:
            yield
            return
        assert proxy.ledger.engine is not None  # the app's while_serving started the ledger before this one
        app.batches = BatchEngine(proxy, proxy.ledger.engine, getattr(app, "files", None))
        closing = asyncio.Event()
        task = asyncio.get_running_loop().create_task(_poll_every_interval(app, closing))
        yield
        closing.set()
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
