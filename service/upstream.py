"""The calls to LiteLLM: credentials, retries, timeouts, and upstream errors as Anthropic errors."""
from __future__ import annotations

import asyncio
import copy
import logging
import os
import random
from typing import Any, AsyncIterator, Awaitable, Callable

# Before importing LiteLLM: use the bundled price map instead of fetching one at import.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import httpx  # noqa: E402
import litellm  # noqa: E402

from translator import AnthropicError, Spec, UpstreamCall, map_upstream_error  # noqa: E402

from .config import Settings  # noqa: E402

log = logging.getLogger("proxy.upstream")
litellm.suppress_debug_info = True
# The proxy retries by itself (only before any byte reached the client, never a 400).
litellm.num_retries = 0


def _skip_bookkeeping() -> None:
    """Switch off LiteLLM's success logging and cost calculation, which the proxy never reads.

    After every call LiteLLM prices the answer and builds a logging payload for its callbacks, on the
    event loop and again in worker threads that take the GIL from the next request. The proxy
    registers no callbacks and reports no cost, so this is pure overhead (bench/README.md has the
    figures). The handler bodies are replaced, not the wrappers around them, which restore LiteLLM's
    context variables; ``None`` is what the cost calculator returns when it cannot price a call.
    """
    from litellm.litellm_core_utils.litellm_logging import Logging

    async def skip_async(self: Any, *args: Any, **kwargs: Any) -> None:
        return None

    def skip(self: Any, *args: Any, **kwargs: Any) -> None:
        return None

    Logging._async_success_handler_body = skip_async
    Logging._success_handler_body = skip
    Logging.response_cost_calculator = skip
    litellm.disable_streaming_logging = True


_skip_bookkeeping()


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return text


def to_anthropic_error(exc: BaseException, spec: Spec, settings: Settings) -> AnthropicError:
    """Any exception from a LiteLLM call → the Anthropic error to answer with."""
    if isinstance(exc, AnthropicError):
        return exc
    original = getattr(exc, "original_exception", None)  # MidStreamFallbackError wraps the real one
    source = original if isinstance(original, BaseException) else exc
    names = [cls.__name__ for cls in type(source).__mro__]
    if source is not exc:
        names += [cls.__name__ for cls in type(exc).__mro__]
    status = getattr(source, "status_code", None) or getattr(exc, "status_code", None)
    message = scrub(str(source) or type(source).__name__, settings.secrets)
    error = map_upstream_error(spec.errors, class_names=names, status=status if isinstance(status, int) else None,
                               message=message)
    if error.status >= 500:
        log.warning("upstream failure %s → %s %s: %s", type(source).__name__, error.status, error.type, message[:500])
    return error


def call_arguments(call: UpstreamCall, settings: Settings) -> dict[str, Any]:
    kwargs = {k: v for k, v in call.kwargs.items() if k not in ("stream", "stream_options")}
    if call.route.target.startswith("gemini/"):
        if not settings.gemini_api_key:
            raise AnthropicError(500, "api_error", "The proxy has no Gemini API key: set GEMINI_API_KEY in "
                                                   "its environment or .env.")
        kwargs["api_key"] = settings.gemini_api_key
        if settings.gemini_api_base:
            kwargs["api_base"] = settings.gemini_api_base
    elif call.route.target.startswith("anthropic/") and settings.anthropic_api_key:
        kwargs["api_key"] = settings.anthropic_api_key
    return kwargs


async def with_retries(attempt: Callable[[], Awaitable[Any]], spec: Spec, settings: Settings,
                       wait_until: float | None = None) -> Any:
    """Run ``attempt``; retry rate limits and overloads with backoff, within the configured budget.

    A wait that the budget (or ``wait_until``, a loop time: a stream's grace period) cannot hold
    in full is not shortened: the error goes back at once, with its retry-after, so the client
    waits as long as the upstream asked.
    """
    loop = asyncio.get_running_loop()
    waited = 0.0
    for number in range(settings.upstream_retries + 1):
        try:
            return await attempt()
        except Exception as exc:  # noqa: BLE001 - every failure becomes an Anthropic error
            error = to_anthropic_error(exc, spec, settings)
            if error.status not in spec.errors.retry_statuses or number == settings.upstream_retries:
                raise error from None
            backoff = spec.errors.retry_backoff
            wait = backoff.first_seconds * backoff.factor ** number if error.retry_after is None else error.retry_after
            delay = wait + random.uniform(0, backoff.jitter_seconds)
            room = settings.retry_max_wait_seconds - waited
            if wait_until is not None:
                room = min(room, wait_until - loop.time())
            if delay > room:
                raise error from None
            await asyncio.sleep(delay)
            waited += delay
    raise AssertionError("unreachable")


async def open_stream(call: UpstreamCall, settings: Settings) -> tuple[Any, Any, dict[str, Any]]:
    """Start a stream and pull its first chunk, where LiteLLM raises the upstream's HTTP errors.

    Every answer is read as a stream, whether the client asked for one or not (see streaming.complete)."""
    stream = await litellm.acompletion(**call_arguments(call, settings), stream=True,
                                       stream_options={"include_usage": True})
    seen = _watch_raw(stream)
    try:
        async with asyncio.timeout(settings.first_byte_timeout_seconds):
            first = await stream.__anext__()
    except BaseException:
        await stream.aclose()
        raise
    return stream, first, seen


class UpstreamStreamBroken(Exception):
    """Gemini's stream held data that is not JSON (mapped in errors.yaml)."""


def _unparsed_tail(stream: Any) -> bool:
    # LiteLLM treats a line that is not JSON as the start of a fragmented chunk and buffers
    # everything after it; at the end it makes up a normal finish. What is left in that
    # buffer is the only sign that the answer was cut short.
    iterator = getattr(stream, "completion_stream", None)
    return getattr(iterator, "chunk_type", None) == "accumulated_json" and bool(getattr(iterator, "_json_buffer", None))


def _watch_raw(stream: Any) -> dict[str, Any]:
    """What LiteLLM's stream parser drops from Gemini's chunks, kept as it receives them.

    LiteLLM passes grounding on only with chunks that carry text, thinking or a tool call (Gemini
    often sends it on a last chunk without text, which LiteLLM replaces by a finish chunk of its
    own), and its streams never report Gemini's own finish reason (MALFORMED_FUNCTION_CALL,
    SAFETY, ...). The parser of this stream's iterator (there after the first chunk) is wrapped.
    """
    seen: dict[str, Any] = {"grounding": [], "finish_reason": None}
    make_call = getattr(stream, "make_call", None)
    if getattr(stream, "completion_stream", None) is not None or make_call is None:
        _keep_raw(getattr(stream, "completion_stream", None), seen)
        return seen

    async def make_call_kept(*args: Any, **kwargs: Any) -> Any:
        # The iterator is made by the first read: wrapped then, its first chunk is seen too.
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


def _raw_chunk(seen: dict[str, Any]) -> dict[str, Any]:
    """The kept parts as one last chunk, in LiteLLM's own field names."""
    native = {"native_finish_reason": seen["finish_reason"]} if seen["finish_reason"] else {}
    return {"vertex_ai_grounding_metadata": seen["grounding"],
            "choices": [{"index": 0, "delta": None, "provider_specific_fields": native}]}


async def chunks(stream: Any, first: Any, seen: dict[str, Any], settings: Settings) -> AsyncIterator[Any]:
    """The stream's chunks with the idle timeout LiteLLM does not enforce on streams, then what
    LiteLLM's parser dropped (grounding, Gemini's finish reason) as a chunk of its own: the
    translator reports searches and the stop reason at the end of the answer, so the end is soon enough."""
    try:
        chunk = first
        while True:
            yield chunk
            if getattr(chunk, "usage", None) is not None:
                # Usage comes last (include_usage); LiteLLM's iterator would only tidy up after it.
                break
            try:
                async with asyncio.timeout(settings.idle_timeout_seconds):
                    chunk = await stream.__anext__()
            except StopAsyncIteration:
                break
        if seen["grounding"] or seen["finish_reason"]:
            yield _raw_chunk(seen)
        if _unparsed_tail(stream):
            raise UpstreamStreamBroken("The upstream stream held a chunk that is not valid JSON.")
    finally:
        await stream.aclose()


GEMINI_API_BASE = "https://generativelanguage.googleapis.com/v1beta"


def count_tokens_locally(call: UpstreamCall) -> int:
    """A local estimate (LiteLLM's bundled tokenizer), used when Gemini's countTokens is not reachable."""
    return litellm.token_counter(model=call.route.target, messages=call.kwargs["messages"],
                                 tools=call.kwargs.get("tools"))


def _gemini_request_body(call: UpstreamCall) -> dict[str, Any]:
    """The generateContent body LiteLLM would send for this call, built by LiteLLM's own code
    (``litellm.acount_tokens`` would need google-genai and another api_base convention)."""
    from litellm.llms.gemini.chat.transformation import GoogleAIStudioGeminiConfig
    from litellm.llms.vertex_ai.gemini.transformation import transform_request_body

    model = call.route.gemini_name
    optional = GoogleAIStudioGeminiConfig().map_openai_params(
        {"tools": copy.deepcopy(call.kwargs["tools"])} if call.kwargs.get("tools") else {}, {}, model, False)
    return transform_request_body(messages=copy.deepcopy(call.kwargs["messages"]), model=model,
                                  optional_params=optional, custom_llm_provider="gemini", litellm_params={},
                                  cached_content=None)


async def count_tokens(call: UpstreamCall, settings: Settings, client: httpx.AsyncClient) -> tuple[int, str]:
    """Input tokens of the translated request: Gemini's countTokens when it answers, else a local
    estimate. Returns (count, "gemini" or "estimate")."""
    if call.route.target.startswith("gemini/") and settings.gemini_api_key:
        body = _gemini_request_body(call)
        request = {"model": f"models/{call.route.gemini_name}",
                   **{k: v for k, v in body.items() if k in ("contents", "system_instruction", "tools")}}
        url = f"{settings.gemini_api_base or GEMINI_API_BASE}/models/{call.route.gemini_name}:countTokens"
        try:
            response = await client.post(url, json={"generateContentRequest": request},
                                         headers={"x-goog-api-key": settings.gemini_api_key})
            if response.status_code == 200:
                return int(response.json()["totalTokens"]), "gemini"
            log.warning("Gemini countTokens answered %s; using the local estimate", response.status_code)
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            log.warning("Gemini countTokens failed (%s); using the local estimate", type(exc).__name__)
    return count_tokens_locally(call), "estimate"
