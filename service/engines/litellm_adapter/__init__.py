"""The one place (this package) that imports LiteLLM or reaches into its internals.

The proxy uses LiteLLM as the engine that knows Gemini: its code builds each Gemini request and
reads each stream line (:mod:`.gemini`; the proxy's own HTTP client carries them), and
``acompletion`` serves the other providers an operator enables. Much of that is LiteLLM's private
API. A LiteLLM release that moves a part would make the proxy lose web-search results, truncation
detection or milliseconds per request without any error, so :func:`check` probes each one when the
app is built and refuses to start, naming the LiteLLM version and what moved.
"""
from __future__ import annotations

import functools
import importlib.metadata
import os
from typing import Any

# Before importing LiteLLM: use the bundled price map instead of fetching one at import.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # noqa: E402
import litellm.utils as litellm_utils  # noqa: E402
from litellm import Router  # noqa: E402
from litellm.litellm_core_utils.litellm_logging import Logging  # noqa: E402
from litellm.types.router import Deployment, RouterRateLimitError as NoDeployment  # noqa: E402

from .gemini import (HISTORY, GeminiParser, GeminiRequest, cache_resource, cached_request,  # noqa: E402
                     connection_error, gemini_body, gemini_parts, gemini_request, http_error)
from .probes import RELIED_ON  # noqa: E402
from .vertex import count_tokens_body as vertex_count_body, vertex_parts, vertex_url  # noqa: E402

VERSION = importlib.metadata.version("litellm")
TESTED_WITH = "1.110.2"

litellm.suppress_debug_info = True
# The proxy retries by itself (only before any byte reached the client, never a 400).
litellm.num_retries = 0

__all__ = ["Deployment", "GeminiParser", "HISTORY", "GeminiRequest", "LiteLLMMoved", "NoDeployment", "Router", "VERSION", "acompletion",
           "cache_resource", "cached_request", "check", "connection_error", "gemini_body", "gemini_parts", "gemini_request",
           "http_error", "prices", "token_counter", "vertex_count_body", "vertex_parts", "vertex_url"]


class LiteLLMMoved(RuntimeError):
    """An internal of LiteLLM the proxy relies on is not where it was."""


def check() -> None:
    """Refuse to start when something in :data:`RELIED_ON` moved; then switch off the bookkeeping."""
    for what, why, holds in RELIED_ON:
        try:
            ok, failure = holds(), ""
        except Exception as exc:  # noqa: BLE001 - any failure of the probe means it moved
            ok, failure = False, f" ({type(exc).__name__}: {exc})"
        if not ok:
            raise LiteLLMMoved(f"LiteLLM {VERSION}: {what} is not where the proxy expects it (needed for {why})"
                               f"{failure}. The proxy is tested with litellm=={TESTED_WITH}; install that version.")
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

    Logging._async_success_handler_body = skip_async  # type: ignore[method-assign]
    Logging._success_handler_body = skip  # type: ignore[method-assign]
    Logging.response_cost_calculator = skip  # type: ignore[method-assign]
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
