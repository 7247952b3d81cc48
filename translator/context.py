"""``spec/context_management.yaml`` as a typed, read-only model (loaded by translator/spec.py like every table).

The edit types the proxy emulates, their fields, the ``{type, value}`` thresholds each takes (the
types, the default, the least value), the placeholder a cleared tool result becomes and the default
summary prompt of compaction. Its JSON Schema (``spec/schemas/context_management.schema.json``) is
this model's, written by ``python -m translator --write-schemas``, like the other tables'.
"""
from __future__ import annotations

from typing import Any, Literal, Mapping

from .tables_base import Count, Frozen, Name, Positive, Table

ThresholdType = Literal["input_tokens", "tool_uses", "thinking_turns", "all"]
FieldName = Literal["trigger", "keep", "clear_at_least", "exclude_tools", "clear_tool_inputs", "instructions",
                    "pause_after_compaction"]


class Threshold(Table):
    """A field that takes ``{type, value}``: the types it accepts, its default and its least value."""

    types: tuple[ThresholdType, ...]
    default: Mapping[str, Any] | None = None
    minimum: Count = 0


class EditType(Table):
    fields: tuple[FieldName, ...]
    thresholds: Mapping[FieldName, Threshold] = {}
    order_first: bool = False


class ContextTable(Table):
    """context_management.yaml: what the proxy does for each ``context_management`` edit."""

    bytes_per_token: Positive
    edits: Mapping[Name, EditType]
    placeholder: Name
    cleared_input: Frozen
    summary_prompt: Name
    summary_prefix: Name
    pause_stop_reason: Name
