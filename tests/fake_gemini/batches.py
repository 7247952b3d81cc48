"""The fake Gemini's Batch API: ``POST models/{m}:batchGenerateContent`` with inlined requests (each validated as
generateContent validates it; one invalid request refuses the whole batch, as Gemini does), ``GET batches/{id}``
(an Operation whose ``metadata.state`` moves PENDING → RUNNING → ``batch_final_state`` over
``batch_polls_before_done`` + 1 reads, with ``response.inlinedResponses`` once succeeded), ``:cancel`` and
``DELETE``. Batches belong to the key that made them (another key gets 403); ``batch_limit_per_key`` unfinished
batches per key at most (then 429 RESOURCE_EXHAUSTED, Gemini's batch quota).

The answers are decided at creation: each inlined request takes the next queued spec (a spec with ``error``
becomes that request's ``error`` status in the output)."""
from __future__ import annotations

import json
import secrets
import time

from aiohttp import web

from .answers import prompt_token_count, with_structured_default
from .files import stamp
from .validation import Reject, model_info, normalize, validate_request

INLINE_LIMIT = 20 * 1000 * 1000
BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
OUTPUT_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"
FINAL = ("BATCH_STATE_SUCCEEDED", "BATCH_STATE_FAILED", "BATCH_STATE_CANCELLED", "BATCH_STATE_EXPIRED")


class BatchMixin:
    """Mixed into FakeGemini: ``gemini_batches`` (id → batch, with its owner key and answers)."""

    def reset_batches(self) -> None:
        self.gemini_batches: dict[str, dict] = {}
        self.batch_polls_before_done = 1
        self.batch_final_state = "BATCH_STATE_SUCCEEDED"
        self.batch_limit_per_key: int | None = None

    def add_batch_routes(self, app: web.Application) -> None:
        app.router.add_post(r"/{version:v1beta|v1alpha|v1}/models/{model}:batchGenerateContent", self._batch_create)
        app.router.add_get(r"/{version:v1beta|v1alpha|v1}/batches/{id}", self._batch_get)
        app.router.add_post(r"/{version:v1beta|v1alpha|v1}/batches/{id}:cancel", self._batch_cancel)
        app.router.add_delete(r"/{version:v1beta|v1alpha|v1}/batches/{id}", self._batch_delete)

    async def _batch_create(self, request: web.Request) -> web.Response:
        model = request.match_info["model"]
        rec = self._new_record(request, model, "batchGenerateContent")
        try:
            key = self._known_key(request)
            raw = await request.read()
            if len(raw) > INLINE_LIMIT:
                raise Reject(f"Request payload size exceeds the limit: {INLINE_LIMIT} bytes.")
            rec["body"] = body = json.loads(raw)
            rec["normalized"] = body = normalize(body)
            items = self._batch_items(body, key, model)
            unfinished = [b for b in self.gemini_batches.values() if b["key"] == key and b["state"] not in FINAL]
            if self.batch_limit_per_key is not None and len(unfinished) >= self.batch_limit_per_key:
                raise Reject("You have reached the maximum number of concurrent batch jobs for this project.", 429,
                             "RESOURCE_EXHAUSTED")
            batch_id = secrets.token_hex(8)
            self.gemini_batches[batch_id] = {
                "key": key, "model": model, "display": body["batch"].get("displayName"), "created": time.time(),
                "state": "BATCH_STATE_PENDING", "reads": 0,
                "responses": [self._batch_answer(req, meta, model) for req, meta in items]}
            rec["status"] = 200
            return web.json_response(self._operation(batch_id))
        except Reject as e:
            return self._error(rec, e.code, e.message, e.status)
        except ValueError:
            return self._error(rec, 400, "Invalid JSON payload received. Unexpected token.")
        finally:
            self._finish(rec)

    def _batch_items(self, body: dict, key: str, model: str) -> list[tuple[dict, dict | None]]:
        """The inlined requests, each validated as generateContent would (its path in the message)."""
        if set(body) != {"batch"} or not isinstance(body["batch"], dict):
            raise Reject("* BatchGenerateContentRequest.batch: batch is required (and nothing else).")
        batch = body["batch"]
        unknown = set(batch) - {"displayName", "inputConfig", "priority", "model"}
        if unknown:
            raise Reject(f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}" at \'batch\': '
                         "Cannot find field.")
        if not isinstance(batch.get("displayName"), str) or not batch["displayName"]:
            raise Reject("* GenerateContentBatch.display_name: display_name is required")
        inlined = ((batch.get("inputConfig") or {}).get("requests") or {}).get("requests")
        if not isinstance(inlined, list) or not inlined:
            raise Reject("* GenerateContentBatch.input_config: requests (or file_name) must not be empty")
        mi, items = model_info(model), []
        for number, item in enumerate(inlined):
            where = f"batch.input_config.requests.requests[{number}]"
            if not isinstance(item, dict) or set(item) - {"request", "metadata"} or "request" not in item:
                raise Reject(f"* {where}: an InlinedRequest has a request and optional metadata only.")
            try:
                validate_request(item["request"], mi)
                self._check_signatures(item["request"], mi, {})
                self.check_file_data(item["request"], key)
            except Reject as e:
                raise Reject(f"{where}.request: {e.message}", e.code, e.status, e.details) from None
            items.append((item["request"], item.get("metadata")))
        return items

    def _batch_answer(self, req: dict, metadata: dict | None, model: str) -> dict:
        spec = self._pop_spec("generateContent")
        spec = spec({"normalized": req, "model": model, "action": "batchGenerateContent"}) if callable(spec) else spec
        spec = with_structured_default(spec if spec is not None else self.default_spec or {}, req)
        answer: dict = {"metadata": metadata} if metadata is not None else {}
        if "error" in spec:
            err = spec["error"]
            return {**answer, "error": {"code": int(err.get("code", 500)), "message": err.get("message", "fake error"),
                                        "status": err.get("status", "INTERNAL")}}
        return {**answer, "response": self._build(spec, model, prompt_token_count(req))}

    def _operation(self, batch_id: str) -> dict:
        batch = self.gemini_batches[batch_id]
        done = batch["state"] in FINAL
        succeeded = batch["state"] == "BATCH_STATE_SUCCEEDED"
        count = len(batch["responses"])
        stats = {"requestCount": str(count), "pendingRequestCount": str(0 if done else count)}
        if succeeded:
            failed = sum("error" in r for r in batch["responses"])
            stats.update(successfulRequestCount=str(count - failed), failedRequestCount=str(failed))
        metadata = {"@type": BATCH_TYPE, "model": f"models/{batch['model']}", "displayName": batch["display"],
                    "createTime": stamp(batch["created"]), "updateTime": stamp(time.time()), "batchStats": stats,
                    "state": batch["state"], "name": f"batches/{batch_id}"}
        operation: dict = {"name": f"batches/{batch_id}", "metadata": metadata}
        if done:
            operation["done"] = True
        if succeeded:
            operation["response"] = {"@type": OUTPUT_TYPE,
                                     "inlinedResponses": {"inlinedResponses": batch["responses"]}}
        return operation

    def _owned_batch(self, request: web.Request) -> str:
        key = self._known_key(request)
        batch_id = request.match_info["id"]
        batch = self.gemini_batches.get(batch_id)
        if batch is None:
            raise Reject(f"Requested entity was not found: batches/{batch_id}.", 404, "NOT_FOUND")
        if batch["key"] != key:
            raise Reject(f"You do not have permission to access the batch batches/{batch_id}.", 403,
                         "PERMISSION_DENIED")
        return batch_id

    async def _batch_call(self, request: web.Request, action: str, step) -> web.Response:
        rec = self._new_record(request, None, action)
        try:
            answer = step(self._owned_batch(request))
            rec["status"] = 200
            return web.json_response(answer)
        except Reject as e:
            return self._error(rec, e.code, e.message, e.status)
        finally:
            self._finish(rec)

    async def _batch_get(self, request: web.Request) -> web.Response:
        def read(batch_id: str) -> dict:
            batch = self.gemini_batches[batch_id]
            if batch["state"] not in FINAL:
                batch["reads"] += 1
                batch["state"] = ("BATCH_STATE_RUNNING" if batch["reads"] <= self.batch_polls_before_done
                                  else self.batch_final_state)
            return self._operation(batch_id)
        return await self._batch_call(request, "getBatch", read)

    async def _batch_cancel(self, request: web.Request) -> web.Response:
        def cancel(batch_id: str) -> dict:
            batch = self.gemini_batches[batch_id]
            if batch["state"] not in FINAL:
                batch["state"] = "BATCH_STATE_CANCELLED"
            return {}
        return await self._batch_call(request, "cancelBatch", cancel)

    async def _batch_delete(self, request: web.Request) -> web.Response:
        return await self._batch_call(request, "deleteBatch", lambda batch_id: self.gemini_batches.pop(batch_id) and {})
