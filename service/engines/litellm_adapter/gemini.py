"""Gemini without LiteLLM's call machinery: LiteLLM's code builds the request and reads the stream,
the proxy's own pooled HTTP client carries them (service/engines/answers.py).

Per call this skips what ``litellm.acompletion`` does around the transformation: its logging
object, model-info lookups, HTTP client wrappers and the CustomStreamWrapper. Per chunk it skips
LiteLLM's pydantic response objects: each line is read by LiteLLM's own Gemini helpers (text and
thought parts, tool calls with their ids and signatures, finish-reason mapping) into a chunk of
plain dicts in LiteLLM's field names, and usage, which Gemini repeats on every chunk and which
costs LiteLLM ~40 µs to build, is built once, from the last report (bench/README.md has figures).
"""
from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

import litellm
from litellm.litellm_core_utils.exception_mapping_utils import exception_type
from litellm.llms.vertex_ai.common_utils import VertexAIError
from litellm.llms.vertex_ai.gemini.transformation import get_supports_system_message, transform_request_body
from litellm.llms.vertex_ai.gemini.vertex_and_google_ai_studio_gemini import (ModelResponseIterator, VertexGeminiConfig,
                                                                              VertexLLM, _served_model_name)
from litellm.litellm_core_utils.prompt_templates.common_utils import is_function_call
from litellm.utils import get_optional_params

from translator import json_bytes

from .history import ConvertedHistory
from .mapped_params import MappedParams

GEMINI = VertexGeminiConfig()


def optional_params(model: str, provider: str, params: dict[str, Any]) -> dict[str, Any]:
    """LiteLLM's mapped parameters of a streamed call of ``model`` with ``params``, fresh."""
    optional = get_optional_params(model=model, custom_llm_provider=provider, stream=True,
                                   stream_options={"include_usage": True}, **params)
    optional.pop("stream", None)
    return optional


MAPPED_PARAMS = MappedParams(64, optional_params)   # the same tools on every turn of a session: mapped once
HISTORY = ConvertedHistory(32 << 20)   # the same history on every turn: converted once (app.py sizes it)
MESSAGE_CONVERTERS = {"gemini": litellm.GoogleAIStudioGeminiConfig(), "vertex_ai": litellm.VertexGeminiConfig()}


@dataclass(frozen=True)
class GeminiRequest:
    """One streamGenerateContent call, as LiteLLM would send it."""

    url: str
    headers: dict[str, str]
    payload: dict[str, Any] | bytes  # the body; a dict is written when first sent (most calls name a context
    #                                  cache and send only part of it: service.engines.context_cache)
    model: str                       # Gemini's name, without the provider prefix
    optional_params: dict[str, Any]  # LiteLLM's mapped parameters, which its stream reader consults
    cache_key: str | None = None     # the registry key of the context cache the call names (service.engines.context_cache)
    cache_written: int = 0           # tokens the proxy wrote to that cache for this call
    cache_ttl: int = 0               # its TTL in seconds (5 minutes or 1 hour, as Anthropic reports writes)
    upstream: str = "The Gemini API"  # who answers, as errors.yaml's {upstream} names it ("Vertex AI")

    @functools.cached_property
    def body(self) -> bytes:
        """The body as sent (compact JSON)."""
        return self.payload if isinstance(self.payload, bytes) else json_bytes(self.payload)


def gemini_body(kwargs: dict[str, Any], provider: str = "gemini") -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Gemini's model name, LiteLLM's mapped parameters and the generateContent body for
    ``litellm.acompletion``'s ``kwargs``, built by LiteLLM's own parameter mapping and message and
    tool transformation (the same body serves countTokens); ``provider`` "vertex_ai" for Vertex's.
    The history's segments converted on an earlier turn come from :data:`HISTORY`."""
    model = kwargs["model"].split("/", 1)[1]
    params = {k: v for k, v in kwargs.items() if k not in ("model", "stream", "stream_options")}
    optional = MAPPED_PARAMS.get(model, provider, params)
    system, rest = _system_apart(kwargs["messages"], model, provider)
    head, covered = HISTORY.head(rest, model, provider, functools.partial(_convert, model=model, provider=provider))
    # A list of its own: LiteLLM pops the system messages out of the one it is given, and the same
    # call is built again for a retry, the next key or a fallback (acompletion leaves it whole too).
    body = cast(dict[str, Any], transform_request_body(
        messages=system + rest[covered:], model=model, optional_params=dict(optional),
        custom_llm_provider=cast(Any, provider), litellm_params={}, cached_content=None))
    if covered:
        body["contents"] = head + body["contents"]
    return model, optional, body


def _system_apart(messages: list[Any], model: str, provider: str) -> tuple[list[Any], list[Any]]:
    """The system messages, which LiteLLM takes out into the system instruction wherever they stand
    (when the model has one), and the rest; everything as the rest when it does not."""
    if not get_supports_system_message(model=model, custom_llm_provider=cast(Any, provider)):
        return [], list(messages)
    return [m for m in messages if m.get("role") == "system"], [m for m in messages if m.get("role") != "system"]


def _convert(messages: list[Any], model: str, provider: str) -> list[dict[str, Any]]:
    """LiteLLM's conversion of messages into Gemini contents, as ``transform_request_body`` calls it."""
    converter = MESSAGE_CONVERTERS["gemini" if provider == "gemini" else "vertex_ai"]
    return cast(list[dict[str, Any]], converter.transform_messages(messages=messages, model=model, litellm_params={}))


def gemini_request(kwargs: dict[str, Any], api_key: str, api_base: str | None) -> GeminiRequest:
    """The request ``litellm.acompletion(**kwargs, stream=True)`` would make, built by the same
    LiteLLM functions (:func:`gemini_body`, then its URL and headers)."""
    return gemini_parts(kwargs, api_key, api_base)[0]


# What a generate call naming a context cache may not carry: the cache holds them (Gemini answers 400).
CACHED_HEAD = ("system_instruction", "systemInstruction", "tools", "toolConfig", "tool_config")


def gemini_parts(kwargs: dict[str, Any], api_key: str, api_base: str | None) -> tuple[GeminiRequest, dict[str, Any]]:
    """:func:`gemini_request` and the body it sends, as a dict (which a context cache splits)."""
    model, optional, body = gemini_body(kwargs)
    auth, url = VertexLLM()._get_token_and_url(
        model=model, auth_header=None, gemini_api_key=api_key, vertex_project=None, vertex_location=None,
        vertex_credentials=None, stream=True, custom_llm_provider="gemini", api_base=api_base or None)
    headers = GEMINI.validate_environment(headers=None, model=model, messages=[], optional_params=optional,
                                          litellm_params={}, api_key=auth)
    return GeminiRequest(url, headers, body, model, optional), body


def cache_resource(model: str, body: dict[str, Any], contents: int, ttl_seconds: int) -> dict[str, Any]:
    """The ``cachedContents`` create body holding the call's head (system instruction, tools, tool
    config) and its first ``contents`` contents; ``model`` as the upstream names it (AI Studio's
    ``models/{m}``, Vertex's full resource name)."""
    head = {name: body[name] for name in CACHED_HEAD if name in body}
    return {"model": model, **head, "contents": body["contents"][:contents],
            "ttl": f"{ttl_seconds}s"}


def cached_request(request: GeminiRequest, body: dict[str, Any], contents: int, name: str, key: str,
                   written: int, ttl_seconds: int) -> GeminiRequest:
    """The call naming cache ``name`` (which holds the head and the first ``contents`` contents): only
    the rest of the body is sent."""
    rest = {k: v for k, v in body.items() if k not in CACHED_HEAD}
    rest["contents"] = body["contents"][contents:]
    rest["cachedContent"] = name
    return dataclasses.replace(request, payload=rest, cache_key=key, cache_written=written,
                               cache_ttl=ttl_seconds)


class GeminiParser:
    """Lines of a Gemini stream → chunks in LiteLLM's shape (``choices[].delta``, ``usage``,
    ``vertex_ai_grounding_metadata``). LiteLLM's iterator splits the lines and joins fragmented JSON;
    its per-chunk parser is replaced by :meth:`_chunk`."""

    def __init__(self, request: GeminiRequest):
        self.model = request.model
        self.cache_written, self.cache_ttl = request.cache_written, request.cache_ttl
        # The iterator reads only these of LiteLLM's logging object (the proxy has none: no callbacks).
        logging_obj = SimpleNamespace(litellm_params={}, optional_params=request.optional_params)
        self.iterator = ModelResponseIterator(streaming_response=None, sync_stream=False,
                                              logging_obj=cast(Any, logging_obj))
        self.iterator.chunk_parser = self._chunk  # type: ignore[method-assign]
        self.function_call = is_function_call(request.optional_params)
        self.tool_index = 0
        self.saw_tool_calls = False
        self.finish_reason: str | None = None    # Gemini's own (STOP, MAX_TOKENS, SAFETY, ...)
        self.blocked = False                     # Gemini refused the prompt (promptFeedback)
        self.grounding: list[Any] = []
        self.url_context: list[Any] = []         # urlContextMetadata: the pages Gemini's URL context read
        self.usage_report: dict[str, Any] | None = None
        self.platform = ""                       # "vertex_ai/" on Vertex: its signatures are its own (Route.signer)

    def parse(self, line: str) -> Any:
        """The chunk of one line, or None (a blank line, a fragment held back)."""
        try:
            return self.iterator._common_chunk_parsing_logic(chunk=line)
        except VertexAIError as exc:  # an error Gemini sent inside the stream (a 429 after a 200)
            raise _mapped(self.model, exc) from None
        except ValueError as exc:  # what LiteLLM's own iterator turns a bad chunk into
            raise RuntimeError(f"Error parsing chunk: {exc},\nReceived chunk: {line[:200]}") from None

    def close(self) -> list[Any]:
        """The chunks due at the end: the last value held back by a fragment (if whole now), then
        one with the usage, Gemini's finish reason and all grounding metadata (LiteLLM's field names)."""
        last = []
        if self.iterator.chunk_type == "accumulated_json" and self.iterator.accumulated_json:
            held = self.iterator.handle_accumulated_json_chunk(chunk="", is_final=True)
            last += [held] if held is not None else []
        native = {"native_finish_reason": self.finish_reason} if self.finish_reason else {}
        usage = GEMINI._calculate_usage(completion_response=cast(Any, self.usage_report)) if self.usage_report else None
        if usage is not None and self.cache_written:  # what the proxy wrote to the cache this call names
            extended: Any = usage  # LiteLLM's Usage keeps extra fields its type does not declare
            extended.cache_creation_input_tokens = self.cache_written
            extended.cache_creation_ttl = self.cache_ttl
        return last + [{"usage": usage, "vertex_ai_grounding_metadata": self.grounding,
                        "vertex_ai_url_context_metadata": self.url_context,
                        "choices": [{"index": 0, "delta": None, "provider_specific_fields": native}]}]

    def complete(self) -> bool:
        """Gemini ends every whole answer with a finish reason (or refuses the prompt); a stream cut
        short just stops."""
        return self.finish_reason is not None or self.blocked

    def broken(self) -> bool:
        """Whether the stream ended inside a chunk: LiteLLM takes a line that is not JSON for the
        start of a fragmented chunk and buffers what follows; a buffer left at the end is the only sign."""
        return self.iterator.chunk_type == "accumulated_json" and bool(self.iterator.accumulated_json)

    def _chunk(self, chunk: dict[str, Any]) -> Any:
        raw = chunk
        if "error" in raw:
            ModelResponseIterator._check_streaming_error(raw)
        if "usageMetadata" in raw:  # a refused prompt is counted too
            self.usage_report = raw
        if "promptFeedback" in raw:  # what LiteLLM's filter check reads (a chunk without it passes)
            blocked = GEMINI.check_prompt_level_content_filter(
                processed_chunk=cast(Any, raw), response_id=raw.get("responseId"), model=_served_model_name(raw.get("modelVersion")))
            if blocked is not None:  # the prompt was refused: the answer is whole, and says so
                self.blocked = True
                return blocked
        choices = []
        for number, candidate in enumerate(raw.get("candidates") or ()):
            self.grounding += [candidate["groundingMetadata"]] if candidate.get("groundingMetadata") else []
            self.url_context += [candidate["urlContextMetadata"]] if candidate.get("urlContextMetadata") else []
            self.finish_reason = candidate.get("finishReason") or self.finish_reason
            if "content" in candidate or "finishReason" in candidate:
                choices.append(self._choice(number, candidate))
        served = _served_model_name(raw.get("modelVersion"))
        return {"model": served and self.platform + served, "choices": choices}

    def _choice(self, number: int, candidate: dict[str, Any]) -> dict[str, Any]:
        """One candidate as LiteLLM's streaming choice, by LiteLLM's own part readers."""
        parts = (candidate.get("content") or {}).get("parts")
        delta: dict[str, Any] = {}
        message: dict[str, Any] = {}
        if parts:
            # Thought parts' text (LiteLLM's thinking blocks hold the same text, so its fallback
            # from blocks to reasoning_content never adds any here).
            text, thinking = GEMINI.get_assistant_content_message(parts=parts)
            # Signatures stay in provider_specific_fields: the translator keeps them apart from tool ids.
            function, tools, self.tool_index = VertexGeminiConfig._transform_parts(
                parts=parts, cumulative_tool_call_idx=self.tool_index, is_function_call=self.function_call,
                thought_signature_in_tool_call_id=False)
            message = {k: v for k, v in (("tool_calls", tools), ("function_call", function)) if v}
            delta = {"content": text, "reasoning_content": thinking, "tool_calls": tools}
        reason = VertexGeminiConfig._check_finish_reason(cast(Any, message), candidate.get("finishReason"))
        self.saw_tool_calls = self.saw_tool_calls or bool(message.get("tool_calls"))
        if self.saw_tool_calls and reason == "stop":  # as LiteLLM: a stream that called tools ends with tool_calls
            reason = "tool_calls"
        return {"index": candidate.get("index", number), "finish_reason": reason, "delta": delta}


def http_error(request: GeminiRequest, status: int, text: str, headers: Any) -> Exception:
    """Gemini's HTTP error as the exception LiteLLM raises for it (RateLimitError, ... with status)."""
    error = VertexAIError(status_code=status, message=GEMINI.translate_exception_str(text), headers=dict(headers))
    mapped = _mapped(request.model, error)
    setattr(mapped, "upstream", request.upstream)   # read by service.engines.upstream.to_anthropic_error
    return mapped


def connection_error(request: GeminiRequest, exc: BaseException) -> Exception:
    """A transport failure (refused, reset, DNS) as LiteLLM's APIConnectionError."""
    return litellm.APIConnectionError(message=f"{type(exc).__name__}: {exc}", llm_provider="gemini",
                                      model=request.model)


def _mapped(model: str, error: Exception) -> Exception:
    try:  # LiteLLM raises the mapped exception (and returns one it already knows)
        return exception_type(model=model, original_exception=error, custom_llm_provider="vertex_ai_beta")
    except Exception as mapped:  # noqa: BLE001 - the mapping is the result
        return mapped
