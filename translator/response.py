"""The rules of an Anthropic answer that are not blocks of text: how it ended, usage, web searches.

Both kinds of answer get them from the stream translator (``stream.py``); a non-streamed answer
is its stream folded (``collect.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .chunks import Usage, field
from .errors import AnthropicError
from .tables import StopReasonsTable


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
            table: StopReasonsTable, no_content_asked: bool = False, broken_call: str | None = None) -> Outcome:
    """How an answer ended, by stop_reasons.yaml.

    Gemini's native reason decides first, then LiteLLM's. An answer with tool calls stops with
    ``with_tool_calls`` (Gemini sends calls whole, and LiteLLM's streams report nothing else).
    ``malformed`` is kept only for an answer with nothing visible (no text, no tool call), or one
    with a call that broke its strict tool's schema (``broken_call`` says how): that is what gets
    retried, then answered with an error. ``no_content_asked`` is max_tokens 0.
    """
    if no_content_asked:
        return Outcome("max_tokens", native)
    if broken_call:
        return Outcome("malformed", broken_call)
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
    """The :class:`AnthropicError` to answer (returned, not raised) for an answer ``outcome`` calls
    malformed (stop_reasons.yaml ``malformed_error``)."""
    rule = table.malformed_error
    return AnthropicError(rule.status, rule.type, rule.message.format(reason=result.native))


def stop_details(result: Outcome, table: StopReasonsTable, finish_reason: str | None) -> dict | None:
    if result.stop_reason != "refusal":
        return None
    details = dict(table.refusal_details)
    details["explanation"] = details["explanation"].format(reason=result.native or finish_reason or "unknown")
    return details


def usage(raw: Usage | None, searches: int = 0, fetches: int = 0) -> dict[str, Any]:
    """Anthropic usage from LiteLLM's (zeros when there was none): input excludes cached tokens,
    output includes thinking; web searches and fetches add ``server_tool_use``. Raises nothing."""
    raw = raw or Usage(0, 0, 0)
    written = min(raw.cache_written, raw.cached_tokens)   # read back at once by the call that wrote them
    out: dict[str, Any] = {
        "input_tokens": max(raw.prompt_tokens - raw.cached_tokens, 0),
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": raw.cached_tokens - written,
        "output_tokens": raw.completion_tokens,
    }
    if written:
        hour = raw.cache_ttl >= 3600
        out["cache_creation"] = {"ephemeral_5m_input_tokens": 0 if hour else written,
                                 "ephemeral_1h_input_tokens": written if hour else 0}
    if raw.reasoning_tokens:  # Claude Code counts these as its thinking tokens
        out["output_tokens_details"] = {"thinking_tokens": raw.reasoning_tokens}
    if searches or fetches:
        out["server_tool_use"] = {"web_search_requests": searches, "web_fetch_requests": fetches}
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
