"""Message Batches on Gemini's Batch API: creation (each request translated as /v1/messages translates it,
grouped into one Gemini batch per model, split under Gemini's inline size limit, on one key of the pool),
and the lazy polling that settles results.

State is in the ledger's database (tables of migration 0003), so a restart loses nothing and several
replicas share it: a finished Gemini batch is collected by the one replica whose conditional update
claimed it (a claim left by a replica that died is taken over after CLAIM_MS)."""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict
from typing import Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

import translator
from translator import AnthropicError

from ..engines import litellm_adapter
from .batch_results import book, errored, result_of, translated_call
from .batch_tables import batch_requests, gemini_batches, message_batches
from ..web.errors import new_id
from .gemini_api import GeminiApi, inlined_responses
from ..teams.keys import Client
from ..engines.pool import Deployment, key_tag

log = logging.getLogger("proxy.batches")
WINDOW_MS = 24 * 3600 * 1000          # Anthropic's and Gemini's: a batch not done in 24 h expires
CLAIM_MS = 120_000
INLINE_LIMIT = 20 * 1000 * 1000       # Gemini's limit on a batchGenerateContent request with inlined requests
FINAL = ("BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED")
DONE = "collected"


def now_ms() -> int:
    return int(time.time() * 1000)


class BatchEngine:
    """Creates, polls and settles batches; one per process (``current_app.batches``)."""

    def __init__(self, proxy: Any, engine: AsyncEngine, files: Any):
        self.proxy, self.engine, self.files = proxy, engine, files
        self.api = GeminiApi(proxy.http, proxy.settings, proxy.spec)
        self.inline_limit = INLINE_LIMIT

    def key_of(self, tag: str) -> str:
        """The Gemini key a stored key tag names (a key removed from the configuration: an error)."""
        for key in self.proxy.settings.gemini_api_keys:
            if key_tag(key) == tag:
                return key
        raise self.proxy.spec.errors.own.batch_key_gone.error()

    # ---------------------------------------------------------------- creation
    async def create(self, client: Client, requests: list[tuple[str, dict[str, Any]]]) -> str:
        batch_id, created = new_id("msgbatch_"), now_ms()
        rows: list[dict[str, Any]] = []
        groups: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        for position, (custom_id, params) in enumerate(requests):
            row: dict[str, Any] = {"batch_id": batch_id, "position": position, "custom_id": custom_id,
                                   "params": params, "gemini_batch": None, "gemini_index": None, "result_type": None,
                                   "result": None}
            rows.append(row)
            try:
                groups[self._target(client, params)].append(row)
            except AnthropicError as error:
                _settle(row, errored(error))
        jobs: list[dict[str, Any]] = []
        for target, group in groups.items():
            jobs += await self._submit(batch_id, client, target, group)
        async with self.engine.begin() as connection:
            await connection.execute(message_batches.insert(), [{"id": batch_id, "key_name": client.name,
                                                                 "created_ms": created,
                                                                 "expires_ms": created + WINDOW_MS}])
            if jobs:
                await connection.execute(gemini_batches.insert(), jobs)
            await connection.execute(batch_requests.insert(), [{**row, "params": json.dumps(row["params"])}
                                                              for row in rows])
        for row in rows:
            if row["result_type"] is not None:
                book(self.proxy, client.name, batch_id, row["custom_id"], row["params"], json.loads(row["result"]),
                     None)
        return batch_id

    def _target(self, client: Client, params: dict[str, Any]) -> str:
        """The Gemini model a request runs on; its errors are the request's."""
        if params.get("stream"):
            raise self.proxy.spec.errors.own.batch_stream.error()
        model = params.get("model")
        if not isinstance(model, str):
            raise self.proxy.spec.errors.own.batch_model_missing.error()
        route = translator.resolve_model(model, self.proxy.spec.models)
        client.check_model(route, self.proxy.spec.errors.own.model_not_allowed)
        if self.proxy.pool.providers.of(route.target).engine != "gemini":   # Gemini's Batch API: AI Studio only
            raise self.proxy.spec.errors.own.batch_not_gemini.error(model=params.get("model"))
        return route.target

    async def _submit(self, batch_id: str, client: Client, target: str,
                      rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows' Gemini batches, each on one key; a key at its batch quota (429) hands over to the next."""
        pool, jobs, pending = self.proxy.pool, list[dict[str, Any]](), rows
        built: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
        while pending:
            deployment = await pool.pick(target)
            if deployment is None:
                error = self.proxy.spec.errors.own.batch_quota.error(model=target)
                for row in pending:
                    _settle(row, errored(error))
                break
            if deployment.id not in built:
                built[deployment.id] = await self._build(client, pending, deployment)
            chunk = _first_chunk([pair for pair in built[deployment.id] if pair[0]["result_type"] is None
                                  and pair[0]["gemini_batch"] is None], self.inline_limit)
            if not chunk:
                break
            try:
                name = await self.api.create_batch(target.split("/", 1)[1], f"{batch_id}-{len(jobs)}",
                                                   [inlined for _, inlined in chunk], deployment.params["api_key"])
            except AnthropicError as error:
                if error.status == 429:
                    pool.rest(deployment, max(1.0, error.retry_after or 60.0), "batch quota")
                    continue
                for row, _ in chunk:
                    _settle(row, errored(error))
            else:
                jobs.append({"name": name, "batch_id": batch_id, "target": target,
                             "key_tag": deployment.id.rpartition("@")[2], "state": "BATCH_STATE_PENDING",
                             "claimed_ms": None})
                for index, (row, _) in enumerate(chunk):
                    row["gemini_batch"], row["gemini_index"] = name, index
            pending = [row for row in pending if row["result_type"] is None and row["gemini_batch"] is None]
        return jobs

    async def _build(self, client: Client, rows: list[dict[str, Any]],
                     deployment: Deployment) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """Each row's inlined request on ``deployment``'s key: its file_ids uploaded there, translated as
        /v1/messages translates it, the body LiteLLM builds (gemini_body); failures settle the row."""
        pairs = []
        for row in rows:
            try:
                if self.files is not None:
                    row["params"] = await self.files.resolved(row["params"], client, deployment.params["api_key"])
                body = await asyncio.to_thread(self._gemini_body, row["params"])  # CPU: off the event loop
            except AnthropicError as error:
                _settle(row, errored(error))
                continue
            pairs.append((row, {"request": body, "metadata": {"key": row["custom_id"]}}))
        return pairs

    def _gemini_body(self, params: dict[str, Any]) -> dict[str, Any]:
        call = translated_call(params, self.proxy.spec, self.proxy.limits)
        return litellm_adapter.gemini_body(call.kwargs)[2]

    # ---------------------------------------------------------------- polling
    async def refresh(self, batch_id: str | None = None) -> None:
        """Ask Gemini about the unfinished Gemini batches (of ``batch_id``, or all), collect the finished
        ones, and settle what expired."""
        statement = select(gemini_batches).where(gemini_batches.c.state != DONE)
        if batch_id is not None:
            statement = statement.where(gemini_batches.c.batch_id == batch_id)
        async with self.engine.connect() as connection:
            jobs = (await connection.execute(statement)).mappings().all()
        for job in jobs:
            try:
                await self._poll(dict(job))
            except AnthropicError as error:
                log.warning("polling Gemini batch %s failed: %s %s", job["name"], error.status, error.message)
        await self._expire(batch_id)

    async def _poll(self, job: dict[str, Any]) -> None:
        operation = await self.api.get_batch(job["name"], self.key_of(job["key_tag"]))
        state = str((operation.get("metadata") or {}).get("state") or "BATCH_STATE_PENDING")
        if state not in FINAL:
            if state != job["state"]:
                async with self.engine.begin() as connection:
                    await connection.execute(update(gemini_batches).where(
                        gemini_batches.c.name == job["name"], gemini_batches.c.state == job["state"]).values(state=state))
            return
        if await self._claim(job["name"]):
            await self._collect(job, operation, state)

    async def _claim(self, name: str) -> bool:
        """Whether this replica collects the Gemini batch (a conditional update only one replica wins)."""
        now = now_ms()
        async with self.engine.begin() as connection:
            claimed = await connection.execute(update(gemini_batches).where(
                gemini_batches.c.name == name, gemini_batches.c.state != DONE,
                or_(gemini_batches.c.claimed_ms.is_(None), gemini_batches.c.claimed_ms < now - CLAIM_MS))
                .values(claimed_ms=now))
        return claimed.rowcount == 1

    async def _collect(self, job: dict[str, Any], operation: dict[str, Any], state: str) -> None:
        """Every request of a finished Gemini batch settled: translated answers, errors, canceled, expired."""
        responses = inlined_responses(operation)
        by_key = {str((item.get("metadata") or {}).get("key")): item for item in responses}
        async with self.engine.connect() as connection:
            rows = (await connection.execute(select(batch_requests, message_batches.c.key_name).join(
                message_batches, message_batches.c.id == batch_requests.c.batch_id).where(
                batch_requests.c.gemini_batch == job["name"], batch_requests.c.result_type.is_(None)))).mappings().all()
        settled = []
        for row in rows:
            params = json.loads(row["params"])
            index = row["gemini_index"]
            item = by_key.get(row["custom_id"]) or (responses[index] if by_key.keys() == {"None"} and
                                                    index < len(responses) else None)
            result = await asyncio.to_thread(result_of, params, item, state, self.proxy)
            settled.append((row, params, result))
        async with self.engine.begin() as connection:
            for row, _, result in settled:
                await connection.execute(update(batch_requests).where(
                    batch_requests.c.batch_id == row["batch_id"], batch_requests.c.position == row["position"],
                    batch_requests.c.result_type.is_(None)).values(result_type=result["type"],
                                                                   result=json.dumps(result, ensure_ascii=False)))
            await connection.execute(update(gemini_batches).where(gemini_batches.c.name == job["name"])
                                     .values(state=DONE))
        for row, params, result in settled:
            book(self.proxy, row["key_name"], row["batch_id"], row["custom_id"], params, result,
                 f"{job['target']}@{job['key_tag']}")

    async def _expire(self, batch_id: str | None) -> None:
        """Batches past their 24 h: what Gemini has not answered is ``expired`` (its batch is cancelled)."""
        now = now_ms()
        statement = select(message_batches.c.id).where(message_batches.c.ended_ms.is_(None),
                                                       message_batches.c.expires_ms <= now)
        if batch_id is not None:
            statement = statement.where(message_batches.c.id == batch_id)
        async with self.engine.connect() as connection:
            expired = [row.id for row in await connection.execute(statement)]
            jobs = (await connection.execute(select(gemini_batches).where(
                gemini_batches.c.batch_id.in_(expired), gemini_batches.c.state != DONE))).mappings().all()
        for job in jobs:
            await self.cancel_gemini(dict(job))
        async with self.engine.begin() as connection:
            await connection.execute(update(batch_requests).where(
                batch_requests.c.batch_id.in_(expired), batch_requests.c.result_type.is_(None))
                .values(result_type="expired", result=json.dumps({"type": "expired"})))
            await connection.execute(update(gemini_batches).where(gemini_batches.c.batch_id.in_(expired))
                                     .values(state=DONE))

    async def unfinished(self, batch_id: str) -> list[dict[str, Any]]:
        async with self.engine.connect() as connection:
            return [dict(job) for job in (await connection.execute(select(gemini_batches).where(
                gemini_batches.c.batch_id == batch_id, gemini_batches.c.state != DONE))).mappings()]

    async def cancel_gemini(self, job: dict[str, Any]) -> None:
        try:
            await self.api.cancel_batch(job["name"], self.key_of(job["key_tag"]))
        except AnthropicError as error:
            log.warning("cancelling Gemini batch %s failed: %s %s", job["name"], error.status, error.message)

    async def delete_gemini(self, batch_id: str) -> None:
        """The batch's Gemini batches deleted at Gemini, then its rows (the caller checked it ended)."""
        async with self.engine.connect() as connection:
            jobs = (await connection.execute(select(gemini_batches).where(
                gemini_batches.c.batch_id == batch_id))).mappings().all()
        for job in jobs:
            try:
                await self.api.delete_batch(job["name"], self.key_of(job["key_tag"]))
            except AnthropicError as error:
                log.warning("deleting Gemini batch %s failed: %s %s", job["name"], error.status, error.message)
        async with self.engine.begin() as connection:
            for table, column in ((batch_requests, batch_requests.c.batch_id),
                                  (gemini_batches, gemini_batches.c.batch_id), (message_batches, message_batches.c.id)):
                await connection.execute(delete(table).where(column == batch_id))


def _settle(row: dict[str, Any], result: dict[str, Any]) -> None:
    row["result_type"], row["result"] = result["type"], json.dumps(result, ensure_ascii=False)


def _first_chunk(pairs: list[tuple[dict[str, Any], dict[str, Any]]],
                 limit: int) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The longest run of inlined requests from the start whose JSON stays under ``limit`` bytes (at least one:
    Gemini refuses a larger one itself, which is that request's error)."""
    size, chunk = 200, list[tuple[dict[str, Any], dict[str, Any]]]()
    for pair in pairs:
        size += len(json.dumps(pair[1], ensure_ascii=False).encode()) + 1
        if chunk and size > limit:
            break
        chunk.append(pair)
    return chunk
