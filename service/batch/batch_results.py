"""A Gemini batch's answers as Anthropic batch results, through the same answer pipeline as /v1/messages:
LiteLLM's reader parses Gemini's GenerateContentResponse into chunks, the stream translator turns them
into events and ``collect`` folds those into the Message; each result is booked in the ledger with
``service_tier: batch``."""
from __future__ import annotations

import json
from typing import Any

import translator
from translator import AnthropicError, Spec

from ..engines import litellm_adapter, upstream
from ..teams import usage
from ..config import Settings
from ..web.errors import new_id
from ..teams.keys import Client

# The HTTP status /v1/messages answers with each error type (for the ledger's status column).
ERROR_STATUS = {"invalid_request_error": 400, "authentication_error": 401, "permission_error": 403,
                "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429, "api_error": 500,
                "timeout_error": 504, "overloaded_error": 529}
# What a request that Gemini did not answer became, by the Gemini batch's final state.
UNANSWERED = {"BATCH_STATE_CANCELLED": "canceled", "BATCH_STATE_EXPIRED": "expired"}


def errored(error: AnthropicError) -> dict[str, Any]:
    """An ``errored`` result: the error /v1/messages would have answered for the request."""
    return {"type": "errored", "error": error.body()}


def translated_call(params: dict[str, Any], spec: Spec, limits: dict[str, int]) -> translator.UpstreamCall:
    return translator.translate_request(params, spec, tool_cache=None, limits=limits)


def message_of(params: dict[str, Any], response: dict[str, Any], spec: Spec, limits: dict[str, int]) -> dict:
    """The Message for one GenerateContentResponse of the request ``params``; an AnthropicError (or a
    LiteLLM exception) when the answer is unusable, as /v1/messages would answer."""
    call = translated_call(params, spec, limits)
    parser = litellm_adapter.GeminiParser(litellm_adapter.gemini_request(call.kwargs, "batch", None))
    first = parser.parse(json.dumps(response))
    stream = translator.StreamTranslator(call, spec, new_id("msg_"))
    events = stream.start()
    for chunk in ([first] if first is not None else []) + parser.close():
        events += stream.feed(chunk)
    if stream.outcome.malformed:
        raise translator.unusable_answer_error(stream.outcome, spec.stop_reasons)
    return translator.collect(events + stream.finish())


def result_of(params: dict[str, Any], item: dict[str, Any] | None, state: str, proxy: Any) -> dict[str, Any]:
    """The result of one request from its inlined response ``item`` (None: Gemini gave none)."""
    spec, settings = proxy.spec, proxy.settings
    if item is None or not ("response" in item or "error" in item):
        if state in UNANSWERED:
            return {"type": UNANSWERED[state]}
        return errored(spec.errors.own.batch_unanswered.error(state=state))
    if "error" in item:
        return errored(_gemini_error(item["error"], params, spec, settings))
    try:
        return {"type": "succeeded", "message": message_of(params, item["response"], spec, proxy.limits)}
    except Exception as exc:  # noqa: BLE001 - every failure is the request's error
        return errored(upstream.to_anthropic_error(exc, spec, settings))


def _gemini_error(status: dict[str, Any], params: dict[str, Any], spec: Spec, settings: Settings) -> AnthropicError:
    """A request's google.rpc.Status as the error its HTTP answer would have mapped to."""
    code = int(status.get("code") or 500)
    http = code if code >= 400 else {3: 400, 5: 404, 7: 403, 8: 429, 13: 500, 14: 503, 4: 504}.get(code, 500)
    request = litellm_adapter.GeminiRequest("", {}, b"", str(params.get("model")), {})
    exc = litellm_adapter.http_error(request, http, json.dumps({"error": status}), {})
    return upstream.to_anthropic_error(exc, spec, settings)


def book(proxy: Any, key_name: str, batch_id: str, custom_id: str, params: dict[str, Any], result: dict[str, Any],
         answered_by: str | None) -> None:
    """The result's ledger row (and metrics), at the batch tier."""
    message = result.get("message") or {}
    if result["type"] in ("canceled", "expired"):
        return
    status = 200 if result["type"] == "succeeded" else ERROR_STATUS.get(result["error"]["error"]["type"], 500)
    fields = {"model": params.get("model"), "answered_by": answered_by, "usage": message.get("usage") or {},
              "stop": message.get("stop_reason"), "stream": False, "service_tier": "batch"}
    usage.record(proxy, f"{batch_id}:{custom_id}", Client(key_name), status, 0.0, fields)
