"""The model of ``spec/tools.yaml``: tools, tool_choice and the schema policy."""
from __future__ import annotations

from typing import Annotated, Literal, Mapping

from pydantic import ConfigDict, Field, StringConstraints, model_validator

from .tables_base import UNIQUE, Absent, Frozen, Name, Positive, Regex, Table, _freeze, _mentions


TypeName = Literal["string", "number", "integer", "boolean", "object", "array"]
ItemTypeName = Literal["string", "number", "integer", "boolean", "object"]
KeywordKind = Literal["type", "nullable", "enum", "const_to_enum", "format", "items", "properties", "required",
                      "any_of", "oneOf_to_anyOf", "merge_allOf", "inline_ref", "definitions", "description",
                      "drop", "to_description"]
ValueCheck = Literal["string", "number", "count", "boolean", "any"]
MergeRule = Literal["union", "join", "intersect", "intersect_types", "max", "min"]
ServerToolAction = Literal["leave_out", "google_search", "url_context"]
WebFetchErrorCode = Literal["invalid_tool_input", "url_too_long", "url_not_allowed", "url_not_in_prior_context",
                            "url_not_accessible", "unsupported_content_type", "too_many_requests", "max_uses_exceeded",
                            "unavailable", "content_too_large"]


class ToolChoiceMap(Table):
    auto: Literal["auto", "required", "none"]
    any: Literal["auto", "required", "none"]
    none: Literal["auto", "required", "none"]
    tool: Literal["named_function"]


CallingMode = Literal["AUTO", "ANY", "NONE", "VALIDATED"]


class StrictToolChoice(Table):
    """Gemini's functionCallingConfig.mode per tool_choice.type when a tool is ``strict``; a type not
    given keeps ``tool_choice``'s mapping."""

    auto: CallingMode | Absent = None
    any: CallingMode | Absent = None
    none: CallingMode | Absent = None
    tool: CallingMode | Absent = None


class Naming(Table):
    anthropic: Regex
    gemini: Regex
    max_length: Annotated[int, Field(ge=16)]
    alias_prefix: Annotated[str, StringConstraints(pattern="^[a-zA-Z_][a-zA-Z0-9_]*$")]
    hash_chars: Annotated[int, Field(ge=4, le=16)]


class ToolLimits(Table):
    tools: Positive
    enum_values: Positive
    properties: Positive
    required: Positive
    alternatives: Positive
    schema_nodes: Positive
    schema_size: Positive
    tool_changes: Positive   # tool_addition and tool_removal blocks in one request's messages


class DescriptionFormat(Table):
    template: Annotated[str, _mentions("keyword", "value")]
    separator: str
    max_value_chars: Annotated[int, Field(ge=8)]


class Formats(Table):
    keep: Mapping[TypeName, tuple[Literal["date-time", "enum"], ...]]
    drop: Annotated[tuple[Name, ...], UNIQUE]


class LeftOutProperties(Table):
    names: Annotated[tuple[Name, ...], UNIQUE]
    label: Name


class Keep(Table):
    """Sent as it is when the value passes the check, else described."""

    keep: ValueCheck


class DescribeUnless(Table):
    """Dropped when the value is one of these (no constraint), else described."""

    to_description_unless: Annotated[tuple[Frozen, ...], Field(min_length=1)]


class SchemaPolicy(Table):
    types: Annotated[tuple[TypeName, ...], Field(min_length=1), UNIQUE]
    untyped_types: Annotated[tuple[TypeName, ...], Field(min_length=1), UNIQUE]
    untyped_item_types: Annotated[tuple[ItemTypeName, ...], Field(min_length=1), UNIQUE]
    null_only_type: TypeName
    max_ref_expansions: Annotated[int, Field(ge=1, le=8)]
    max_ref_expansions_total: Annotated[int, Field(ge=1, le=10000)]
    max_depth: Annotated[int, Field(ge=4, le=100)]
    bound_fallback_type: ItemTypeName
    formats: Formats
    left_out_properties: LeftOutProperties
    type_keywords: Mapping[TypeName, Annotated[tuple[Name, ...], UNIQUE]]
    keywords: Annotated[Mapping[str, KeywordKind | Keep | DescribeUnless], Field(min_length=1)]
    unknown_keywords: Literal["drop", "to_description"]
    allOf_merge: Mapping[str, MergeRule]


class ResponseSchemaPolicy(Table):
    """How structured output's schema differs from a tool's on its way through ``schema_policy``."""

    object_root: bool
    nulls: Literal["nullable", "type_list"]
    left_out_properties: Annotated[tuple[Name, ...], UNIQUE]
    keywords: Mapping[str, KeywordKind | Keep | DescribeUnless]


class ToolInputSchema(Table):
    """A client tool's JSON Schema: an object schema; its other keywords are kept (read-only)."""

    model_config = ConfigDict(extra="allow")
    type: Literal["object"]
    properties: Mapping[str, Frozen]

    @model_validator(mode="after")
    def _frozen_extra(self) -> ToolInputSchema:
        extra = self.__pydantic_extra__ or {}
        extra.update((k, _freeze(v)) for k, v in extra.items())
        return self


class ClientTool(Table):
    match: Regex
    name: Name
    description: Name
    describe_fields: Annotated[tuple[Name, ...], UNIQUE] = ()
    input_schema: ToolInputSchema


class ServerTool(Table):
    match: Regex
    action: ServerToolAction


class ToolsTable(Table):
    """tools.yaml: tools and tool_choice → Gemini function declarations."""

    tool_choice: ToolChoiceMap
    strict_tool_choice: StrictToolChoice
    names: Naming
    dropped_tool_fields: Annotated[tuple[Name, ...], UNIQUE]
    custom_tool_type: Name
    declaration_cache_size: Positive
    limits: ToolLimits
    description_format: DescriptionFormat
    schema_policy: SchemaPolicy
    response_schema: ResponseSchemaPolicy
    client_tools: tuple[ClientTool, ...]
    server_tools: tuple[ServerTool, ...]
    unknown_tool_type: Literal["leave_out", "reject"]
    google_search_tool: Annotated[Mapping[str, Frozen], Field(min_length=1, max_length=1)]
    url_context_tool: Annotated[Mapping[str, Frozen], Field(min_length=1, max_length=1)]
    url_retrieval_errors: Mapping[Annotated[str, StringConstraints(pattern="^URL_RETRIEVAL_STATUS_[A-Z_]+$")],
                                  WebFetchErrorCode]
