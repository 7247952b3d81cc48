"""The LiteLLM internals the proxy relies on, each with a probe that is true while it holds.

One probe per internal, so that a LiteLLM release that moved one is named by the start-up error
(with what the probe raised), not hidden in a group. :func:`service.engines.litellm_adapter.check` runs them.
"""
from __future__ import annotations

import copy
import inspect
import json
from typing import Any, Callable, cast

import litellm.utils as litellm_utils
from litellm import Router
from litellm.litellm_core_utils.litellm_logging import Logging
from litellm.litellm_core_utils.prompt_templates.image_handling import _remote_urls_to_inline
from litellm.llms.vertex_ai.common_utils import VertexAIError
from litellm.llms.vertex_ai.gemini.transformation import should_inline_remote_media, transform_request_body
from litellm.llms.vertex_ai.gemini.vertex_and_google_ai_studio_gemini import ModelResponseIterator
from litellm.router_utils.cooldown_cache import CooldownCache

from .gemini import GeminiParser, GeminiRequest, _convert, _mapped, gemini_request
from .history import segments

Probe = tuple[str, str, Callable[[], bool]]   # (what, why it is needed, a check true while it holds)


def _request_probe() -> GeminiRequest:
    return gemini_request({"model": "gemini/gemini-2.5-flash", "messages": [{"role": "user", "content": "probe"}],
                           "max_tokens": 5}, "probe-key", None)


def _parsed(*lines: str) -> tuple[GeminiParser, list[Any]]:
    parser = GeminiParser(_request_probe())
    return parser, [parser.parse(line) for line in lines]


_TEXT = 'data: {"candidates": [{"content": {"parts": [{"text": "hi", "thought": true}, {"text": "yo"}]}}]}'
_CALL = ('data: {"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": {}}, '
         '"thoughtSignature": "c2ln"}]}, "finishReason": "STOP"}], "usageMetadata": '
         '{"promptTokenCount": 3, "candidatesTokenCount": 2, "thoughtsTokenCount": 1}}')


def _text_read() -> bool:
    delta = _parsed(_TEXT)[1][0]["choices"][0]["delta"]
    return (delta["content"], delta["reasoning_content"]) == ("yo", "hi")


def _call_read() -> bool:
    tool = _parsed(_CALL)[1][0]["choices"][0]["delta"]["tool_calls"][0]
    return (tool["function"]["name"] == "f" and tool["provider_specific_fields"]["thought_signature"] == "c2ln"
            and "c2ln" not in (tool["id"] or ""))


def _usage_read() -> bool:
    parser, _ = _parsed(_CALL)
    usage = parser.close()[-1]["usage"]
    return parser.complete() and (usage.prompt_tokens, usage.completion_tokens_details.reasoning_tokens) == (3, 1)


def _fragment_held() -> bool:
    parser, chunks = _parsed('data: {"candidates": [')
    return chunks == [None] and parser.broken() and not _parsed(_TEXT)[0].broken()


def _stream_error_raised() -> bool:
    try:
        _parsed('data: {"error": {"code": 429, "message": "probe", "status": "RESOURCE_EXHAUSTED"}}')
    except Exception as exc:  # noqa: BLE001 - the mapped exception is the result
        return type(exc).__name__ == "RateLimitError"
    return False


def _refusal_read() -> bool:
    parser, _ = _parsed('data: {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 3}}')
    return parser.complete() and parser.blocked


def _request_built() -> bool:
    request = _request_probe()
    return (request.url.endswith("/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
            and request.headers.get("x-goog-api-key") == "probe-key"
            and json.loads(request.body)["contents"] == [{"role": "user", "parts": [{"text": "probe"}]}])


def _merged_into_the_body(extra_body: dict[str, Any]) -> dict[str, Any]:
    """The generateContent body LiteLLM builds for a call given ``extra_body``."""
    return cast(dict[str, Any], transform_request_body(
        messages=[{"role": "user", "content": "probe"}], model="gemini-2.5-flash",
        optional_params={"extra_body": copy.deepcopy(extra_body)}, custom_llm_provider="gemini", litellm_params={},
        cached_content=None))


_VALIDATED = {"toolConfig": {"functionCallingConfig": {"mode": "VALIDATED"}}}
# A URL source as the translator sends it; the host is reserved (RFC 2606), so nothing could answer a fetch.
_URL = "https://proxy-probe.invalid/probe.png"
_URL_MESSAGES: Any = [{"role": "user", "content": [{"type": "file", "file": {"file_data": _URL, "format": "image/png"}},
                                              {"type": "text", "text": "probe"}]}]


def _url_passed_on() -> bool:
    """An https file_data with a format is left for Gemini to fetch: not downloaded, sent as file_data."""
    if _remote_urls_to_inline(_URL_MESSAGES, should_inline_remote_media("gemini")):
        return False
    body = transform_request_body(messages=copy.deepcopy(_URL_MESSAGES), model="gemini-2.5-flash", optional_params={},
                                  custom_llm_provider="gemini", litellm_params={}, cached_content=None)
    return body["contents"][0]["parts"][0] == {"file_data": {"mime_type": "image/png", "file_uri": _URL}}


_CALLED: Any = [{"role": "user", "content": "probe"},
                {"role": "assistant", "content": "a", "tool_calls": [{"id": "c1", "type": "function",
                                                                     "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": '{"output": "b"}'}, {"role": "user", "content": "c"},
                {"role": "assistant", "content": "d"}, {"role": "user", "content": "e"}]


def _history_splits() -> bool:
    """The conversion of a history cut before its assistant messages, segment by segment, is the whole's."""
    whole = _convert(copy.deepcopy(_CALLED), model="gemini-2.5-flash", provider="gemini")
    cut = [content for segment in segments(copy.deepcopy(_CALLED))
           for content in _convert(segment, model="gemini-2.5-flash", provider="gemini")]
    return len(whole) == 6 and cut == whole


_STREAM_WHY = "reading Gemini's stream lines with LiteLLM's Gemini code"
RELIED_ON: tuple[Probe, ...] = (
    *((f"Logging.{name}", "skipping the success logging and pricing the proxy never reads (~2 ms per request)",
       lambda name=name: callable(getattr(Logging, name, None)))
      for name in ("_async_success_handler_body", "_success_handler_body", "response_cost_calculator")),
    ("gemini ModelResponseIterator(streaming_response, sync_stream, logging_obj) reading only litellm_params and "
     "optional_params of the logging object, and its chunk_parser", _STREAM_WHY,
     lambda: callable(getattr(ModelResponseIterator, "chunk_parser", None))  # what GeminiParser stands in for
     and GeminiParser(_request_probe()).iterator.logging_obj is not None),
    ("ModelResponseIterator._common_chunk_parsing_logic and VertexGeminiConfig.get_assistant_content_message",
     _STREAM_WHY + " (text and thoughts)", _text_read),
    ("VertexGeminiConfig._transform_parts(parts, cumulative_tool_call_idx, is_function_call, "
     "thought_signature_in_tool_call_id) and _check_finish_reason",
     _STREAM_WHY + " (tool calls, their thought signatures kept apart from their ids, finish reasons)", _call_read),
    ("VertexGeminiConfig._calculate_usage(completion_response)", _STREAM_WHY + " (usage)", _usage_read),
    ("ModelResponseIterator.chunk_type / accumulated_json / handle_accumulated_json_chunk",
     "telling a stream cut short inside a chunk", _fragment_held),
    ("ModelResponseIterator._check_streaming_error raising VertexAIError", "an error Gemini sends inside a stream",
     _stream_error_raised),
    ("VertexGeminiConfig.check_prompt_level_content_filter(processed_chunk, response_id, model)",
     "answering a refused prompt", _refusal_read),
    ("utils.get_optional_params, vertex_ai.gemini.transformation.transform_request_body, "
     "VertexLLM._get_token_and_url, VertexGeminiConfig.validate_environment",
     "building a Gemini call's parameters, body, URL and headers as litellm.acompletion does", _request_built),
    ("utils.supports_factory(model, custom_llm_provider, key) -> bool",
     "answering LiteLLM's model-capability questions once per model (a third of a request's build)",
     lambda: list(inspect.signature(litellm_utils.supports_factory).parameters) == ["model", "custom_llm_provider", "key"]
     and litellm_utils.supports_factory("gemini-2.5-flash", "gemini", "supports_reasoning") is True),
    ("exception_mapping_utils.exception_type and vertex_ai.common_utils.VertexAIError",
     "Gemini's HTTP errors as LiteLLM's exceptions (RateLimitError, ...), which errors.yaml maps",
     lambda: type(_mapped("gemini-2.5-flash", VertexAIError(429, "probe", {}))).__name__ == "RateLimitError"),
    ("vertex_ai.gemini.transformation.transform_request_body merging extra_body into the request body",
     "sending Gemini's VALIDATED function-calling mode for strict tools (LiteLLM's tool_choice has no such mode)",
     lambda: _merged_into_the_body(_VALIDATED).get("toolConfig") == _VALIDATED["toolConfig"]),
    ("image_handling._remote_urls_to_inline / should_inline_remote_media and transform_request_body passing a "
     "file part's https file_data (with a format) on as Gemini file_data",
     "image and document URL sources reaching Gemini as fileData without the proxy ever fetching them",
     _url_passed_on),
    ("GoogleAIStudioGeminiConfig.transform_messages converting a history cut before its assistant messages, "
     "segment by segment, as it converts the whole", "converting each turn's repeated history once (HISTORY_CACHE_MB)",
     _history_splits),
    ("Router.add_deployment / select(model, request_kwargs) / health()", "choosing a key of the pool",
     lambda: all(callable(getattr(Router, name, None)) for name in ("add_deployment", "select", "health"))),
    ("router_utils.cooldown_cache.CooldownCache.add_deployment_to_cooldown / async_get_active_cooldowns "
     "(Router.health().cooldowns)", "resting a key after a 429",
     lambda: all(callable(getattr(CooldownCache, name, None)) for name in ("add_deployment_to_cooldown",
                                                                          "async_get_active_cooldowns"))),
)
