"""Anthropic-shaped errors, and the mapping of upstream failures onto them via errors.yaml."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Iterable, Mapping

if TYPE_CHECKING:  # only for the annotation: tables_errors.py imports this module
    from .tables import ErrorsTable


@dataclass
class AnthropicError(Exception):
    """An error the proxy answers with: HTTP status, Anthropic ``error.type`` and message."""

    status: int
    type: str
    message: str
    retry_after: float | None = None
    details: Mapping[str, Any] | None = None   # error.details: the SDKs read its error_code
    should_retry: bool | None = None            # False: answered with ``x-should-retry: false``

    def __str__(self) -> str:
        return f"{self.status} {self.type}: {self.message}"

    def body(self, request_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"type": "error", "error": {"type": self.type, "message": self.message}}
        if self.details:
            body["error"]["details"] = dict(self.details)
        if request_id:
            body["request_id"] = request_id
        return body


def invalid_request(message: str) -> AnthropicError:
    return AnthropicError(400, "invalid_request_error", message)


@lru_cache(maxsize=64)
def _compiled(pattern: str) -> re.Pattern[str]:
    # Patterns come from the read-only errors table; caching the compiled form is not state
    # that affects results.
    return re.compile(pattern, re.IGNORECASE)


def map_upstream_error(table: ErrorsTable, *, class_names: Iterable[str], status: int | None,
                       message: str, upstream: str = "The upstream") -> AnthropicError:
    """Map an upstream failure to an Anthropic error, by the rules of errors.yaml.

    ``class_names`` is the exception's class and its bases, most specific first, so the table
    can name LiteLLM's classes without the translator importing LiteLLM. Returns the
    :class:`AnthropicError` (with ``retry_after`` when the message gives a delay); raises nothing.
    ``upstream`` names who failed where a rule's message says ``{upstream}`` ("Vertex AI").
    """
    retry_after = None
    delay = _compiled(table.retry_delay_pattern).search(message)
    if delay:
        retry_after = float(delay.group(1))
    for rule in table.messages:
        match = _compiled(rule.pattern).search(message)
        if match:
            text = _filled(rule.message, match.groups(), upstream) if rule.message else message
            return AnthropicError(rule.status, rule.type, text, retry_after, should_retry=rule.retry)
    target = None
    for name in class_names:
        target = table.exceptions.get(name)
        if target:
            break
    if target is None and status is not None:
        target = table.statuses.get(status)
    if target is None:
        target = table.default
    text = _filled(target.message, (), upstream) if target.message else message
    return AnthropicError(target.status, target.type, text, retry_after,
                          should_retry=target.retry)


_PLACEHOLDER = re.compile(r"\{(\d+|upstream)\}")


def _filled(text: str, groups: tuple[str | Any, ...], upstream: str) -> str:
    """A rule's message with ``{1}``, ``{2}``, ... (the pattern's groups) and ``{upstream}`` filled in; any
    other brace an edited table holds stays as written (an error answer must not fail on its own text)."""
    def fill(found: re.Match[str]) -> str:
        name = found.group(1)
        if name == "upstream":
            return upstream
        index = int(name) - 1
        return str(groups[index] or "") if 0 <= index < len(groups) else found.group(0)
    return _PLACEHOLDER.sub(fill, text)
