"""The fake Gemini's HTTP side: the aiohttp app, its handlers and FakeGemini (start/stop/enqueue/reset/wait_for),
plus ``main`` for ``python -m tests.fake_gemini``.  The spec language and record fields are described in the
package docstring (``tests/fake_gemini/__init__.py``)."""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import secrets
import threading
import time
from typing import Any, Callable

from aiohttp import web

from .answers import AnswerMixin, prompt_token_count, with_structured_default
from .batches import BatchMixin
from .files import FilesMixin
from .caches import Caches, serve_caches
from .quotas import Quotas
from .signatures import SignatureMixin
from .validation import Reject, model_info, normalize, validate_count_tokens, validate_request

DEFAULT_INPUT_LIMIT = 1048576
_ACTIONS = ("generateContent", "streamGenerateContent", "countTokens")

_HTTP_STATUS = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL", 501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}
_DEFAULT_MESSAGES = {
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}


def _error_body(code: int, message: str, status: str | None = None, details=None) -> dict:
    err = {"code": code, "message": message, "status": status or _HTTP_STATUS.get(code, "UNKNOWN")}
    if details:
        err["details"] = details
    return {"error": err}


class FakeGemini(AnswerMixin, SignatureMixin, BatchMixin, FilesMixin):
    def __init__(self, host: str = "127.0.0.1", port: int = 0, keep_log: bool = True, verbose: bool = False,
                 default_spec: dict | None = None, backlog: int = 128):
        self.host, self.port = host, port
        self.backlog = backlog  # listen backlog (aiohttp's default; the benchmarks open 1,000 connections at once)
        self.keep_log, self.verbose = keep_log, verbose
        self.default_spec = self._started_with = default_spec
        self.requests: list[dict] = []
        self.issued_signatures: set[str] = set()
        self._spec_sigs: set[str] = set()
        self._queue: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._secret = secrets.token_bytes(32)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.base_url = self.root_url = ""
        self.quotas = Quotas()  # set by tests: valid keys, calls per window per key and per model
        self.refusals: dict[str, dict] = {}  # model → the refusal spec it answers every call with (refuse())
        self.priority_downgrade = False      # answer priority calls at standard (x-gemini-service-tier)
        self.reset_batches()
        self.reset_files()
        self.caches = Caches()  # cachedContents (tests may replace its clock)

    # ---------------------------------------------------------------- public API
    def enqueue(self, *specs: dict | Callable[[dict], dict]) -> None:
        with self._cond:
            self._queue.extend(specs)

    def refuse(self, model: str, finish_reason: str = "SAFETY", prompt_blocked: str | None = None) -> None:
        """Make ``model`` (only it) refuse every generate call: ``finish_reason`` on an empty candidate, or
        the prompt blocked with ``prompt_blocked`` as its blockReason. Other models answer from the queue."""
        spec = {"prompt_blocked": prompt_blocked} if prompt_blocked else {"finish_reason": finish_reason}
        with self._cond:
            self.refusals[model] = spec

    def reset(self) -> None:
        """An empty script and log, the quotas and the default answer the fake was started with."""
        with self._cond:
            self._queue.clear()
            self.refusals.clear()
            self.priority_downgrade = False
            self.quotas = Quotas()
            self.caches = Caches()
            self.default_spec = self._started_with
            self.requests.clear()
            self.reset_batches()
            self.reset_files()

    def wait_for(self, predicate: Callable[[list], Any], timeout: float = 5.0) -> bool:
        def check():
            try:
                return bool(predicate(self.requests))
            except (IndexError, KeyError, TypeError):
                return False
        with self._cond:
            return self._cond.wait_for(check, timeout)

    async def wait_for_async(self, predicate: Callable[[list], Any], timeout: float = 5.0) -> bool:
        """Same as wait_for, without blocking the caller's event loop (use it inside async tests)."""
        return await asyncio.to_thread(self.wait_for, predicate, timeout)

    def start(self) -> "FakeGemini":
        ready = threading.Event()
        error: list[BaseException] = []

        def run():
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self._astart())
            except BaseException as e:  # noqa: BLE001
                error.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._runner.cleanup())
                loop.close()

        self._thread = threading.Thread(target=run, name=f"fake-gemini-{id(self):x}", daemon=True)
        self._thread.start()
        if not ready.wait(15):
            raise RuntimeError("fake Gemini did not start")
        if error:
            raise error[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._thread = None

    def __enter__(self) -> "FakeGemini":
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---------------------------------------------------------------- server plumbing
    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=512 * 1024 * 1024)
        self.add_batch_routes(app)
        self.add_file_routes(app)
        app.router.add_post(r"/{version:v1beta|v1alpha|v1}/models/{tail}", self._handle_model)
        app.router.add_route("*", r"/{version:v1beta|v1alpha|v1}/cachedContents{rest:(/[A-Za-z0-9_-]+)?}",
                             self._handle_caches)
        app.router.add_route("*", "/{path:.*}", self._handle_other)
        return app

    async def _astart(self) -> None:
        self._runner = web.AppRunner(self.make_app(), handle_signals=False, handler_cancellation=True,
                                     access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=self.backlog)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.root_url = f"http://{self.host}:{self.port}"
        self.base_url = self.root_url + "/v1beta"

    def _new_record(self, request: web.Request, model, action) -> dict:
        rec = {"method": request.method, "path": request.path, "model": model, "action": action,
               "query": request.query_string, "headers": {k.lower(): v for k, v in request.headers.items()},
               "body": None, "normalized": None, "status": None, "error": None, "disconnected": False,
               "finished_at": None, "used_dummy_signature": False, "cut": False, "started_at": time.monotonic()}
        if self.keep_log:
            with self._cond:
                self.requests.append(rec)
                self._cond.notify_all()
        return rec

    def _finish(self, rec: dict) -> None:
        rec["finished_at"] = time.monotonic()
        if self.verbose:
            ms = (rec["finished_at"] - rec["started_at"]) * 1000
            extra = " DISCONNECTED" if rec["disconnected"] else ""
            err = f" {rec['error'][:160]}" if rec["error"] else ""
            print(f"{rec['method']} {rec['path']} -> {rec['status']} {ms:.1f}ms{extra}{err}", flush=True)
        if self.keep_log:
            with self._cond:
                self._cond.notify_all()

    def _error(self, rec: dict, code: int, message: str, status: str | None = None, details=None) -> web.Response:
        rec["status"] = code
        rec["error"] = message
        return web.Response(status=code, body=json.dumps(_error_body(code, message, status, details)).encode(),
                            content_type="application/json", charset="utf-8")

    async def _handle_other(self, request: web.Request) -> web.Response:
        rec = self._new_record(request, None, None)
        try:
            raw = await request.read()
            if raw:
                try:
                    rec["body"] = json.loads(raw)
                except ValueError:
                    rec["body"] = None
            return self._error(rec, 404, f"The requested URL {request.path} was not found on this server "
                                         "(fake Gemini).", "NOT_FOUND")
        finally:
            self._finish(rec)

    async def _handle_model(self, request: web.Request) -> web.StreamResponse:
        model, sep, action = request.match_info["tail"].partition(":")
        if not sep or action not in _ACTIONS:
            return await self._handle_other(request)
        rec = self._new_record(request, model, action)
        try:
            return await self._serve(request, rec, model, action)
        except (asyncio.CancelledError, ConnectionResetError):
            rec["disconnected"] = True
            raise
        finally:
            self._finish(rec)

    async def _handle_caches(self, request: web.Request) -> web.Response:
        return await serve_caches(self, request)

    def _pop_spec(self, action: str):
        want_count = action == "countTokens"
        with self._cond:
            for i, spec in enumerate(self._queue):
                is_count = isinstance(spec, dict) and spec.get("action") == "countTokens"
                if is_count == want_count:
                    del self._queue[i]
                    return spec
        return None

    async def _serve(self, request: web.Request, rec: dict, model: str, action: str) -> web.StreamResponse:
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            return self._error(rec, 403, "Method doesn't allow unregistered callers (callers without established "
                                         "identity). Please use API Key or other form of API consumer identity to "
                                         "call this API.", "PERMISSION_DENIED")
        rec["key"] = key
        if key == "invalid-key" or not self.quotas.knows(key):
            return self._error(rec, 400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT",
                               [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                                 "domain": "googleapis.com",
                                 "metadata": {"service": "generativelanguage.googleapis.com"}}])
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return self._error(rec, 400, "Invalid JSON payload received. Unexpected token.")
        return await self._respond(request, rec, model, action, key, body)

    async def _respond(self, request: web.Request, rec: dict, model: str, action: str, key: str,
                      body: Any) -> web.StreamResponse:
        """Validate and answer an authorised call (shared with the fake Vertex, tests/fake_vertex)."""
        rec["body"] = body
        mi = model_info(model)
        try:
            if body is None:
                raise Reject("* GenerateContentRequest.contents: contents is not specified")
            req = normalize(body)
            rec["normalized"] = req
            if action == "countTokens":
                return await self._count_tokens(request, rec, req, mi)
            req, cached_tokens = self.caches.resolve(req, key, model)
            validate_request(req, mi)
            self._check_signatures(req, mi, rec)
            self.check_file_data(req, key)
            prompt_tokens = prompt_token_count(req)
        except Reject as e:
            return self._error(rec, e.code, e.message, e.status, e.details)

        exhausted = self.quotas.take(key, model)
        if exhausted:
            return self._scripted_error(rec, exhausted)
        spec = self.refusals.get(model) or self._pop_spec(action)
        if callable(spec):
            try:
                spec = spec(rec)
            except Exception as e:  # noqa: BLE001 - make test bugs visible
                return self._error(rec, 500, f"fake Gemini: callable spec raised {type(e).__name__}: {e}", "INTERNAL")
        if spec is None:
            spec = self.default_spec or {}
        spec = with_structured_default(spec, req)
        if cached_tokens:
            spec = {**spec, "usage": {"cachedContentTokenCount": cached_tokens, **spec.get("usage", {})}}
        limit = spec.get("input_limit", DEFAULT_INPUT_LIMIT)
        if prompt_tokens > limit:
            return self._error(rec, 400, f"The input token count ({prompt_tokens}) exceeds the maximum number of "
                                         f"tokens allowed ({limit}).")
        if spec.get("delay_s"):
            await asyncio.sleep(spec["delay_s"])
        if spec.get("hang"):
            await asyncio.Event().wait()
        if "error" in spec:
            return self._scripted_error(rec, spec["error"])
        if spec.get("grounding") and not any("googleSearch" in t for t in req.get("tools") or () if isinstance(t, dict)):
            spec = {k: v for k, v in spec.items() if k != "grounding"}  # Gemini grounds only when asked to search
        if spec.get("url_context") and not any("urlContext" in t for t in req.get("tools") or () if isinstance(t, dict)):
            spec = {k: v for k, v in spec.items() if k != "url_context"}  # pages are read only with the tool
        headers = self._tier_header(req, mi, rec)
        if action == "generateContent":
            rec["status"] = 200
            return web.Response(body=json.dumps(self._build(spec, model, prompt_tokens), ensure_ascii=False).encode(),
                                content_type="application/json", charset="utf-8", headers=headers)
        return await self._stream(request, rec, spec, model, prompt_tokens, headers)

    def _tier_header(self, req: dict, mi, rec: dict) -> dict:
        """x-gemini-service-tier for a call that asked for priority: priority on the models that have it
        (Gemini 3+), standard (a graceful downgrade) elsewhere or when ``priority_downgrade`` is set."""
        tier = str(req.get("serviceTier", "")).lower().removeprefix("service_tier_")
        if tier != "priority":
            return {}
        served = "priority" if mi.is3 and not self.priority_downgrade else "standard"
        rec["service_tier"] = served
        return {"x-gemini-service-tier": served}

    def _scripted_error(self, rec: dict, err: dict) -> web.Response:
        code = int(err.get("code", 500))
        details = list(err.get("details") or [])
        if err.get("retry_delay"):
            details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": err["retry_delay"]})
        return self._error(rec, code, err.get("message") or _DEFAULT_MESSAGES.get(code, "fake error"),
                           err.get("status"), details)

    async def _count_tokens(self, request, rec, req, mi) -> web.Response:
        inner = validate_count_tokens(req, mi)
        spec = self._pop_spec("countTokens")
        if callable(spec):
            spec = spec(rec)
        spec = spec or {}
        if spec.get("delay_s"):
            await asyncio.sleep(spec["delay_s"])
        if "error" in spec:
            return self._scripted_error(rec, spec["error"])
        n = spec.get("total_tokens", prompt_token_count(inner))
        rec["status"] = 200
        return web.json_response({"totalTokens": n})


    async def _stream(self, request: web.Request, rec: dict, spec: dict, model: str,
                      prompt_tokens: int, headers: dict | None = None) -> web.StreamResponse:
        chunks = self._stream_chunks(spec, model, prompt_tokens)
        sse = request.query.get("alt") == "sse"
        resp = web.StreamResponse(status=200, headers={
            "Content-Type": "text/event-stream" if sse else "application/json; charset=UTF-8", **(headers or {})})
        cut = spec.get("cut_after_chunks")
        bad = spec.get("malformed_chunk_after")
        delay = spec.get("chunk_delay_s") or 0
        await resp.prepare(request)
        rec["status"] = 200
        for i in range(len(chunks) + 1):
            if cut is not None and i == cut:
                request.transport.abort()
                rec["cut"] = True
                return resp
            if bad is not None and i == bad:
                await resp.write(b'data: {"candidates": [{"content": {"parts": [{"text": "bro\r\n\r\n' if sse
                                 else b'{"candidates": [{"content": ,\r\n')
            if i == len(chunks):
                break
            if i and delay:
                await asyncio.sleep(delay)
            data = json.dumps(chunks[i], ensure_ascii=False).encode()
            if sse:
                await resp.write(b"data: " + data + b"\r\n\r\n")
            else:
                await resp.write((b"[" if i == 0 else b",\r\n") + data)
        if not sse:
            await resp.write(b"]")
        await resp.write_eof()
        return resp


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Fake Gemini REST server")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--quiet", action="store_true", help="log nothing per request")
    ap.add_argument("--default-spec", help="JSON answer spec used when the queue is empty")
    ap.add_argument("--backlog", type=int, default=128, help="listen backlog (the benchmarks use 4096)")
    args = ap.parse_args(argv)
    fake = FakeGemini(args.host, args.port, keep_log=False, verbose=not args.quiet,
                      default_spec=json.loads(args.default_spec) if args.default_spec else None,
                      backlog=args.backlog)

    async def run():
        await fake._astart()
        print(f"PORT {fake.port}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await fake._runner.cleanup()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
