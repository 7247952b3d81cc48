"""The endpoints, as a Blueprint; each handler reads the request, asks the translator, answers."""
from __future__ import annotations

import functools
import time
from typing import Any, Callable, TypeVar

from quart import Blueprint, Response, g, request

import translator

from .. import offload
from ..current import current_app
from ..engines import compaction, context_cache, tiers, upstream
from . import sse, streaming
from ..teams import usage
from .errors import json_response, new_id, own_errors
from ..batch.files import resolve_file_sources
from .hooks import json_body
from .logs import access_log
from ..state.threads import Turn, counted_request, open_turn

routes = Blueprint("proxy", __name__)
Translated = TypeVar("Translated")


async def _translate(function: Callable[..., Translated], body: Any) -> Translated:
    """Translate on the event loop, or, for a request :func:`offload.mark` found large, in a worker thread,
    so that one huge request does not hold up every other client."""
    proxy = current_app.proxy
    try:
        return await offload.run(functools.partial(function, body, proxy.spec, tool_cache=proxy.tool_cache,
                                                   limits=proxy.limits, turn_cache=proxy.turn_cache))
    except RecursionError:
        raise proxy.spec.errors.own.nested_too_deeply.error() from None


def _job(call: translator.UpstreamCall, body: Any, message_id: str, turn: Turn,
         fallbacks: tuple[translator.Fallback, ...], edits: translator.EditReport | None = None) -> streaming.Job:
    """The answer's job: a fallback model gets the request translated again (its facts and the
    signatures it may see differ); a new stream translator per attempt (a thread turn's keep their events).
    The request's own ``fallbacks`` (models that answer when one declines) are translated here too."""
    proxy = current_app.proxy
    estimate = translator.input_estimate(turn.size)

    def retarget(target: str) -> translator.UpstreamCall:
        return translator.translate_call(body, proxy.spec, limits=proxy.limits, target=target)

    return streaming.Job(call, retarget,
                         turn.translators(lambda kind: kind(call, proxy.spec, message_id, input_estimate=estimate,
                                                            edits=edits)),
                         proxy.http, fallbacks=fallbacks)


@routes.route("/", methods=["HEAD", "GET"])
async def root() -> Response:
    return Response("", status=200)


@routes.get("/health")
async def health() -> Response:
    return json_response({"status": "ok"})


@routes.get("/ready")
async def ready() -> Response:
    """Readiness: answered once the app serves (tables loaded, LiteLLM probed, clients and the ledger
    opened); before that service.boot answers 503 with what is missing."""
    return json_response({"status": "ready"})


@routes.post("/v1/messages")
async def messages() -> Response:
    body = await resolve_file_sources(await json_body())
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        g.log["model"] = body["model"]
    proxy = current_app.proxy
    assert proxy.threads is not None  # opened while serving
    turn = await open_turn(body, request.content_length or 0, proxy.threads, proxy.spec, proxy.settings)
    if turn.kind:
        g.log["thread"] = turn.kind
    context_cache.ask(turn.body, proxy)
    offload.mark(offload.weight(turn.body, turn.size), proxy.settings.offload_bytes)  # edits, translation, Gemini body
    try:
        message_id = new_id("msg_")
        edited = await compaction.prepare(turn.body, proxy, message_id)  # context_management edits
        if edited.paused:  # pause_after_compaction: the answer is the compaction block alone
            response, message = compaction.paused_answer(edited, message_id, turn.body.get("stream") is True,
                                                         proxy.spec.context)
            await turn.keep(message)
            g.log.update(usage=translator.billed_usage(message["usage"], edited.report), stop=message["stop_reason"])
            return response
        call = await _translate(translator.translate_call, edited.body)
        g.log.update(target=call.route.target, stream=call.stream)  # model: logged above
        g.client.check_model(call.route, own_errors().model_not_allowed)
        call = tiers.with_tier(call, turn.body, g.client, g.log)
        if call.tools.left_out:
            g.log["tools_left_out"] = list(call.tools.left_out)
        fallbacks = await _translate(functools.partial(translator.plan_fallbacks, call=call), edited.body)
        job = _job(call, edited.body, message_id, turn, fallbacks, edited.report)
        if call.stream:
            return await _stream(job, turn, edited.report)
        try:
            message = await streaming.complete(job, proxy.spec, proxy.settings, proxy.pool, proxy.lifecycle.live)
        finally:
            g.log.update(answered_by=job.answered_by, service_tier=job.service_tier)
    except BaseException:
        await turn.end()
        raise
    await turn.keep(message)
    g.log.update(usage=translator.billed_usage(message["usage"], edited.report), stop=message["stop_reason"])
    return json_response(message)


async def _stream(job: streaming.Job, turn: Turn, edits: translator.EditReport | None = None) -> Response:
    proxy = current_app.proxy
    request_id, started, fields, client = g.request_id, g.started, g.log, g.client

    def done(outcome: dict) -> None:
        seconds, ended = time.perf_counter() - started, {**fields, "answered_by": job.answered_by,
                                                          "service_tier": job.service_tier, **outcome}
        ended["usage"] = translator.billed_usage(ended.get("usage"), edits)  # a compaction call's tokens too
        access_log(request_id, "POST", "/v1/messages", 200, seconds, ended)
        usage.record(proxy, request_id, client, 200, seconds, ended)

    stream, head = await streaming.start(job, proxy.spec, proxy.settings, proxy.pool)
    if head.error:
        g.log["answered_by"] = job.answered_by
        raise head.error
    stream.on_done, stream.request_id, stream.live = done, request_id, proxy.lifecycle.live
    fields["first_event_ms"] = round((time.perf_counter() - started) * 1000, 1)
    frames = proxy.metrics.streaming(turn.relay(stream.body(head)))
    response = Response(frames, status=200, headers=dict(sse.HEADERS))
    response.timeout = None  # Quart would cut streams at RESPONSE_TIMEOUT (60 s)
    return response


@routes.post("/v1/messages/count_tokens")
async def count_tokens() -> Response:
    threads = current_app.proxy.threads
    assert threads is not None  # opened while serving
    body = await counted_request(await resolve_file_sources(await json_body()), threads, current_app.proxy.spec)
    offload.mark(offload.weight(body, request.content_length or 0), current_app.proxy.settings.offload_bytes)
    context = current_app.proxy.spec.context
    plan = await offload.run(lambda: translator.plan_edits(body, context))  # context_management edits
    call = await _translate(translator.translate_count_tokens, plan.body)
    g.log.update(model=call.route.requested, target=call.route.target)
    g.client.check_model(call.route, own_errors().model_not_allowed)
    proxy = current_app.proxy
    tokens, source = await upstream.count_tokens(call, proxy.pool, proxy.settings, proxy.http)
    g.log.update(count_source=source)
    # The answer's estimates serialise the whole conversation (EditPlan measures when asked).
    return json_response(await offload.run(lambda: translator.counted_tokens(plan, tokens)))


@routes.get("/v1/models")
async def models() -> Response:
    table = current_app.proxy.spec.models
    return json_response(translator.model_page(translator.model_list(table), request.args.get("limit", type=int),
                                       request.args.get("after_id"), request.args.get("before_id"),
                                       default_limit=table.listing.default_limit, max_limit=table.listing.max_limit))


@routes.get("/v1/models/<path:model_id>")
async def model(model_id: str) -> Response:
    table = current_app.proxy.spec.models
    for entry in translator.model_list(table):
        if entry["id"] == model_id:
            return json_response(entry)
    # Any name /v1/messages accepts (claude-sonnet-4-5, ...) is a model here too.
    return json_response(translator.model_entry(translator.resolve_model(model_id, table), table))
