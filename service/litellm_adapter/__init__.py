"""The one place (this package) that imports LiteLLM or reaches into its internals.

The proxy uses LiteLLM as the engine that knows Gemini: its code builds each Gemini request and
reads each stream line (:mod:`.gemini`; the proxy's own HTTP client carries them), and
``acompletion`` serves the other providers an operator enables. Much of that is LiteLLM's private
API. A LiteLLM release that moves a part would make the proxy lose web-search results, truncation
detection or milliseconds per request without any error, so :func:`check` probes each one when the
app is built and refuses to start, naming the LiteLLM version and what moved.
"""
from __future__ import annotations

import copy
import functools
import importlib.metadata
import inspect
import json
import os
from typing import Any, Callable

# Before importing LiteLLM: use the bundled price map instead of fetching one at import.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # noqa: E402
import litellm.utils as litellm_utils  # noqa: E402
from litellm import Router  # noqa: E402
from litellm.litellm_core_utils.litellm_logging import Logging  # noqa: E402
from litellm.litellm_core_utils.prompt_templates.image_handling import _remote_urls_to_inline  # noqa: E402
from litellm.llms.vertex_ai.common_utils import VertexAIError  # noqa: E402
from litellm.llms.vertex_ai.gemini.transformation import should_inline_remote_media, transform_request_body  # noqa: E402
from litellm.llms.vertex_ai.gemini.vertex_and_google_ai_studio_gemini import ModelResponseIterator  # noqa: E402
from litellm.router_utils.cooldown_cache import CooldownCache  # noqa: E402
from litellm.types.router import Deployment, RouterRateLimitError as NoDeployment  # noqa: E402

from .gemini import (GeminiParser, GeminiRequest, _mapped, cache_resource, cached_request,  # noqa: E402
                     connection_error, gemini_body, gemini_parts, gemini_request, http_error)

VERSION = importlib.metadata.version("litellm")
TESTED_WITH = "1.106.2"

litellm.suppress_debug_info = True
# The proxy retries by itself (only before any byte reached the client, never a 400).
litellm.num_retries = 0

__all__ = ["Deployment", "GeminiParser", "GeminiRequest", "LiteLLMMoved", "NoDeployment", "Router", "VERSION", "acompletion",
           "cache_resource", "cached_request", "check", "connection_error", "gemini_body", "gemini_parts", "gemini_request", "http_error", "prices", "token_counter"]


class LiteLLMMoved(RuntimeError):
    """An internal of LiteLLM the proxy relies on is not where it was."""


def _parser_probe() -> bool:
    """LiteLLM's iterator and part readers read a text line and a tool call, then keep a fragment back."""
    if not callable(getattr(ModelResponseIterator, "chunk_parser", None)):
        return False  # the method the proxy's own chunk reader stands in for
    parser = GeminiParser(_request_probe())
    text = parser.parse('data: {"candidates": [{"content": {"parts": [{"text": "hi", "thought": true}, {"text": "yo"}]}}]}')
    call = parser.parse('data: {"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": {}}, '
                        '"thoughtSignature": "c2ln"}]}, "finishReason": "STOP"}], "usageMetadata": '
                        '{"promptTokenCount": 3, "candidatesTokenCount": 2, "thoughtsTokenCount": 1}}')
    tool = call["choices"][0]["delta"]["tool_calls"][0]
    ok = (text["choices"][0]["delta"]["content"], text["choices"][0]["delta"]["reasoning_content"]) == ("yo", "hi")
    ok = ok and tool["function"]["name"] == "f" and tool["provider_specific_fields"]["thought_signature"] == "c2ln"
    ok = ok and call["choices"][0]["finish_reason"] == "tool_calls" and parser.complete() and not parser.broken()
    usage = parser.close()[-1]["usage"]
    ok = ok and (usage.prompt_tokens, usage.completion_tokens_details.reasoning_tokens) == (3, 1)
    return ok and parser.parse('data: {"candidates": [') is None and parser.broken()


def _request_probe() -> "GeminiRequest":
    return gemini_request({"model": "gemini/gemini-2.5-flash", "messages": [{"role": "user", "content": "probe"}],
                           "max_tokens": 5}, "probe-key", None)


def _request_built() -> bool:
    request = _request_probe()
    return (request.url.endswith("/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
            and request.headers.get("x-goog-api-key") == "probe-key"
            and json.loads(request.body)["contents"] == [{"role": "user", "parts": [{"text": "probe"}]}])


def _merged_into_the_body(extra_body: dict[str, Any]) -> dict[str, Any]:
    """The generateContent body LiteLLM builds for a call given ``extra_body``."""
    return transform_request_body(messages=[{"role": "user", "content": "probe"}], model="gemini-2.5-flash",
                                  optional_params={"extra_body": copy.deepcopy(extra_body)},
                                  custom_llm_provider="gemini", litellm_params={}, cached_content=None)


_VALIDATED = {"toolConfig": {"functionCallingConfig": {"mode": "VALIDATED"}}}
# A URL source as the translator sends it; the host is reserved (RFC 2606), so nothing could answer a fetch.
_URL = "https://proxy-probe.invalid/probe.png"
_URL_MESSAGES = [{"role": "user", "content": [{"type": "file", "file": {"file_data": _URL, "format": "image/png"}},
                                              {"type": "text", "text": "probe"}]}]


def _url_passed_on() -> bool:
    """An https file_data with a format is left for Gemini to fetch: not downloaded, sent as file_data."""
    if _remote_urls_to_inline(_URL_MESSAGES, should_inline_remote_media("gemini")):
        return False
    body = transform_request_body(messages=copy.deepcopy(_URL_MESSAGES), model="gemini-2.5-flash", optional_params={},
                                  custom_llm_provider="gemini", litellm_params={}, cached_content=None)
    return body["contents"][0]["parts"][0] == {"file_data": {"mime_type": "image/png", "file_uri": _URL}}

# What the proxy relies on: (what, why, a check that is true while it holds).
RELIED_ON: tuple[tuple[str, str, Callable[[], bool]], ...] = (
    ("Logging._async_success_handler_body / _success_handler_body / response_cost_calculator",
     "skipping the success logging and pricing the proxy never reads (~2 ms per request)",
     lambda: all(callable(getattr(Logging, name, None)) for name in
                 ("_async_success_handler_body", "_success_handler_body", "response_cost_calculator"))),
    ("gemini ModelResponseIterator.chunk_parser / _check_streaming_error / _common_chunk_parsing_logic / "
     "handle_accumulated_json_chunk / chunk_type / accumulated_json, and VertexGeminiConfig.get_assistant_content_"
     "message / _transform_parts / _check_finish_reason / _calculate_usage / "
     "check_prompt_level_content_filter",
     "reading Gemini's stream lines with LiteLLM's Gemini code (text, thoughts, tool calls and signatures, finish "
     "reasons, usage), keeping grounding, and telling a stream cut short by a broken chunk",
     _parser_probe),
    ("utils.get_optional_params, vertex_ai.gemini.transformation.transform_request_body, "
     "VertexLLM._get_token_and_url, VertexGeminiConfig.validate_environment",
     "building a Gemini call's parameters, body (generateContent's and countTokens'), URL and headers as "
     "litellm.acompletion does",
     _request_built),
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
    ("Router.async_get_available_deployment / add_deployment, CooldownCache.add_deployment_to_cooldown / "
     "async_get_active_cooldowns",
     "choosing a key of the pool and resting a key after a 429",
     lambda: all(callable(getattr(Router, n, None)) for n in ("async_get_available_deployment", "add_deployment"))
     and all(callable(getattr(CooldownCache, n, None)) for n in ("add_deployment_to_cooldown",
                                                                  "async_get_active_cooldowns"))),
)


def check() -> None:
    """Refuse to start when something in :data:`RELIED_ON` moved; then switch off the bookkeeping."""
    for what, why, holds in RELIED_ON:
        try:
            ok = holds()
        except Exception:  # noqa: BLE001 - any failure of the probe means it moved
            ok = False
        if not ok:
            raise LiteLLMMoved(f"LiteLLM {VERSION}: {what} is not where the proxy expects it (needed for {why}). "
                               f"The proxy is tested with litellm=={TESTED_WITH}; install that version.")
    _skip_bookkeeping()
    _remember_model_facts()


def _remember_model_facts() -> None:
    """Answer LiteLLM's "does this model support X" questions once per (model, provider, X).

    Building one Gemini request asks several (reasoning, system messages, ...), and each answer walks
    LiteLLM's price map through name variants: about a third of the request's build. The answers
    depend only on the bundled map, which the proxy never changes (LITELLM_LOCAL_MODEL_COST_MAP, no
    register_model), so they are kept. LiteLLM's callers look the function up when they call it."""
    if not hasattr(litellm_utils.supports_factory, "cache_info"):
        litellm_utils.supports_factory = functools.lru_cache(maxsize=4096)(litellm_utils.supports_factory)


def _skip_bookkeeping() -> None:
    """Switch off LiteLLM's success logging and cost calculation, which the proxy never reads.

    After every call LiteLLM prices the answer and builds a logging payload for its callbacks, on the
    event loop and again in worker threads that take the GIL from the next request. The proxy
    registers no callbacks and reports no cost, so this is pure overhead (bench/README.md has the
    figures). The handler bodies are replaced, not the wrappers around them, which restore LiteLLM's
    context variables; ``None`` is what the cost calculator returns when it cannot price a call.
    """
    async def skip_async(self: Any, *args: Any, **kwargs: Any) -> None:
        return None

    def skip(self: Any, *args: Any, **kwargs: Any) -> None:
        return None

    Logging._async_success_handler_body = skip_async
    Logging._success_handler_body = skip
    Logging.response_cost_calculator = skip
    litellm.disable_streaming_logging = True


acompletion = litellm.acompletion


def token_counter(model: str, messages: list, tools: list | None) -> int:
    """LiteLLM's bundled tokenizer: the local estimate when countTokens cannot answer."""
    return litellm.token_counter(model=model, messages=messages, tools=tools)


PRICE_FIELDS = {"uncached_input_tokens": "input_cost_per_token", "cache_read_input_tokens": "cache_read_input_token_cost",
                "cache_creation_input_tokens": "cache_creation_input_token_cost", "output_tokens": "output_cost_per_token"}


def prices(models: set[str]) -> dict[str, dict[str, float]]:
    """USD per token (and per web search) of each model in LiteLLM's bundled price map, by the ledger's field
    names; models it does not know are left out."""
    found = {}
    for model in models:
        info = litellm.model_cost.get(model) or {}
        price = {field: float(info[name]) for field, name in PRICE_FIELDS.items()
                 if isinstance(info.get(name), (int, float))}
        search = info.get("search_context_cost_per_query")
        if isinstance(search, dict) and isinstance(search.get("search_context_size_medium"), (int, float)):
            price["web_search_requests"] = float(search["search_context_size_medium"])
        if price:
            found[model] = price
    return found
