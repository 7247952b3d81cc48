"""LiteLLM answer (OpenAI chat shape) → Anthropic Message: blocks, stop reason, usage.

LiteLLM objects are read through :func:`field`, which takes attributes or mapping keys alike, so
the translator works on LiteLLM's response objects and on plain dicts without importing LiteLLM.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping

from .errors import AnthropicError
from .request import UpstreamCall
from .signatures import encode_tool_id, thinking_signature
from .spec import Spec
from .tables import StopReasonsTable


def field(obj: Any, name: str, default: Any = None) -> Any:
    # On the hot path of every stream chunk: plain dicts first, then pydantic objects (LiteLLM's)
    # by their instance and extra dicts, which avoids pydantic raising AttributeError for
    # absent attributes such as ``usage`` on most chunks.
    if obj is None:
        return default
    if type(obj) is dict:
        value = obj.get(name)
    else:
        extra = getattr(obj, "__pydantic_extra__", _NO_EXTRA)
        if extra is not _NO_EXTRA:
            value = obj.__dict__.get(name, _ABSENT)
            if value is _ABSENT:
                value = extra.get(name) if extra else None
        elif isinstance(obj, Mapping):
            value = obj.get(name)
        else:
            value = getattr(obj, name, None)
    return default if value is None else value


_NO_EXTRA = object()
_ABSENT = object()


# Blocks that make an answer (thinking alone, or search results alone, are none).
ANSWER_BLOCKS = ("text", "tool_use")


@dataclass(frozen=True)
class Outcome:
    """How the answer ended: an Anthropic stop_reason, or ``malformed`` (retry or error)."""

    stop_reason: str
    native: str | None

    @property
    def malformed(self) -> bool:
        return self.stop_reason == "malformed"


def outcome(finish_reason: str | None, native: str | None, *, tool_calls: bool, visible: bool,
            table: StopReasonsTable, no_content_asked: bool = False) -> Outcome:
    """How an answer ended, by stop_reasons.yaml.

    Gemini's native reason decides first, then LiteLLM's. An answer with tool calls stops with
    ``with_tool_calls`` (Gemini sends calls whole, and LiteLLM's streams report nothing else).
    ``malformed`` is kept only for an answer with nothing visible (no text, no tool call): that
    is what gets retried, then answered with an error. ``no_content_asked`` is max_tokens 0.
    """
    if no_content_asked:
        return Outcome("max_tokens", native)
    if tool_calls:
        return Outcome(table.with_tool_calls, native)
    reason = table.native.get(native) if native else None
    if reason is None:
        reason = table.litellm.get(finish_reason or "", table.default)
    if not visible and reason == "end_turn":
        reason = table.empty_answer
        native = native or "empty answer"
    if visible and reason == "malformed":
        reason = table.default
    return Outcome(reason, native)


def unusable_answer_error(result: Outcome, table: StopReasonsTable) -> AnthropicError:
    """The error answered for an answer ``outcome`` calls malformed (stop_reasons.yaml ``malformed_error``)."""
    rule = table.malformed_error
    return AnthropicError(rule.status, rule.type, rule.message.format(reason=result.native))


def stop_details(result: Outcome, table: StopReasonsTable, finish_reason: str | None) -> dict | None:
    if result.stop_reason != "refusal":
        return None
    details = dict(table.refusal_details)
    details["explanation"] = details["explanation"].format(reason=result.native or finish_reason or "unknown")
    return details


def usage(raw: Any, searches: int = 0) -> dict[str, Any]:
    """Anthropic usage from LiteLLM's: input excludes cached tokens, output includes thinking."""
    prompt = field(raw, "prompt_tokens", 0)
    cached = field(field(raw, "prompt_tokens_details"), "cached_tokens", 0)
    out: dict[str, Any] = {
        "input_tokens": max(prompt - cached, 0),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "output_tokens": field(raw, "completion_tokens", 0),
    }
    if searches:
        out["server_tool_use"] = {"web_search_requests": searches, "web_fetch_requests": 0}
    return out


def search_blocks(grounding: Any, message_id: str) -> list[dict[str, Any]]:
    """Gemini's Google Search grounding as Anthropic web search blocks.

    A ``server_tool_use`` per query Gemini ran (repeats, as when a stream reports the same grounding
    twice, counted once), each followed by its ``web_search_tool_result``: clients such as Claude
    Code count searches and list pages from these blocks. Gemini does not say which query found
    which page, so the pages go with the first query. Pages carry no ``encrypted_content`` (there
    is none to give; a client that sends the blocks back has them dropped).
    """
    queries: list[str] = []
    pages: dict[str, dict[str, Any]] = {}
    for metadata in grounding or ():
        for query in field(metadata, "webSearchQueries", []):
            if isinstance(query, str) and query and query not in queries:
                queries.append(query)
        for chunk in field(metadata, "groundingChunks", []):
            web = field(chunk, "web")
            url = field(web, "uri")
            if isinstance(url, str) and url and url not in pages:
                pages[url] = {"type": "web_search_result", "url": url, "title": str(field(web, "title", "")),
                              "encrypted_content": "", "page_age": None}
    blocks: list[dict[str, Any]] = []
    for n, query in enumerate(queries):
        tool_id = f"srvtoolu_{message_id.removeprefix('msg_')}_{n}"
        blocks.append({"type": "server_tool_use", "id": tool_id, "name": "web_search", "input": {"query": query}})
        blocks.append({"type": "web_search_tool_result", "tool_use_id": tool_id,
                       "content": list(pages.values()) if n == 0 else []})
    return blocks


def tool_use_block(call: Any, index: int, call_: UpstreamCall, message_id: str) -> dict[str, Any]:
    function = field(call, "function")
    signature = field(field(call, "provider_specific_fields"), "thought_signature")
    arguments = field(function, "arguments", "") or "{}"
    try:
        parsed = json.loads(arguments)
    except json.JSONDecodeError:
        parsed = {}
    return {
        "type": "tool_use",
        "id": encode_tool_id(field(call, "id"), signature, f"{message_id}_{index}"),
        "name": call_.tools.to_anthropic(field(function, "name", "")),
        "input": parsed if isinstance(parsed, dict) else {},
    }


def first_signature(tool_calls: list) -> str | None:
    for call in tool_calls[:1]:
        return field(field(call, "provider_specific_fields"), "thought_signature")
    return None


def translate_response(response: Any, call: UpstreamCall, spec: Spec, message_id: str) -> tuple[dict, Outcome]:
    """The Anthropic Message for a non-streaming LiteLLM response, and how it ended."""
    choices = field(response, "choices", [])
    choice = choices[0] if choices else None
    message = field(choice, "message")
    finish = field(choice, "finish_reason")
    native = field(field(choice, "provider_specific_fields"), "native_finish_reason")
    tool_calls = list(field(message, "tool_calls", []))
    if call.tools.disable_parallel:
        tool_calls = tool_calls[:1]
    text = field(message, "content", "")
    reasoning = field(message, "reasoning_content", "")
    content: list[dict[str, Any]] = []
    if reasoning:
        # Same rule as the stream: the signature rides along when a tool call follows directly.
        follows = first_signature(tool_calls) if not text else None
        content.append({"type": "thinking", "thinking": reasoning, "signature": thinking_signature(follows)})
    if text and call.max_tokens > 0:
        content.append({"type": "text", "text": text})
    if call.max_tokens > 0:
        content.extend(tool_use_block(c, i, call, message_id) for i, c in enumerate(tool_calls))
        # After the text, where a stream can put them too (Gemini's grounding comes with its last chunk).
        searched = search_blocks(field(response, "vertex_ai_grounding_metadata"), message_id)
    else:
        content, searched = [], []
    result = outcome(finish, native, tool_calls=bool(tool_calls),
                     visible=any(b["type"] in ANSWER_BLOCKS for b in content), table=spec.stop_reasons,
                     no_content_asked=call.max_tokens == 0)
    content += searched
    message_out = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": call.route.requested,
        "content": content,
        "stop_reason": result.stop_reason,
        "stop_sequence": None,
        "stop_details": stop_details(result, spec.stop_reasons, finish),
        "usage": usage(field(response, "usage"), searches=len(searched) // 2),
    }
    return message_out, result
