"""``spec/context_management.yaml`` as a typed, read-only model, and its loader.

The edit types the proxy emulates, their fields, the ``{type, value}`` thresholds each takes (the
types, the default, the least value), the placeholder a cleared tool result becomes and the default
summary prompt of compaction. Its JSON Schema (``spec/schemas/context_management.schema.json``) is
this model's, written by ``python -m translator --write-schemas``, like the other tables'.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Mapping

import jsonschema
import pydantic
import yaml

from .tables import Count, Frozen, Name, Positive, Table, _SchemaWriter

NAME = "context_management"
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


@lru_cache(maxsize=None)
def json_schema() -> Mapping[str, Any]:
    """The JSON Schema of the table (what ``spec/schemas/context_management.schema.json`` holds)."""
    return {**ContextTable.model_json_schema(schema_generator=_SchemaWriter), "title": f"{NAME}.yaml"}


def schema_text() -> str:
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


def load_context_table(spec_dir: Path) -> ContextTable:
    """Read and check ``context_management.yaml``; ``ValueError`` naming the file and the place if broken."""
    path = Path(spec_dir) / f"{NAME}.yaml"
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    validator = jsonschema.Draft202012Validator(json_schema())
    for error in validator.iter_errors(document):
        where = ".".join(map(str, error.absolute_path)) or "(document root)"
        raise ValueError(f"{path}: at {where}: {error.message}")
    try:
        return ContextTable.model_validate(document)
    except pydantic.ValidationError as exc:
        raise ValueError(f"{path}: {exc.errors()[0]['msg']}") from None
