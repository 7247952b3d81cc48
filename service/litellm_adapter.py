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
import os
from typing import Any, Callable

# Before importing LiteLLM: use the bundled price map instead of fetching one at import.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # noqa: E402
from litellm import Router  # noqa: E402
from litellm.litellm_core_utils.litellm_logging import Logging  # noqa: E402
from litellm.litellm_core_utils.prompt_templates.image_handling import _remote_urls_to_inline  # noqa: E402
from litellm.litellm_core_utils.streaming_handler import CustomStreamWrapper  # noqa: E402
from litellm.llms.gemini.chat.transformation import GoogleAIStudioGeminiConfig  # noqa: E402
from litellm.llms.vertex_ai.gemini.transformation import should_inline_remote_media, transform_request_body  # noqa: E402
from litellm.llms.vertex_ai.gemini.vertex_and_google_ai_studio_gemini import ModelResponseIterator  # noqa: E402
from litellm.router_utils.cooldown_cache import CooldownCache  # noqa: E402
from litellm.types.router import Deployment, RouterRateLimitError as NoDeployment  # noqa: E402

VERSION = importlib.metadata.version("litellm")
TESTED_WITH = "1.106.2"

litellm.suppress_debug_info = True
# The proxy retries by itself (only before any byte reached the client, never a 400).
litellm.num_retries = 0

__all__ = ["Deployment", "LiteLLMMoved", "NoDeployment", "Router", "VERSION", "acompletion", "check", "gemini_request_body",
           "prices", "token_counter", "unparsed_tail", "watch_raw"]


class LiteLLMMoved(RuntimeError):
    """An internal of LiteLLM the proxy relies on is not where it was."""


def _iterator_probe() -> ModelResponseIterator:
    return ModelResponseIterator(streaming_response=iter(()), sync_stream=False, logging_obj=None)


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
    ("CustomStreamWrapper(make_call=..., completion_stream=...)",
     "seeing Gemini's raw stream chunks (web-search grounding, Gemini's finish reason)",
     lambda: {"make_call", "completion_stream"} <= set(inspect.signature(CustomStreamWrapper.__init__).parameters)),
    ("gemini ModelResponseIterator.chunk_parser / chunk_type / accumulated_json",
     "keeping grounding and finish reasons, and telling a stream cut short by a broken chunk",
     lambda: (callable(getattr(_iterator_probe(), "chunk_parser", None))
              and _iterator_probe().chunk_type == "valid_json"
              and _iterator_probe().accumulated_json == "")),
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


def unparsed_tail(stream: Any) -> bool:
    """Whether a finished stream left an unparsed fragment behind: the answer was cut short.

    LiteLLM treats a line that is not JSON as the start of a fragmented chunk and buffers
    everything after it; at the end it makes up a normal finish. What is left in that buffer is
    the only sign."""
    iterator = getattr(stream, "completion_stream", None)
    return getattr(iterator, "chunk_type", None) == "accumulated_json" and bool(getattr(iterator, "accumulated_json", ""))


def watch_raw(stream: Any) -> dict[str, Any]:
    """What LiteLLM's stream parser drops from Gemini's chunks, kept as it receives them.

    LiteLLM passes grounding on only with chunks that carry text, thinking or a tool call (Gemini
    often sends it on a last chunk without text, which LiteLLM replaces by a finish chunk of its
    own), and its streams never report Gemini's own finish reason (MALFORMED_FUNCTION_CALL,
    SAFETY, ...). The parser of this stream's iterator (made by the first read) is wrapped.
    """
    seen: dict[str, Any] = {"grounding": [], "finish_reason": None}
    make_call = getattr(stream, "make_call", None)
    if getattr(stream, "completion_stream", None) is not None or make_call is None:
        _keep_raw(getattr(stream, "completion_stream", None), seen)
        return seen

    async def make_call_kept(*args: Any, **kwargs: Any) -> Any:
        iterator = await make_call(*args, **kwargs)
        _keep_raw(iterator, seen)
        return iterator

    stream.make_call = make_call_kept
    return seen


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
