"""LiteLLM's answer chunks → the translator's own events, as h11 turns bytes into event classes.

This is the one place that knows LiteLLM's chunk shape (OpenAI's ``choices[].delta`` plus
LiteLLM's ``provider_specific_fields`` and ``vertex_ai_grounding_metadata``): :func:`read_chunk`
turns a chunk into a few small frozen events, and the stream state machine is keyed by their
types. A non-streamed answer becomes the one chunk its stream would add up to
(:func:`response_chunk`), so both kinds of answer go through the same reader and machine.

LiteLLM objects are read through :func:`field`, which takes attributes or mapping keys alike, so
the translator works on LiteLLM's response objects and on plain dicts without importing LiteLLM.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Protocol


@dataclass(frozen=True, slots=True)
class ThinkingDelta:
    """A piece of Gemini's thought summary."""

    text: str


@dataclass(frozen=True, slots=True)
class TextDelta:
    """A piece of the answer's text."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    """A new tool call (a piece with an id or a function name). ``id`` may be None (made up later);
    ``signature`` is Gemini's thought signature on it, if any."""

    index: int
    id: str | None
    name: str
    arguments: str
    signature: str | None


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """More argument text for the call at ``index`` (OpenAI-style fragments; Gemini sends calls whole)."""

    index: int
    arguments: str


@dataclass(frozen=True, slots=True)
class Grounding:
    """Google Search grounding metadata Gemini reported (on any chunk, in pieces)."""

    metadata: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class UrlContext:
    """Gemini's urlContextMetadata: the pages its URL context tool read (on any chunk, in pieces)."""

    metadata: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Finish:
    """How the upstream says the answer ended: LiteLLM's finish reason and/or Gemini's own."""

    reason: str | None
    native: str | None


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts as LiteLLM reports them (with ``include_usage``, on the last chunk)."""

    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    reasoning_tokens: int = 0  # of completion_tokens, Gemini's thoughtsTokenCount
    cache_written: int = 0     # of cached_tokens, written to an explicit cache for this call (by the proxy)
    cache_ttl: int = 300       # that cache's TTL in seconds


@dataclass(frozen=True, slots=True)
class End:
    """The upstream answer is over (``StreamTranslator.finish``); never read from a chunk."""


@dataclass(frozen=True, slots=True)
class HandOver:
    """The model declined and the next of the request's ``fallbacks`` answers from here
    (``StreamTranslator.hand_over``); never read from a chunk."""

    call: Any       # the fallback's UpstreamCall
    model: str      # its canonical id


UpstreamEvent = (ThinkingDelta | TextDelta | ToolCallStart | ToolCallDelta | Grounding | UrlContext | Finish | Usage
                 | End | HandOver)


def field(obj: Any, name: str, default: Any = None) -> Any:
    """One field of a LiteLLM object or dict; ``default`` when absent or None."""
    value = fields(obj).get(name)
    return default if value is None else value


class Fields(Protocol):
    """What :func:`fields` returns: a mapping, or an object's attributes, read with ``.get``."""

    def get(self, name: str, /) -> Any: ...


def fields(obj: Any) -> Fields:
    """All of ``obj``'s fields as one mapping, to read several (:func:`field` reads one).

    On the hot path of every stream chunk: LiteLLM's pydantic objects keep most fields in their
    extra dict (all of a streaming choice's), so one merge beats a lookup in two dicts per field."""
    if obj is None:
        return _EMPTY
    if type(obj) is dict:
        return obj
    extra: Any = getattr(obj, "__pydantic_extra__", _NO_EXTRA)  # pydantic's extra fields: a dict, or None
    if extra is not _NO_EXTRA:
        own = obj.__dict__
        if not extra:
            return own
        return {**extra, **own} if own else extra
    return obj if isinstance(obj, Mapping) else _Attributes(obj)


class _Attributes:
    """``.get`` over an object's attributes (neither a dict nor pydantic)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any):
        self.obj = obj

    def get(self, name: str, default: Any = None) -> Any:
        return getattr(self.obj, name, default)


_EMPTY: Mapping[str, Any] = {}
_NO_EXTRA = object()


def read_chunk(chunk: Any) -> list[UpstreamEvent]:
    """The events of one LiteLLM chunk (a ``ModelResponseStream`` or the same as a dict), in the
    order the answer shows them: usage, then per choice its finish, thinking, text and tool calls,
    then grounding and URL context. Raises nothing on odd chunks: absent or empty fields give no event."""
    events: list[UpstreamEvent] = []
    top = fields(chunk)
    raw = top.get("usage")
    if raw is not None:
        events.append(Usage(field(raw, "prompt_tokens", 0), field(field(raw, "prompt_tokens_details"), "cached_tokens", 0),
                            field(raw, "completion_tokens", 0),
                            field(field(raw, "completion_tokens_details"), "reasoning_tokens", 0),
                            field(raw, "cache_creation_input_tokens", 0), field(raw, "cache_creation_ttl", 300)))
    for choice in top.get("choices") or ():
        choice = fields(choice)
        reason = choice.get("finish_reason")
        native = field(choice.get("provider_specific_fields"), "native_finish_reason")
        if reason or native:
            events.append(Finish(reason, native))
        delta = choice.get("delta")
        if delta is None:
            continue
        delta = fields(delta)
        thinking = delta.get("reasoning_content")
        if thinking:
            events.append(ThinkingDelta(thinking))
        text = delta.get("content")
        if text:
            events.append(TextDelta(text))
        for call in delta.get("tool_calls") or ():
            _read_tool_call(call, events)
    grounding = top.get("vertex_ai_grounding_metadata")
    if grounding:
        events.append(Grounding(tuple(grounding)))
    pages = top.get("vertex_ai_url_context_metadata")
    if pages:
        events.append(UrlContext(tuple(pages)))
    return events


def _read_tool_call(call: Any, events: list[UpstreamEvent]) -> None:
    function = field(call, "function")
    call_id, name = field(call, "id"), field(function, "name")
    arguments = field(function, "arguments", "")
    if call_id or name:
        events.append(ToolCallStart(field(call, "index", 0), call_id, name or "", arguments,
                                    field(field(call, "provider_specific_fields"), "thought_signature")))
    elif arguments:
        events.append(ToolCallDelta(field(call, "index", 0), arguments))


def response_chunk(response: Any) -> dict[str, Any]:
    """A non-streamed LiteLLM answer (``ModelResponse`` or dict) as the one chunk its stream would
    add up to: the message becomes the delta, and each tool call gets its own index."""
    choices = []
    for choice in field(response, "choices", ())[:1]:
        message = field(choice, "message")
        calls = [{"index": n, "id": field(call, "id"), "function": field(call, "function"),
                  "provider_specific_fields": field(call, "provider_specific_fields")}
                 for n, call in enumerate(field(message, "tool_calls", ()))]
        choices.append({"index": 0, "finish_reason": field(choice, "finish_reason"),
                        "provider_specific_fields": field(choice, "provider_specific_fields"),
                        "delta": {"reasoning_content": field(message, "reasoning_content"),
                                  "content": field(message, "content"), "tool_calls": calls}})
    return {"choices": choices, "usage": field(response, "usage"),
            "vertex_ai_grounding_metadata": field(response, "vertex_ai_grounding_metadata"),
            "vertex_ai_url_context_metadata": field(response, "vertex_ai_url_context_metadata")}
