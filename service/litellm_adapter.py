"""The one place that imports LiteLLM or reaches into its internals.

The proxy uses LiteLLM as the engine that knows Gemini, and relies on a few of its private
attributes to skip work it never reads and to keep what LiteLLM's stream parser drops. A LiteLLM
release that moves one of them would make the proxy lose web-search results, truncation detection
or milliseconds per request without any error, so :func:`check` looks for each one when the app is
built and refuses to start, naming the LiteLLM version and what moved.
"""
from __future__ import annotations

import copy
import importlib.metadata
import inspect
import json
import os
from dataclasses import dataclass
from typing import Any, Callable

# Before importing LiteLLM: use the bundled price map instead of fetching one at import.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # noqa: E402
from litellm import Router  # noqa: E402
from litellm.litellm_core_utils.litellm_logging import Logging  # noqa: E402
from litellm.litellm_core_utils.prompt_templates.image_handling import _remote_urls_to_inline  # noqa: E402
from litellm.litellm_core_utils.exception_mapping_utils import exception_type  # noqa: E402
from litellm.llms.gemini.chat.transformation import GoogleAIStudioGeminiConfig  # noqa: E402
from litellm.llms.vertex_ai.common_utils import VertexAIError  # noqa: E402
from litellm.llms.vertex_ai.gemini.transformation import should_inline_remote_media, transform_request_body  # noqa: E402
from litellm.llms.vertex_ai.gemini.vertex_and_google_ai_studio_gemini import (  # noqa: E402
    ModelResponseIterator, VertexGeminiConfig, VertexLLM)
from litellm.utils import get_optional_params  # noqa: E402
from litellm.router_utils.cooldown_cache import CooldownCache  # noqa: E402
from litellm.types.router import Deployment, RouterRateLimitError as NoDeployment  # noqa: E402

VERSION = importlib.metadata.version("litellm")
TESTED_WITH = "1.106.2"

litellm.suppress_debug_info = True
# The proxy retries by itself (only before any byte reached the client, never a 400).
litellm.num_retries = 0

__all__ = ["Deployment", "GeminiParser", "GeminiRequest", "LiteLLMMoved", "NoDeployment", "Router", "VERSION", "acompletion",
           "check", "connection_error", "gemini_request", "gemini_request_body", "http_error", "prices", "token_counter"]


class LiteLLMMoved(RuntimeError):
    """An internal of LiteLLM the proxy relies on is not where it was."""


def _parser_probe() -> bool:
    """LiteLLM's parser reads a text line, then keeps a fragment back and reports it."""
    parser = GeminiParser(_request_probe(), {})
    chunk = parser.parse('data: {"candidates": [{"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"}]}')
    ok = chunk.choices[0].delta.content == "hi" and parser.seen["finish_reason"] == "STOP" and not parser.broken()
    return ok and parser.parse('data: {"candidates": [') is None and parser.close() is None and parser.broken()


def _request_probe() -> "GeminiRequest":
    return gemini_request({"model": "gemini/gemini-2.5-flash", "messages": [{"role": "user", "content": "probe"}],
                           "max_tokens": 5}, "probe-key", None)


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
    ("gemini ModelResponseIterator(logging_obj=<has optional_params>).chunk_parser / _common_chunk_parsing_logic / "
     "handle_accumulated_json_chunk / chunk_type / accumulated_json",
     "parsing Gemini's stream lines with LiteLLM's parser, keeping grounding and finish reasons, and telling a "
     "stream cut short by a broken chunk",
     _parser_probe),
    ("utils.get_optional_params, VertexLLM._get_token_and_url, VertexGeminiConfig.validate_environment",
     "building a Gemini call's parameters, URL and headers as litellm.acompletion does",
     lambda: _request_probe().url.endswith(":streamGenerateContent?alt=sse")
     and _request_probe().headers.get("x-goog-api-key") == "probe-key"),
    ("exception_mapping_utils.exception_type and vertex_ai.common_utils.VertexAIError",
     "Gemini's HTTP errors as LiteLLM's exceptions (RateLimitError, ...), which errors.yaml maps",
     lambda: type(_mapped("gemini-2.5-flash", VertexAIError(429, "probe", {}))).__name__ == "RateLimitError"),
    ("GoogleAIStudioGeminiConfig.map_openai_params and vertex_ai.gemini.transformation.transform_request_body",
     "building the countTokens body exactly as generateContent gets it",
     lambda: callable(getattr(GoogleAIStudioGeminiConfig, "map_openai_params", None))
     and "cached_content" in inspect.signature(transform_request_body).parameters),
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


def gemini_request_body(model: str, messages: list, tools: list | None) -> dict[str, Any]:
    """The generateContent body LiteLLM would send, built by LiteLLM's own code
    (``litellm.acount_tokens`` would need google-genai and another api_base convention)."""
    optional = GoogleAIStudioGeminiConfig().map_openai_params(
        {"tools": copy.deepcopy(tools)} if tools else {}, {}, model, False)
    return transform_request_body(messages=copy.deepcopy(messages), model=model, optional_params=optional,
                                  custom_llm_provider="gemini", litellm_params={}, cached_content=None)


def _keep_raw(iterator: Any, seen: dict[str, Any]) -> None:
    parse = getattr(iterator, "chunk_parser", None)
    if parse is None:
        return

    def keep_raw(chunk: Any) -> Any:
        for candidate in (chunk.get("candidates") or ()) if isinstance(chunk, dict) else ():
            if isinstance(candidate, dict):
                if candidate.get("groundingMetadata"):
                    seen["grounding"].append(candidate["groundingMetadata"])
                seen["finish_reason"] = candidate.get("finishReason") or seen["finish_reason"]
        return parse(chunk)

    iterator.chunk_parser = keep_raw


# ---- Gemini without LiteLLM's call machinery: LiteLLM builds the request and parses the stream,
# the proxy's own pooled HTTP client carries them (service/answers.py). Per call this skips
# LiteLLM's logging object, its model-info lookups, its HTTP client wrappers and the
# CustomStreamWrapper's per-chunk bookkeeping (bench/README.md has the figures).

@dataclass(frozen=True)
class GeminiRequest:
    """One streamGenerateContent call, as LiteLLM would send it."""

    url: str
    headers: dict[str, str]
    body: bytes
    model: str                      # Gemini's name, without the provider prefix
    optional_params: dict[str, Any]  # LiteLLM's mapped parameters, which its stream parser reads


def gemini_request(kwargs: dict[str, Any], api_key: str, api_base: str | None) -> GeminiRequest:
    """The request ``litellm.acompletion(**kwargs, stream=True)`` would make, built by the same
    LiteLLM functions (parameter mapping, message and tool transformation, URL and headers)."""
    model = kwargs["model"].split("/", 1)[1]
    params = {k: v for k, v in kwargs.items() if k not in ("model", "stream", "stream_options")}
    optional = get_optional_params(model=model, custom_llm_provider="gemini", stream=True,
                                   stream_options={"include_usage": True}, **params)
    optional.pop("stream", None)
    body = transform_request_body(messages=kwargs["messages"], model=model, optional_params=dict(optional),
                                  custom_llm_provider="gemini", litellm_params={}, cached_content=None)
    auth, url = VertexLLM()._get_token_and_url(
        model=model, auth_header=None, gemini_api_key=api_key, vertex_project=None, vertex_location=None,
        vertex_credentials=None, stream=True, custom_llm_provider="gemini", api_base=api_base or None)
    headers = VertexGeminiConfig().validate_environment(headers=None, model=model, messages=[], optional_params=optional,
                                                        litellm_params={}, api_key=auth)
    return GeminiRequest(url, headers, json.dumps(body).encode(), model, optional)


class _CallFacts:
    """What LiteLLM's stream parser reads of its logging object: the call's mapped parameters."""

    def __init__(self, optional_params: dict[str, Any]):
        self.optional_params = optional_params


class GeminiParser:
    """LiteLLM's Gemini stream parser, fed the response's lines: each gives a ``ModelResponseStream``
    (or None), and what LiteLLM drops (grounding, Gemini's finish reason) is kept in ``seen``."""

    def __init__(self, request: GeminiRequest, response_headers: Any):
        self.model = request.model
        self.iterator = ModelResponseIterator(streaming_response=None, sync_stream=False,
                                              logging_obj=_CallFacts(request.optional_params),
                                              response_headers=response_headers)
        self.seen: dict[str, Any] = {"grounding": [], "finish_reason": None}
        _keep_raw(self.iterator, self.seen)

    def parse(self, line: str) -> Any:
        try:
            return self.iterator._common_chunk_parsing_logic(chunk=line)
        except VertexAIError as exc:  # an error Gemini sent inside the stream (a 429 after a 200)
            raise _mapped(self.model, exc) from None
        except ValueError as exc:  # what LiteLLM's own iterator turns a bad chunk into
            raise RuntimeError(f"Error parsing chunk: {exc},\nReceived chunk: {line[:200]}") from None

    def close(self) -> Any:
        """The last value held back by a fragmented chunk, if it is whole now; else None."""
        if self.iterator.chunk_type == "accumulated_json" and self.iterator.accumulated_json:
            return self.iterator.handle_accumulated_json_chunk(chunk="", is_final=True)
        return None

    def broken(self) -> bool:
        """Whether the stream ended inside a chunk: LiteLLM takes a line that is not JSON for the
        start of a fragmented chunk and buffers what follows; a buffer left at the end is the only sign."""
        return self.iterator.chunk_type == "accumulated_json" and bool(self.iterator.accumulated_json)


def http_error(request: GeminiRequest, status: int, text: str, headers: Any) -> Exception:
    """Gemini's HTTP error as the exception LiteLLM raises for it (RateLimitError, ... with status)."""
    error = VertexAIError(status_code=status, message=VertexGeminiConfig().translate_exception_str(text),
                          headers=dict(headers))
    return _mapped(request.model, error)


def connection_error(request: GeminiRequest, exc: BaseException) -> Exception:
    """A transport failure (refused, reset, DNS) as LiteLLM's APIConnectionError."""
    return litellm.APIConnectionError(message=f"{type(exc).__name__}: {exc}", llm_provider="gemini",
                                      model=request.model)


def _mapped(model: str, error: Exception) -> Exception:
    try:  # LiteLLM raises the mapped exception (and returns one it already knows)
        return exception_type(model=model, original_exception=error, custom_llm_provider="vertex_ai_beta")
    except Exception as mapped:  # noqa: BLE001 - the mapping is the result
        return mapped
