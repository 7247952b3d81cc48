"""The fake's ``cachedContents``: explicit context caches, as strict as Gemini's.

``POST /v1beta/cachedContents`` (create), ``GET`` (list, the key's own), ``GET|PATCH|DELETE
/v1beta/cachedContents/{id}``. A cache belongs to the key that made it (another key gets 403), holds
at least the model's minimum (Gemini 3.x and 2.5 Pro 4,096 tokens, 2.x Flash 1,024, else 400 "Cached
content is too small"), and expires after its TTL (then 404, as for one that never was). A generate
call naming one (``cachedContent``) must use the cache's model and may not set systemInstruction,
tools or toolConfig; it is served as if the cache's parts came first, and its usage carries
``cachedContentTokenCount``. ``clock`` (seconds) can be replaced by tests to let caches expire.
"""
from __future__ import annotations

import json
import re
import secrets
import time
from datetime import datetime, timezone
from typing import Any, Callable

from aiohttp import web

from .answers import prompt_token_count
from .validation import Reject, model_info, normalize, validate_request

HEAD = ("systemInstruction", "tools", "toolConfig")
_TTL = re.compile(r"^(\d+)(?:\.\d+)?s$")


def minimum_tokens(model: str) -> int:
    return 1024 if model.startswith(("gemini-2.0-flash", "gemini-2.5-flash")) else 4096


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _not_found(name: str) -> Reject:
    return Reject(f"CachedContent not found (or permission denied): {name}", 404, "NOT_FOUND")


class Caches:
    """Every live cache, by name."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.caches: dict[str, dict[str, Any]] = {}

    def _ttl(self, body: dict[str, Any]) -> float:
        if "expireTime" in body:
            raise Reject("The fake takes ttl only (not expireTime).")
        match = _TTL.match(str(body.get("ttl", "3600s")))
        if not match:
            raise Reject(f"Invalid value at 'cached_content.ttl' (type.googleapis.com/google.protobuf.Duration), "
                         f"{body.get('ttl')!r}")
        return float(match.group(1))

    def shown(self, cache: dict[str, Any]) -> dict[str, Any]:
        return {"name": cache["name"], "model": f"models/{cache['model']}", "createTime": _stamp(cache["created"]),
                "updateTime": _stamp(cache["updated"]), "expireTime": _stamp(cache["expires"]),
                "usageMetadata": {"totalTokenCount": cache["tokens"]}}

    def get(self, name: str, key: str) -> dict[str, Any]:
        cache = self.caches.get(name)
        if cache is None or cache["expires"] <= self.clock():
            self.caches.pop(name, None)
            raise _not_found(name)
        if cache["key"] != key:
            raise Reject(f"CachedContent not found (or permission denied): {name}", 403, "PERMISSION_DENIED")
        return cache

    def model_of(self, body: dict[str, Any], key: str) -> str:
        """The cache's model, as the create request names it."""
        model = str(body.get("model", "")).removeprefix("models/")
        if not model:
            raise Reject("* CreateCachedContentRequest.cached_content.model: model is required")
        return model

    def too_small(self, tokens: int, minimum: int) -> Reject:
        return Reject(f"Cached content is too small. total_token_count={tokens}, min_total_token_count={minimum}")

    def new_name(self, key: str) -> str:
        return f"cachedContents/{secrets.token_hex(8)}"

    def refused_head(self) -> Reject:
        return Reject("CachedContent can not be used with GenerateContent request setting system_instruction, "
                      "tools or tool_config.\n\nProposed fix: move those values to CachedContent from "
                      "GenerateContent request.")

    def other_model(self, model: str, cache: dict[str, Any]) -> Reject:
        return Reject(f"Model used by GenerateContent request (models/{model}) and CachedContent "
                      f"(models/{cache['model']}) has to be the same!")

    def create(self, body: dict[str, Any], key: str) -> dict[str, Any]:
        model = self.model_of(body, key)
        part = {k: body[k] for k in (*HEAD, "contents") if k in body}
        validate_request({**part, "contents": part.get("contents") or [{"role": "user", "parts": [{"text": "x"}]}]},
                         model_info(model), count_only=True)
        tokens = prompt_token_count(part)
        if tokens < minimum_tokens(model):
            raise self.too_small(tokens, minimum_tokens(model))
        now = self.clock()
        name = self.new_name(key)
        self.caches[name] = {"name": name, "key": key, "model": model, "part": part, "tokens": tokens,
                             "created": now, "updated": now, "expires": now + self._ttl(body)}
        return self.shown(self.caches[name])

    def patch(self, name: str, key: str, body: dict[str, Any], mask: str) -> dict[str, Any]:
        cache = self.get(name, key)
        if mask not in ("ttl", "expireTime", "expire_time"):
            raise Reject("updateMask: only ttl or expire_time can be updated")
        cache["updated"] = self.clock()
        cache["expires"] = cache["updated"] + self._ttl(body)
        return self.shown(cache)

    def delete(self, name: str, key: str) -> None:
        self.get(name, key)
        del self.caches[name]

    def listed(self, key: str) -> dict[str, Any]:
        now = self.clock()
        return {"cachedContents": [self.shown(c) for c in self.caches.values() if c["key"] == key and c["expires"] > now]}

    def resolve(self, req: dict[str, Any], key: str, model: str) -> tuple[dict[str, Any], int]:
        """A generate call naming a cache → the call as Gemini serves it, and the cached tokens."""
        if "cachedContent" not in req:
            return req, 0
        cache = self.get(str(req["cachedContent"]), key)
        if any(field in req for field in HEAD):
            raise self.refused_head()
        if cache["model"] != model:
            raise self.other_model(model, cache)
        merged = {k: v for k, v in req.items() if k != "cachedContent"}
        merged.update({k: v for k, v in cache["part"].items() if k != "contents"})
        merged["contents"] = [*cache["part"].get("contents", ()), *req.get("contents", ())]
        return merged, cache["tokens"]


async def serve_caches(fake: Any, request: web.Request) -> web.Response:
    """``/{version}/cachedContents[/{id}]``: create (POST), list (GET), get, patch, delete."""
    rec = fake._new_record(request, None, "cachedContents")
    key = request.headers.get("x-goog-api-key") or request.query.get("key")
    rec["key"] = key
    if not key or not fake.quotas.knows(key):
        fake._finish(rec)
        return fake._error(rec, 400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT")
    return await answer_caches(fake, request, rec, key, "cachedContents")


async def answer_caches(fake: Any, request: web.Request, rec: dict, key: str, collection: str) -> web.Response:
    """The operation of an authorised caller (``key``) on ``collection`` (the cachedContents path)."""
    try:
        raw = await request.read()
        body = normalize(json.loads(raw)) if raw else {}
        rec["body"] = body
        name = collection + request.match_info["rest"]
        try:
            if request.method == "POST" and name == collection:
                answer: Any = fake.caches.create(body, key)
            elif request.method == "GET" and name == collection:
                answer = fake.caches.listed(key)
            elif request.method == "GET":
                answer = fake.caches.shown(fake.caches.get(name, key))
            elif request.method == "PATCH":
                answer = fake.caches.patch(name, key, body, request.query.get("updateMask", ""))
            elif request.method == "DELETE":
                fake.caches.delete(name, key)
                answer = {}
            else:
                return fake._error(rec, 404, f"The requested URL {request.path} was not found.", "NOT_FOUND")
        except Reject as e:
            return fake._error(rec, e.code, e.message, e.status, e.details)
        rec["status"] = 200
        return web.json_response(answer)
    finally:
        fake._finish(rec)
