"""The models of ``spec/roles.yaml`` and ``spec/content.yaml``: roles, content blocks, media."""
from __future__ import annotations

from typing import Annotated, Literal, Mapping

from pydantic import Field, StringConstraints

from .tables_base import Absent, Count, Name, Positive, Regex, Role, Table, _missing_keys


# --- roles.yaml ----------------------------------------------------------------------------------

class RoleRule(Table):
    sent_as: Literal["user", "assistant"] = Field(alias="as")
    wrap: Annotated[str, StringConstraints(pattern=r"\{text\}")] | Absent = None


class RolesTable(Table):
    """roles.yaml: Anthropic roles → the roles sent to LiteLLM."""

    roles: Annotated[Mapping[Role, RoleRule], _missing_keys("user", "assistant")]
    system_drop_prefixes: tuple[Name, ...]


# --- content.yaml --------------------------------------------------------------------------------

BlockKind = Literal["text", "image", "document", "tool_call", "tool_result", "thinking", "flatten", "drop"]
FieldType = Literal["string", "id", "object", "array", "integer", "boolean"]


class BlockRule(Table):
    """One Anthropic content block type: where it may appear, what it must hold, what it becomes."""

    requires_when = {"kind": {"flatten": ("text_fields",)}}
    roles: Annotated[tuple[Role, ...], Field(min_length=1)]
    kind: BlockKind
    requires: Mapping[str, FieldType]
    text_fields: Annotated[tuple[str, ...], Field(min_length=1)] | Absent = None


class ContentLimits(Table):
    media_per_request: Count
    media_bytes: Positive
    messages: Positive
    content_blocks: Positive


MediaType = Annotated[str, StringConstraints(pattern=r"^[a-z]+/[a-z0-9.+-]+$")]


class UrlSources(Table):
    """Image and document ``source: {type: "url"}``: passed to Gemini as fileData, never opened."""

    prefixes: Annotated[tuple[Annotated[str, StringConstraints(pattern=r"^[a-z]+://$")], ...], Field(min_length=1)]
    max_length: Positive
    extensions: Mapping[Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+$")], MediaType]
    default_media_types: Annotated[Mapping[Literal["image", "document"], MediaType],
                                   _missing_keys("image", "document")]
    in_tool_results: Name   # why a URL source inside tool_result content is refused


class ContentTable(Table):
    """content.yaml: content block types, media types, tool results, per-request bounds."""

    blocks: Annotated[Mapping[str, BlockRule], Field(min_length=1)]
    tool_result_content: tuple[str, ...]
    image_media_types: tuple[Annotated[str, StringConstraints(pattern="^image/")], ...]
    document_media_types: tuple[str, ...]
    url_sources: UrlSources
    refused_sources: Mapping[str, Name]   # source type → why it is refused
    id_pattern: Regex
    tool_error_key: Name
    tool_output_key: Name
    limits: ContentLimits
    ignored_fields: Mapping[Name, Name] | Absent = None  # block.field → why the proxy leaves it out
