"""``context_management`` edits, emulated before translation: the history Gemini gets is edited as
Anthropic's server edits it, and the answer says what was cleared.

    plan = plan_edits(body, spec.context)   # AnthropicError (400) for an edit Anthropic refuses
    plan.body                               # what to translate
    plan.report.applied_edits               # → context_management.applied_edits of the answer
    plan.compact                            # a compact_20260112 edit past its trigger (the service summarises)

Each edit's rules (fields, thresholds, defaults, least values, the placeholder) come from
``spec/context_management.yaml``; a compaction block in the history replaces what came before it
(``compaction.py``). Token counts are the proxy's size estimate (``bytes_per_token``). Pure.
"""
from __future__ import annotations

import copy
import functools
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

from .compaction import after_compaction
from .context import ContextTable
from .decoding import json_bytes
from .edit_report import EditReport
from .errors import invalid_request

Body = dict[str, Any]


@dataclass(frozen=True)
class Edit:
    """One edit of the request, checked, its absent thresholds at their defaults."""

    type: str
    where: str
    settings: Mapping[str, Any]


@dataclass(frozen=True)
class EditPlan:
    body: Body
    report: EditReport
    compact: Edit | None = None              # a compact_20260112 edit past its trigger
    edits: tuple[Edit, ...] = field(default=())
    source: Body | None = None               # the request before its edits, when it was measured
    table: ContextTable | None = None

    @functools.cached_property
    def original_tokens(self) -> int:
        """The estimate before any edit (count_tokens reports it), measured when asked: a long
        conversation's serialisation, which /v1/messages never needs when no edit is measured."""
        return estimate(self.source, self.table) if self.source is not None and self.table else 0

    @functools.cached_property
    def tokens(self) -> int:
        """The estimate of ``body``."""
        if self.source is None or not self.table:
            return 0
        return _estimate_again(self.body, self.source, lambda: self.original_tokens, self.table)


COUNTED = ("system", "tools", "messages")   # what the input-token estimate counts


def estimate(body: Mapping[str, Any], table: ContextTable) -> int:
    """The input-token estimate of a request: its system, tools and messages, JSON bytes / bytes_per_token."""
    counted = {key: body.get(key) for key in COUNTED}
    return len(json_bytes(counted, default=str)) // table.bytes_per_token


# --- checking the edits ---------------------------------------------------------------------------

def parse_edits(context_management: Any, table: ContextTable) -> tuple[Edit, ...]:
    """The request's edits, checked against the table; a 400 naming the field for what Anthropic refuses."""
    if context_management is None:
        return ()
    if not isinstance(context_management, dict):
        raise invalid_request("context_management: Input should be a valid dictionary")
    extra = sorted(set(context_management) - {"edits"})
    if extra:
        raise invalid_request(f"context_management.{extra[0]}: Extra inputs are not permitted")
    raw = context_management.get("edits")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise invalid_request("context_management.edits: Input should be a valid list")
    edits = tuple(_edit(item, f"context_management.edits.{i}", table) for i, item in enumerate(raw))
    seen: set[str] = set()
    for i, edit in enumerate(edits):
        if edit.type in seen:
            raise invalid_request(f"context_management.edits.{i}: each edit type may be given once; "
                                  f"{edit.type} is given more than once")
        seen.add(edit.type)
        if table.edits[edit.type].order_first and i > 0:
            raise invalid_request(f"context_management.edits.{i}: {edit.type} must be the first edit in "
                                  "context_management.edits when other edits are given")
    return edits


def _edit(item: Any, where: str, table: ContextTable) -> Edit:
    if not isinstance(item, dict):
        raise invalid_request(f"{where}: Input should be a valid dictionary")
    kind = item.get("type")
    if not isinstance(kind, str) or kind not in table.edits:  # an unhashable type would not even be looked up
        expected = ", ".join(f"'{name}'" for name in table.edits)
        raise invalid_request(f"{where}.type: Input tag {json.dumps(kind)} found using 'type' does not match any "
                              f"of the expected tags: {expected}")
    rules = table.edits[kind]
    extra = sorted(set(item) - {"type", *rules.fields})
    if extra:
        raise invalid_request(f"{where}.{extra[0]}: Extra inputs are not permitted")
    settings: dict[str, Any] = {key: item[key] for key in rules.fields if item.get(key) is not None}
    for name, threshold in rules.thresholds.items():
        value = settings.get(name, threshold.default)
        if value is not None:
            settings[name] = _threshold(value, f"{where}.{name}", threshold.types, threshold.minimum)
    _check_plain_fields(settings, where)
    trigger, keep = settings.get("trigger"), settings.get("keep")
    if trigger and isinstance(keep, dict) and keep["type"] == trigger["type"] and keep["value"] >= trigger["value"]:
        raise invalid_request(f"{where}.keep: keep ({keep['value']} {keep['type']}) must be less than the "
                              f"trigger ({trigger['value']} {trigger['type']})")
    return Edit(kind, where, settings)


def _threshold(value: Any, where: str, types: tuple[str, ...], minimum: int) -> Any:
    if value == "all" and "all" in types:
        return {"type": "all"}
    if not isinstance(value, Mapping):
        raise invalid_request(f"{where}: Input should be a valid dictionary")
    if value.get("type") not in types:
        expected = ", ".join(f"'{t}'" for t in types)
        raise invalid_request(f"{where}.type: Input tag {json.dumps(value.get('type'))} found using 'type' does not "
                              f"match any of the expected tags: {expected}")
    if value["type"] == "all":
        return {"type": "all"}
    extra = sorted(set(value) - {"type", "value"})
    if extra:
        raise invalid_request(f"{where}.{extra[0]}: Extra inputs are not permitted")
    number = value.get("value")
    if type(number) is not int:
        raise invalid_request(f"{where}.value: Input should be a valid integer")
    if number < minimum:
        raise invalid_request(f"{where}.value: Input should be greater than or equal to {minimum}")
    return {"type": value["type"], "value": number}


def _check_plain_fields(settings: Mapping[str, Any], where: str) -> None:
    checks = {"exclude_tools": (_names, "a valid list of strings"),
              "clear_tool_inputs": (lambda v: isinstance(v, bool) or _names(v), "a valid boolean or list of strings"),
              "instructions": (lambda v: isinstance(v, str) and v.strip() != "", "a non-empty string"),
              "pause_after_compaction": (lambda v: isinstance(v, bool), "a valid boolean")}
    for name, (ok, what) in checks.items():
        if name in settings and not ok(settings[name]):
            raise invalid_request(f"{where}.{name}: Input should be {what}")


def _names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


# --- applying them --------------------------------------------------------------------------------

def plan_edits(body: Any, table: ContextTable) -> EditPlan:
    """The request as Gemini should get it, and what to report. A body the translator will refuse
    anyway (no message list) is passed on unedited; the edits are still checked."""
    edits = parse_edits(body.get("context_management") if isinstance(body, dict) else None, table)
    if not isinstance(body, dict) or not _well_formed(body.get("messages")):
        return EditPlan(body, EditReport(reported=bool(edits)), edits=edits)
    if not edits and not _has_compaction(body["messages"]):  # the usual case: nothing to measure or edit
        return EditPlan(body, EditReport())
    edited: Body = {**body, "messages": after_compaction(body["messages"], table)}
    applied: list[dict[str, Any]] = []
    compact: Edit | None = None
    for edit in edits:
        if edit.type == "compact_20260112":
            tokens = _estimate_again(edited, body, lambda: estimate(body, table), table)
            compact = edit if tokens >= edit.settings["trigger"]["value"] else None
            continue
        edited, entry = APPLY[edit.type](edited, edit, table)
        if entry is not None:
            applied.append(entry)
    return EditPlan(edited, EditReport(reported=bool(edits), applied_edits=tuple(applied)), compact, edits,
                    body, table)


def _estimate_again(edited: Body, body: Body, original: Callable[[], int], table: ContextTable) -> int:
    """The estimate of ``edited``: ``body``'s (``original()``) when no edit changed what is counted (the
    usual case: Claude Code asks for clear_thinking with keep "all"), which spares serialising a
    long conversation again."""
    if all(edited.get(key) is body.get(key) for key in COUNTED):
        return original()
    return estimate(edited, table)


def _has_compaction(messages: list[dict[str, Any]]) -> bool:
    return any(isinstance(b, dict) and b.get("type") == "compaction" for m in messages for b in _blocks(m))


def _well_formed(messages: Any) -> bool:
    return isinstance(messages, list) and all(isinstance(m, dict) for m in messages)


def _blocks(message: Mapping[str, Any]) -> list[Any]:
    content = message.get("content")
    return content if isinstance(content, list) else []


def _turns(messages: list[dict[str, Any]]) -> Iterator[tuple[int, int]]:
    """(turn number, message index) of each assistant message: a turn starts at a user message that is
    not only tool results, so a tool-use loop stays one turn."""
    turn = 0
    for i, message in enumerate(messages):
        if message.get("role") == "user":
            blocks = message.get("content")
            if isinstance(blocks, str) or any(isinstance(b, dict) and b.get("type") != "tool_result"
                                              for b in _blocks(message)):
                turn += 1
        elif message.get("role") == "assistant":
            yield turn, i


def clear_thinking(body: Body, edit: Edit, table: ContextTable) -> tuple[Body, dict[str, Any] | None]:
    """clear_thinking_20251015: thinking blocks of all but the ``keep`` latest assistant turns go."""
    keep = edit.settings["keep"]
    if keep["type"] == "all":
        return body, None
    turns = list(_turns(body["messages"]))
    kept_turns = sorted({turn for turn, _ in turns})[-keep["value"]:]
    messages = list(body["messages"])
    cleared_turns: set[int] = set()
    for turn, i in turns:
        blocks = _blocks(messages[i])
        if turn in kept_turns or not any(_is_thinking(b) for b in blocks):
            continue
        cleared_turns.add(turn)
        messages[i] = {**messages[i], "content": [b for b in blocks if not _is_thinking(b)]}
    if not cleared_turns:
        return body, None
    edited = {**body, "messages": [m for m in messages if m.get("role") != "assistant" or m.get("content") != []]}
    return edited, {"type": edit.type, "cleared_thinking_turns": len(cleared_turns),
                    "cleared_input_tokens": estimate(body, table) - estimate(edited, table)}


def _is_thinking(block: Any) -> bool:
    return isinstance(block, dict) and block.get("type") in ("thinking", "redacted_thinking")


def _tool_uses(messages: list[dict[str, Any]]) -> list[tuple[int, int, dict[str, Any]]]:
    return [(i, j, block) for i, message in enumerate(messages) if message.get("role") == "assistant"
            for j, block in enumerate(_blocks(message))
            if isinstance(block, dict) and block.get("type") == "tool_use" and isinstance(block.get("id"), str)]


def clear_tool_uses(body: Body, edit: Edit, table: ContextTable) -> tuple[Body, dict[str, Any] | None]:
    """clear_tool_uses_20250919: past the trigger, every tool result but the ``keep`` latest becomes the
    placeholder (and the call's input too, with ``clear_tool_inputs``), unless its tool is in
    ``exclude_tools``; nothing changes when that clears less than ``clear_at_least``."""
    settings, messages = edit.settings, body["messages"]
    uses = _tool_uses(messages)
    trigger = settings["trigger"]
    size = len(uses) if trigger["type"] == "tool_uses" else estimate(body, table)
    if size <= trigger["value"]:
        return body, None
    excluded = set(settings.get("exclude_tools", ()))
    candidates = [use for use in uses if use[2].get("name") not in excluded]
    keep = settings["keep"]["value"]
    chosen = candidates[:len(candidates) - keep] if keep else candidates
    if not chosen:
        return body, None
    edited_messages = copy.copy(messages)
    cleared = sum(_clear_use(edited_messages, use, settings.get("clear_tool_inputs", False), table)
                  for use in chosen)
    edited = {**body, "messages": edited_messages}
    tokens = estimate(body, table) - estimate(edited, table)
    least = settings.get("clear_at_least")
    if not cleared or (least and tokens < least["value"]):
        return body, None
    return edited, {"type": edit.type, "cleared_tool_uses": cleared, "cleared_input_tokens": tokens}


def _clear_use(messages: list[dict[str, Any]], use: tuple[int, int, dict[str, Any]], inputs: Any,
               table: ContextTable) -> bool:
    """Clear one tool use in ``messages`` (copying what changes); whether anything changed."""
    i, j, call = use
    changed = False
    if inputs is True or (isinstance(inputs, list) and call.get("name") in inputs):
        if call.get("input") != table.cleared_input:
            blocks = list(_blocks(messages[i]))
            blocks[j] = {**call, "input": dict(table.cleared_input)}
            messages[i] = {**messages[i], "content": blocks}
            changed = True
    for k in range(i + 1, len(messages)):
        if messages[k].get("role") != "user":
            continue
        blocks = list(_blocks(messages[k]))
        for n, block in enumerate(blocks):
            if (isinstance(block, dict) and block.get("type") == "tool_result"
                    and block.get("tool_use_id") == call["id"] and block.get("content") != table.placeholder):
                blocks[n] = {**block, "content": table.placeholder}
                messages[k] = {**messages[k], "content": blocks}
                changed = True
    return changed


APPLY = {"clear_thinking_20251015": clear_thinking, "clear_tool_uses_20250919": clear_tool_uses}



def counted_tokens(plan: EditPlan, tokens: int) -> dict[str, Any]:
    """count_tokens' answer: ``tokens`` counted after the edits, and, when the request had edits, the
    count before them (Gemini's count plus the estimate of what the edits took out)."""
    answer: dict[str, Any] = {"input_tokens": tokens}
    if plan.report.reported:
        answer["context_management"] = {"original_input_tokens": tokens + max(plan.original_tokens - plan.tokens, 0)}
    return answer
