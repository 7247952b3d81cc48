"""Pydantic models of the Anthropic Messages request: the shape checks, with field paths.

Content blocks are kept as plain dicts here; which block types exist and what fields each
needs is data (spec/content.yaml), checked while translating.
"""
from __future__ import annotations

from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from .errors import AnthropicError, invalid_request

Block = dict[str, Any]


class _Open(BaseModel):
    # Top-level and message fields are checked against conformance.yaml before this (translator/
    # conformance.py); inside them, fields clients add over releases are accepted and ignored.
    model_config = ConfigDict(extra="allow", strict=True)


class TextBlock(_Open):
    type: Literal["text"]
    text: StrictStr


class TurnOutputConfig(BaseModel):
    """A system message's per-turn output_config (``format`` stays top-level only)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = None


class Message(_Open):
    role: Literal["user", "assistant", "system"]
    # Content blocks' shape is checked while translating (conformance.check_block), with the block's place:
    # not copied here, block by block, which took a third of this model's time on a long conversation.
    content: Union[StrictStr, list[Any]]
    clear_at: Literal["next_user_message", "never"] | None = None  # system messages only
    output_config: TurnOutputConfig | None = None                 # system messages only


class ThinkingEnabled(_Open):
    type: Literal["enabled"]
    budget_tokens: StrictInt = Field(ge=0)
    display: Literal["summarized", "omitted"] | None = None


class ThinkingAdaptive(_Open):
    type: Literal["adaptive"]
    display: Literal["summarized", "omitted"] | None = None


class ThinkingDisabled(_Open):
    type: Literal["disabled"]


class ToolChoice(_Open):
    type: Literal["auto", "any", "tool", "none"]
    name: StrictStr | None = None
    disable_parallel_tool_use: StrictBool | None = None


class JsonOutputFormat(_Open):
    """Structured outputs: the answer is JSON that fits ``schema`` (a JSON Schema)."""

    type: Literal["json_schema"]
    json_schema: dict[str, Any] = Field(alias="schema")  # `schema` would shadow a BaseModel method


class OutputConfig(_Open):
    effort: Literal["low", "medium", "high", "xhigh", "max"] | None = None
    format: JsonOutputFormat | None = None


class ThreadCreate(_Open):
    type: Literal["create"]


class ThreadContinue(_Open):
    type: Literal["continue"]
    previous_message_id: StrictStr = Field(min_length=1, max_length=256)


Thread = Union[ThreadCreate, ThreadContinue]


class _ThreadField(_Open):
    thread: Union[Thread, None] = Field(default=None, discriminator="type")


class CountTokensRequest(_Open):
    model: StrictStr = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    system: Union[StrictStr, list[TextBlock], None] = None
    tools: list[Block] | None = None
    tool_choice: ToolChoice | None = None
    thinking: Union[ThinkingEnabled, ThinkingAdaptive, ThinkingDisabled, None] = Field(default=None, discriminator="type")
    output_config: OutputConfig | None = None
    output_format: JsonOutputFormat | None = None  # the older place of output_config.format (beta)
    thread: Union[Thread, None] = Field(default=None, discriminator="type")


class MessagesRequest(CountTokensRequest):
    max_tokens: StrictInt = Field(ge=0)
    stream: StrictBool | None = None
    temperature: float | None = Field(default=None, ge=0.0, le=1.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    top_k: StrictInt | None = Field(default=None, ge=0)
    stop_sequences: list[StrictStr] | None = None
    metadata: dict[str, Any] | None = None


def _describe(error: ValidationError) -> str:
    by_place: dict[str, list[str]] = {}
    for item in error.errors(include_url=False):
        where = ".".join(str(p) for p in item["loc"] if not (isinstance(p, str) and p in _UNION_TAGS))
        by_place.setdefault(where, []).append(item["msg"])
    parts = [f"{where}: {' or '.join(msgs)}" if where else " or ".join(msgs)
             for where, msgs in list(by_place.items())[:3]]
    more = len(by_place) - 3
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


# Pydantic puts the union member's name into error locations; these are not field names.
_UNION_TAGS = {"str", "list[dict[str,any]]", "list[any]", "enabled", "adaptive", "disabled", "list[TextBlock]",
               "function-after[...]", "create", "continue"}


def parse_request(body: Any, model: type[CountTokensRequest] = MessagesRequest) -> CountTokensRequest:
    """Validate a decoded JSON body into ``model`` (a :class:`MessagesRequest` by default).

    Raises :class:`AnthropicError` (400 ``invalid_request_error``) naming the field."""
    if not isinstance(body, dict):
        raise invalid_request("The request body must be a JSON object.")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise invalid_request(_describe(exc)) from None


def parse_thread(body: dict[str, Any]) -> Thread | None:
    """The request's ``thread`` field alone, checked before the rest: a continue's other fields only
    make a request once the thread's conversation is put in front of its messages."""
    try:
        return _ThreadField.model_validate({"thread": body.get("thread")}).thread
    except ValidationError as exc:
        raise invalid_request(_describe(exc)) from None


__all__ = ["AnthropicError", "Block", "CountTokensRequest", "JsonOutputFormat", "MessagesRequest", "Message", "Thread", "ThreadContinue",
           "ThreadCreate", "parse_request", "parse_thread"]
