"""The models of ``spec/stop_reasons.yaml``, ``spec/errors.yaml`` and ``spec/threads.yaml``."""
from __future__ import annotations

from typing import Annotated, Any, Literal, Mapping

from pydantic import Field, StringConstraints

from .errors import AnthropicError
from .tables_base import UNIQUE, Absent, ErrorStatus, ErrorType, HttpStatus, Name, Regex, Rule, Table, _fills


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
    error_code: Annotated[str, StringConstraints(pattern="^[a-z_]+$")] | Absent = None  # error.details.error_code

    def error(self, *, retry_after: float | None = None, **fields: Any) -> AnthropicError:
        """The error, its message's placeholders filled in with ``fields`` (``retry_after``: the wait to advise)."""
        details = {"error_code": self.error_code} if self.error_code else None
        return AnthropicError(self.status, self.type, self.message.format(**fields), retry_after=retry_after,
                              details=details)


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
    # false: the answer carries ``x-should-retry: false`` (the Anthropic SDKs then do not retry it),
    # for failures a retry cannot mend, such as the proxy's own upstream credentials being refused
    retry: Literal[False] | Absent = None


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
    over_rate_limit: Annotated[ErrorText, _fills("key", "limit")]
    keys_resting: Annotated[ErrorText, _fills("model")]
    untranslatable_answer: Annotated[ErrorText, _fills()]
    model_not_allowed: Annotated[ErrorText, _fills("model")]
    origin_refused: Annotated[ErrorText, _fills("origin")]
    admin_only: Annotated[ErrorText, _fills()]
    dashboard_admin_only: Annotated[ErrorText, _fills()]
    ledger_off: Annotated[ErrorText, _fills()]
    ledger_failed: Annotated[ErrorText, _fills()]
    metrics_off: Annotated[ErrorText, _fills()]
    needs_database: Annotated[ErrorText, _fills("api")]
    batch_requests_missing: Annotated[ErrorText, _fills()]
    batch_too_many_requests: Annotated[ErrorText, _fills("limit")]
    batch_custom_id_invalid: Annotated[ErrorText, _fills("number")]
    batch_custom_id_repeated: Annotated[ErrorText, _fills("number", "custom_id")]
    batch_params_missing: Annotated[ErrorText, _fills("number")]
    batch_not_found: Annotated[ErrorText, _fills("batch_id")]
    batch_in_progress: Annotated[ErrorText, _fills("batch_id")]
    batch_not_ended: Annotated[ErrorText, _fills("batch_id")]
    batch_key_gone: Annotated[ErrorText, _fills()]
    batch_stream: Annotated[ErrorText, _fills()]
    batch_model_missing: Annotated[ErrorText, _fills()]
    batch_not_gemini: Annotated[ErrorText, _fills("model")]
    batch_quota: Annotated[ErrorText, _fills("model")]
    batch_unanswered: Annotated[ErrorText, _fills("state")]
    file_not_found: Annotated[ErrorText, _fills("file_id")]
    file_id_missing: Annotated[ErrorText, _fills("where")]
    file_id_refused: Annotated[ErrorText, _fills("where", "reason")]
    files_need_database: Annotated[ErrorText, _fills()]
    file_too_large: Annotated[ErrorText, _fills("key", "limit", "left")]
    upload_without_length: Annotated[ErrorText, _fills()]
    upload_without_file: Annotated[ErrorText, _fills()]
    file_not_downloadable: Annotated[ErrorText, _fills("file_id")]
    no_upload_url: Annotated[ErrorText, _fills()]


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
