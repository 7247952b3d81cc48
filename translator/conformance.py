"""The request surface the proxy serves, read from spec/conformance.yaml.

Every top-level field, message field and content block type has a row there; what has none, or a
``refused`` row, gets a 400 in Anthropic's own wording, which Claude Code parses to switch a beta
off and retry (its "Input tag '<type>'" and "`<beta>` … anthropic-beta" checks).
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from .errors import invalid_request
from .spec import Spec
from .tables import BlockRule, ConformanceTable, ContentLimits, Feature
from .tools import ToolError, check_tool_count

# The Python type of each content.yaml ``requires`` field type.
_JSON_TYPES = {"string": str, "object": dict, "array": list, "integer": int, "boolean": bool, "id": str}


def _refusal(table: ConformanceTable, where: str, name: str, row: Feature) -> str:
    message = table.refused.format(where=where, message=row.message)
    return message + (table.beta_hint.format(beta=row.beta, name=name) if row.beta else "")


def _check_keys(part: Mapping[str, Any], rows: Mapping[str, Feature], where: str, table: ConformanceTable) -> None:
    for name in part:
        row = rows.get(name)
        if row is None:
            raise invalid_request(table.unknown_field.format(where=where, name=name))
        if row.status == "refused":
            raise invalid_request(_refusal(table, f"{where}{name}", name, row))


def check_fields(body: Any, spec: Spec) -> None:
    """Refuse a top-level or message field the table does not know, or refuses."""
    if not isinstance(body, dict):
        return  # parse_request names what is wrong with it
    table = spec.conformance
    _check_keys(body, table.fields, "", table)
    messages = body.get("messages")
    # Most messages hold only these: checked at set speed, as a conversation may hold 50,000.
    plain = {name for name in ("role", "content") if table.message_fields[name].status != "refused"}
    for i, message in enumerate(messages if isinstance(messages, list) else ()):
        if isinstance(message, dict) and not message.keys() <= plain:
            _check_keys(message, table.message_fields, f"messages.{i}.", table)


def _field(value: Any, name: str) -> Any:
    """A field of a request part, whether still a dict or already a validated model."""
    return value.get(name) if isinstance(value, dict) else getattr(value, name, None)


def check_counts(body: Any, spec: Spec, limits: ContentLimits) -> None:
    """Refuse more tools, messages or content blocks than the tables allow, before any per-item
    work: validating a message alone takes microseconds, and a body may hold a million."""
    try:
        check_tool_count(_field(body, "tools"), spec.tools)
    except ToolError as exc:
        raise invalid_request(str(exc)) from None
    messages = _field(body, "messages")
    if not isinstance(messages, list):
        return
    if len(messages) > limits.messages:
        raise invalid_request(f"messages: {len(messages)} messages, more than the {limits.messages} allowed "
                              "(content.yaml limits.messages).")
    if _block_count(messages) > limits.content_blocks:
        _refuse_blocks(messages, limits)


def _block_count(messages: list[Any]) -> int:
    """The content blocks of ``messages``, tool_result contents included (a string content is one)."""
    blocks = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else getattr(message, "content", None)
        if not isinstance(content, list):
            blocks += 1
            continue
        blocks += len(content)
        for block in content:
            if isinstance(block, dict) and block.get("type") == "tool_result" and isinstance(
                    inner := block.get("content"), list):
                blocks += len(inner)
    return blocks


def _refuse_blocks(messages: list[Any], limits: ContentLimits) -> None:
    """The 400 naming the block past ``limits.content_blocks`` (counted as :func:`_block_count` does)."""
    blocks = 0
    for i, message in enumerate(messages):
        content = _field(message, "content")
        for j, block in enumerate(content if isinstance(content, list) else (content,)):
            inner = block.get("content") if isinstance(block, dict) and block.get("type") == "tool_result" else None
            blocks += 1 + (len(inner) if isinstance(inner, list) else 0)
            if blocks > limits.content_blocks:
                where = f"messages.{i}.content" + (f".{j}" if isinstance(content, list) else "")
                raise invalid_request(f"{where}: more than the {limits.content_blocks} content blocks allowed in "
                                      "one request, tool_result contents included (content.yaml limits.content_blocks).")


def check_block(block: Any, where: str, role: str, spec: Spec) -> BlockRule:
    """The content.yaml rule of a block the table serves, its required fields checked; else a 400."""
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise invalid_request(f"{where}: each content block must be an object with a string 'type'.")
    table, tag = spec.conformance, block["type"]
    row = table.blocks.get(tag)
    rule = spec.content.blocks.get(tag)
    if row is not None and row.status == "refused":
        raise invalid_request(_refusal(table, where, f"'{tag}' blocks", row))
    if row is None or rule is None:
        expected = ", ".join(f"'{name}'" for name, r in table.blocks.items() if r.status != "refused")
        raise invalid_request(table.unknown_block.format(where=where, tag=tag, expected=expected))
    if role not in rule.roles:
        raise invalid_request(f"{where}: a '{tag}' block is not allowed in a '{role}' message.")
    for name, kind in rule.requires.items():
        value = block.get(name)
        if not isinstance(value, _JSON_TYPES[kind]) or (kind == "integer" and isinstance(value, bool)):
            raise invalid_request(f"{where}.{name}: Field required, of type {'string' if kind == 'id' else kind}.")
        if kind == "id" and not re.fullmatch(spec.content.id_pattern, str(value)):
            raise invalid_request(f"{where}.{name}: String should match pattern '{spec.content.id_pattern}'.")
    return rule


__all__ = ["check_block", "check_counts", "check_fields"]
