"""The tables of ``spec/`` as typed, read-only models.

Each YAML table loads into one of the models below; the JSON Schemas in ``spec/schemas/`` are
these models' ``model_json_schema()`` (``python -m translator --write-schemas`` writes them), so the
schema a table is checked against and the fields the code reads are one definition. Every rule of
the schemas (patterns, bounds, enums, no unknown keys) is a type or a :class:`Rule` here; mappings
load as ``MappingProxyType`` and lists as tuples, so nothing can change a table after it loaded.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from types import MappingProxyType
from typing import Annotated, Any, Callable, ClassVar, Literal, Mapping, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic.json_schema import GenerateJsonSchema, SkipJsonSchema
from pydantic_core import core_schema

from .errors import AnthropicError

# --- building blocks ---------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Rule:
    """A constraint no plain type says: checked when a table loads, and written into its JSON Schema."""

    schema: Mapping[str, Any]             # the JSON Schema keywords that say the same
    problem: Callable[[Any], str | None]  # what is wrong with a value, or None

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> core_schema.CoreSchema:
        def checked(value: Any) -> Any:
            wrong = self.problem(value)
            if wrong:
                raise ValueError(wrong)
            return value
        return core_schema.no_info_after_validator_function(checked, handler(source))

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> dict[str, Any]:
        return {**handler(schema), **self.schema}


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _repeated(values: tuple) -> str | None:
    twice = sorted({str(v) for v in values if values.count(v) > 1})
    return f"repeated items: {', '.join(twice)}" if twice else None


def _not_a_regex(value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as exc:
        return f"{value!r} is not a 'regex': {exc}"
    return None


def _missing_keys(*keys: str) -> Rule:
    return Rule({"required": list(keys)},
                lambda value: f"missing keys: {', '.join(k for k in keys if k not in value)}"
                if any(k not in value for k in keys) else None)


def _mentions(*names: str) -> Rule:
    """A template that must use each of these placeholders."""
    return Rule({"allOf": [{"pattern": re.escape("{" + n + "}")} for n in names]},
                lambda text: next((f"must contain {{{n}}}" for n in names if "{" + n + "}" not in text), None))


def _fills(*names: str) -> Rule:
    """An error whose message may use only these placeholders (the code fills them in)."""
    allowed = "|".join(map(re.escape, names))
    pattern = r"^(?:[^{}]|\{\{|\}\}" + (rf"|\{{(?:{allowed})\}}" if names else "") + ")*$"
    return Rule({"properties": {"message": {"pattern": pattern}}},
                lambda error: None if re.fullmatch(pattern, error.message, re.DOTALL)
                else f"message may use only the placeholders {', '.join('{%s}' % n for n in names) or '(none)'}")


Frozen = Annotated[Any, AfterValidator(_freeze)]  # any YAML value, read-only
UNIQUE = Rule({"uniqueItems": True}, _repeated)
Absent = SkipJsonSchema[None]  # an optional key: absent is None, an explicit null is refused
Name = Annotated[str, StringConstraints(min_length=1)]
Regex = Annotated[str, StringConstraints(min_length=1), Rule({"format": "regex"}, _not_a_regex)]
Count = Annotated[int, Field(ge=0)]
Positive = Annotated[int, Field(ge=1)]
HttpStatus = Annotated[int, Field(ge=100, le=599)]
ErrorStatus = Annotated[int, Field(ge=400, le=599)]
Role = Literal["user", "assistant", "system"]
ErrorType = Literal["invalid_request_error", "authentication_error", "permission_error", "not_found_error",
                    "request_too_large", "rate_limit_error", "api_error", "timeout_error", "overloaded_error",
                    "billing_error"]


def _conditions(schema: dict[str, Any], model: type[Table]) -> None:
    rules = [{"if": {"properties": {field: {"const": value}}, "required": [field]}, "then": {"required": list(needed)}}
             for field, cases in model.requires_when.items() for value, needed in cases.items()]
    if rules:
        schema["allOf"] = rules


class Table(BaseModel):
    """A table or a part of one: frozen (its mappings too), and no key the model does not name."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=_conditions)
    # field → {value → fields that must be present when the field has that value}
    requires_when: ClassVar[Mapping[str, Mapping[str, tuple[str, ...]]]] = {}

    @model_validator(mode="after")
    def _checked_and_frozen(self) -> Table:
        for field, cases in self.requires_when.items():
            for needed in cases.get(getattr(self, field), ()):
                if getattr(self, needed) is None:
                    raise ValueError(f"'{needed}' is a required property when {field} is {getattr(self, field)!r}")
        for name, value in self.__dict__.items():
            if type(value) is dict:
                self.__dict__[name] = MappingProxyType(value)
        return self


# --- models.yaml ---------------------------------------------------------------------------------

Level = Literal["minimal", "low", "medium", "high"]
Effort = Literal["low", "medium", "high", "xhigh", "max"]
ThinkingKind = Literal["budget", "level", "none"]
Prefix = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]+/$")]


class Defaults(Table):
    BIG_MODEL: Name
    SMALL_MODEL: Name


class Alias(Table):
    contains: Name
    target: Name


def _reversed_range(pair: tuple[int, int]) -> str | None:
    return f"[{pair[0]}, {pair[1]}]: the low end is above the high end" if pair[0] > pair[1] else None


# [low, high] thinking budgets a model takes, both ends included ([0, 0]: it can be switched off).
BudgetRange = Annotated[tuple[Count, Count], Rule({}, _reversed_range)]


class Facts(Table):
    """What the translator must know about one model."""

    requires_when = {"thinking": {"level": ("levels",), "budget": ("budget",)}}
    max_output_tokens: Positive
    context_window: Positive
    thinking: ThinkingKind
    levels: Annotated[tuple[Level, ...], Field(min_length=1), UNIQUE] | Absent = None
    budget: Annotated[tuple[BudgetRange, ...], Field(min_length=1)] | Absent = None
    sampling_params: bool
    structured_output_with_tools: bool  # JSON mode (a response schema) and tools in one request
    fallbacks: Annotated[tuple[Name, ...], UNIQUE] | Absent = None  # models to try when this one cannot answer
    service_tiers: Annotated[tuple[ServiceTier, ...], UNIQUE] | Absent = None  # beyond standard


class BudgetLevel(Table):
    max_budget: int
    level: Level


class ThinkingRules(Table):
    level_order: Annotated[tuple[Level, ...], Field(min_length=1), UNIQUE]
    adaptive_default_effort: Effort
    effort: Annotated[Mapping[Effort, Level], _missing_keys(*get_args(Effort))]
    effort_budgets: Annotated[Mapping[Effort, Count], _missing_keys(*get_args(Effort))]
    budget_levels: Annotated[tuple[BudgetLevel, ...], Field(min_length=1)]


class Listing(Table):
    """``GET /v1/models``: page sizes, and what the alias entries look like."""

    default_limit: Positive
    max_limit: Positive
    alias_id_prefix: Name
    created_at: Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")]


class ServerFallbacks(Table):
    """A request's ``fallbacks`` (server-side fallback on a refusal, beta server-side-fallback-2026-06-01):
    how many entries it may name."""

    max_entries: Positive


ServiceTier = Literal["priority", "flex"]


class ModelsTable(Table):
    """models.yaml: which model answers a requested name, and its facts."""

    defaults: Defaults
    aliases: tuple[Alias, ...]
    gemini_prefix: Annotated[str, StringConstraints(pattern="/$")]
    provider_prefixes: tuple[Prefix, ...]
    known_provider_prefixes: tuple[Prefix, ...]
    model_name_pattern: Regex
    strip_suffixes: tuple[Name, ...]
    fallback: Facts
    models: Annotated[Mapping[str, Facts], Field(min_length=1)]
    thinking: ThinkingRules
    listing: Listing
    server_fallbacks: ServerFallbacks
    speed_tiers: Mapping[Name, ServiceTier]  # a request's `speed` → the Gemini tier it asks for (standard: none)

    def target_name(self, target: str) -> str:
        """An alias target: the model BIG_MODEL or SMALL_MODEL stands for, or the name itself."""
        return getattr(self.defaults, target) if target in Defaults.model_fields else target


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


# --- tools.yaml ----------------------------------------------------------------------------------

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


# --- stop_reasons.yaml ---------------------------------------------------------------------------

StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal",
                     "model_context_window_exceeded"]
OutcomeName = Literal[StopReason, "malformed"]


class RefusalDetails(Table):
    type: Literal["refusal"]
    category: str | None
    explanation: str


class ErrorText(Table):
    """An error the proxy answers with, whole."""

    status: ErrorStatus
    type: ErrorType
    message: Name

    def error(self, **fields: Any) -> AnthropicError:
        """The error, its message's placeholders filled in with ``fields``."""
        return AnthropicError(self.status, self.type, self.message.format(**fields))


class FallbackOn(Table):
    """Which refusals hand the turn to the request's next ``fallbacks`` model: Gemini's native reasons
    (policy blocks, not recitation), else LiteLLM's finish reasons (a blocked prompt has no native one)."""

    native: Annotated[tuple[Annotated[str, StringConstraints(pattern="^[A-Z_]+$")], ...], UNIQUE]
    litellm: Annotated[tuple[Name, ...], UNIQUE]


class StopReasonsTable(Table):
    """stop_reasons.yaml: how an answer ended → Anthropic ``stop_reason``."""

    native: Mapping[Annotated[str, StringConstraints(pattern="^[A-Z_]+$")], OutcomeName]
    litellm: Mapping[str, OutcomeName]
    empty_answer: OutcomeName
    with_tool_calls: StopReason
    default: StopReason
    refusal_details: RefusalDetails
    malformed_error: Annotated[ErrorText, _fills("reason")]
    malformed_retries: Annotated[int, Field(ge=0, le=3)]
    fallback_on: FallbackOn


# --- errors.yaml ---------------------------------------------------------------------------------

class ErrorTarget(Table):
    status: ErrorStatus
    type: ErrorType
    message: Name | Absent = None


class MessageRule(ErrorTarget):
    pattern: Regex


class Backoff(Table):
    """Waits between the proxy's own retries: first_seconds × factor ** retry, plus up to jitter_seconds."""

    first_seconds: Annotated[float, Field(gt=0)]
    factor: Annotated[float, Field(ge=1)]
    jitter_seconds: Annotated[float, Field(ge=0)]


class OwnErrors(Table):
    """The proxy's own errors (not an upstream's)."""

    internal: Annotated[ErrorText, _fills()]
    nested_too_deeply: Annotated[ErrorText, _fills()]
    body_too_large: Annotated[ErrorText, _fills("limit")]
    body_timeout: Annotated[ErrorText, _fills("seconds")]
    bad_api_key: Annotated[ErrorText, _fills()]
    shutting_down: Annotated[ErrorText, _fills()]


class FrameworkErrors(Table):
    """The web framework's own error answers (unknown path, method not allowed) → Anthropic error types."""

    types: Mapping[ErrorStatus, ErrorType]
    otherwise: ErrorType


class ErrorsTable(Table):
    """errors.yaml: upstream failures → Anthropic errors; the proxy's own errors and retries."""

    messages: tuple[MessageRule, ...]
    exceptions: Mapping[Annotated[str, StringConstraints(pattern="^[A-Za-z_][A-Za-z0-9_]*$")], ErrorTarget]
    statuses: Mapping[HttpStatus, ErrorTarget]
    default: ErrorTarget
    retry_delay_pattern: Regex
    retry_statuses: tuple[HttpStatus, ...]
    retry_backoff: Backoff
    fallback_statuses: tuple[HttpStatus, ...]
    own: OwnErrors
    framework: FrameworkErrors


# --- threads.yaml --------------------------------------------------------------------------------

HeldField = Literal["system", "tools"]
FieldName = Annotated[str, StringConstraints(pattern="^[a-z_]+$")]


class ThreadError(Table):
    status: Annotated[int, Field(ge=400, le=499)]
    type: Literal["invalid_request_error", "not_found_error"]
    error_code: Annotated[str, StringConstraints(pattern="^[a-z_]+$")] | Absent = None
    message: Name


class ThreadErrors(Table):
    thread_not_found: ThreadError
    thread_already_continued: ThreadError
    thread_continue_in_flight: ThreadError
    thread_unsupported_request: ThreadError
    held_field_on_continue: ThreadError


def _core_field(names: Mapping[str, Any]) -> str | None:
    core = sorted(set(names) & {"model", "messages", "thread", "max_tokens"})
    return f"a thread always holds {', '.join(core)}" if core else None


class ThreadsTable(Table):
    """threads.yaml: what a message thread keeps, what it cannot hold, and its errors."""

    held_fields: Annotated[tuple[HeldField, ...], UNIQUE]
    unsupported: Annotated[Mapping[FieldName, Name], Rule(
        {"propertyNames": {"not": {"enum": ["model", "messages", "thread", "max_tokens"]}}}, _core_field)]
    errors: ThreadErrors


# --- conformance.yaml ----------------------------------------------------------------------------

Status = Literal["native", "emulated", "ignored", "refused"]
BetaHeader = Annotated[str, StringConstraints(pattern=r"^[a-z0-9-]+-[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
FeatureName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]


class Feature(Table):
    """One request field or content block type of the Anthropic SDK, and what the proxy does with it."""

    requires_when = {"status": {"refused": ("message",)}}
    status: Status
    how: Name                          # what the proxy does with it (native, emulated), or why not
    message: Name | Absent = None      # refused: the 400's message
    beta: BetaHeader | Absent = None   # the anthropic-beta value that enables it, named in refusals


class ConformanceTable(Table):
    """conformance.yaml: every request field, message field and content block type, by status."""

    fields: Annotated[Mapping[FeatureName, Feature], Field(min_length=1)]
    message_fields: Annotated[Mapping[FeatureName, Feature], _missing_keys("role", "content")]
    blocks: Annotated[Mapping[FeatureName, Feature], Field(min_length=1)]
    unknown_field: Annotated[str, _mentions("where", "name")]
    unknown_block: Annotated[str, _mentions("where", "tag", "expected")]
    refused: Annotated[str, _mentions("where", "message")]
    beta_hint: Annotated[str, _mentions("beta", "name")]


# --- the tables and their schemas ----------------------------------------------------------------

TABLE_MODELS: Mapping[str, type[Table]] = MappingProxyType({
    "models": ModelsTable, "roles": RolesTable, "content": ContentTable, "tools": ToolsTable,
    "stop_reasons": StopReasonsTable, "errors": ErrorsTable, "threads": ThreadsTable,
    "conformance": ConformanceTable,
})


class _SchemaWriter(GenerateJsonSchema):
    """Pydantic's JSON Schema, as strict as the models: constrained keys as ``propertyNames`` (not
    ``patternProperties``, which would let other keys through), no titles on fields, no null defaults."""

    def generate(self, schema: Any, mode: Any = "validation") -> dict[str, Any]:
        return {"$schema": self.schema_dialect, **super().generate(schema, mode)}

    def dict_schema(self, schema: Any) -> dict[str, Any]:
        out = super().dict_schema(schema)
        for pattern, values in out.pop("patternProperties", {}).items():
            out["propertyNames"] = {**out.get("propertyNames", {}), "pattern": pattern}
            out["additionalProperties"] = values
        if schema["keys_schema"]["type"] == "int":  # a YAML number key; JSON writes it as digits
            out["propertyNames"] = {"pattern": "^[0-9]+$"}
        return out

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def default_schema(self, schema: Any) -> dict[str, Any]:
        if schema.get("default", ...) is None:
            return self.generate_inner(schema["schema"])
        return super().default_schema(schema)


@lru_cache(maxsize=None)
def json_schema(name: str) -> Mapping[str, Any]:
    """The JSON Schema of table ``name`` (what ``spec/schemas/<name>.schema.json`` holds)."""
    return {**TABLE_MODELS[name].model_json_schema(schema_generator=_SchemaWriter), "title": f"{name}.yaml"}


def schema_text(name: str) -> str:
    """The committed form of :func:`json_schema`."""
    return json.dumps(json_schema(name), indent=2, ensure_ascii=False) + "\n"


