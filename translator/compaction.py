"""Server-side compaction (``compact_20260112``), emulated: the pure half.

Past the edit's trigger the service asks the same model for a summary (:func:`summary_request`, the
conversation then the edit's ``instructions`` or the table's default prompt) and answers with a
``compaction`` block first (:func:`compaction_block`), then the model's answer to the compacted
conversation (:func:`compacted_body`), or the block alone with ``pause_after_compaction``.

In a later request the last ``compaction`` block of the history replaces everything before it
(:func:`after_compaction`): Gemini gets its summary as a user turn. A block whose content is null
(a compaction that failed) is left out and changes nothing, as Anthropic treats it. Pure.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Mapping

from .errors import invalid_request

if TYPE_CHECKING:
    from .edits import Edit
    from .context import ContextTable

Message = dict[str, Any]
_SUMMARY = re.compile(r"<summary>(.*?)(?:</summary>|$)", re.DOTALL)
# Fields of the request the summary call keeps (the rest, such as output formats, stream and
# context_management, would shape the summary or call the edits again).
_SUMMARY_FIELDS = ("model", "max_tokens", "system", "tools", "metadata", "thinking")


def _is_compaction(block: Any) -> bool:
    return isinstance(block, dict) and block.get("type") == "compaction"


def _last_compaction(messages: list[Message]) -> tuple[int, int, str] | None:
    """Where the last compaction block with a summary is, and the summary; a 400 for an empty one."""
    found = None
    for i, message in enumerate(messages):
        content = message.get("content")
        for j, block in enumerate(content if isinstance(content, list) else ()):
            if not _is_compaction(block):
                continue
            summary = block.get("content")
            if summary is not None and not isinstance(summary, str):
                raise invalid_request(f"messages.{i}.content.{j}.content: Input should be a valid string")
            if summary == "":
                raise invalid_request(f"messages.{i}.content.{j}.content: Empty string content is not allowed; "
                                      "send null for a compaction that produced no summary")
            if summary is not None:
                found = (i, j, summary)
    return found


def after_compaction(messages: list[Message], table: ContextTable) -> list[Message]:
    """The history as the model sees it: what follows the last compaction block, after its summary
    (a user turn); compaction blocks without a summary left out. Unchanged when there are none."""
    if not any(_is_compaction(b) for m in messages
               for b in (m["content"] if isinstance(m.get("content"), list) else ())):
        return messages
    last = _last_compaction(messages)
    if last is None:
        head: list[Message] = []
        rest = messages
    else:
        i, j, summary = last
        head = [{"role": "user", "content": [{"type": "text", "text": table.summary_prefix + summary}]}]
        after = messages[i]["content"][j + 1:]
        rest = ([{**messages[i], "content": after}] if after else []) + messages[i + 1:]
    kept = [{**m, "content": [b for b in m["content"] if not _is_compaction(b)]} if isinstance(m.get("content"), list)
            else m for m in rest]
    return head + [m for m in kept if m.get("content") != []]


def summary_request(body: Mapping[str, Any], edit: Edit, table: ContextTable) -> dict[str, Any]:
    """The request whose answer is the summary: the (edited) conversation, then the instructions;
    tools stay declared (the history calls them) but may not be called."""
    prompt = edit.settings.get("instructions") or table.summary_prompt
    request = {key: body[key] for key in _SUMMARY_FIELDS if key in body}
    request["messages"] = [*body["messages"], {"role": "user", "content": [{"type": "text", "text": prompt}]}]
    if body.get("tools"):
        request["tool_choice"] = {"type": "none"}
    return request


def summary_text(message: Mapping[str, Any]) -> str | None:
    """The summary in the model's answer (inside ``<summary>`` tags when it used them); None if empty."""
    text = "".join(b.get("text", "") for b in message.get("content", ()) if isinstance(b, dict)
                   and b.get("type") == "text").strip()
    match = _SUMMARY.search(text)
    summary = (match.group(1) if match else text).strip()
    return summary or None


def compaction_block(summary: str | None) -> dict[str, Any]:
    """The answer's ``compaction`` block (content null: the summary call gave nothing usable)."""
    return {"type": "compaction", "content": summary}


def compacted_body(body: Mapping[str, Any], block: Mapping[str, Any], table: ContextTable) -> dict[str, Any]:
    """The request the model answers after compacting: the summary in place of the conversation."""
    return {**body, "messages": after_compaction([*body["messages"], {"role": "assistant", "content": [dict(block)]}],
                                                 table)}


def compaction_usage(usage: Mapping[str, Any]) -> dict[str, Any]:
    """The summary call's usage as a ``usage.iterations`` entry of type compaction."""
    return {"type": "compaction", "input_tokens": usage.get("input_tokens", 0),
            "output_tokens": usage.get("output_tokens", 0),
            "cache_creation_input_tokens": usage.get("cache_creation_input_tokens", 0),
            "cache_read_input_tokens": usage.get("cache_read_input_tokens", 0)}
