"""Mid-conversation system messages: which are still shown, and which per-turn output_config applies.

``clear_at: "next_user_message"`` shows a system message only for the user turn it follows: once a
later ``role: "user"`` message exists, it stays in ``messages`` but is no longer shown to the model.
A system message's ``output_config`` (``effort``) applies to the turn it precedes, before the
top-level ``output_config``: for this request, the turn being generated.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

from .errors import invalid_request
from .tables import Effort


def _last(messages: Sequence[Any], wanted: Callable[[Any], bool], before: int | None = None) -> int:
    """The index of the last message before ``before`` that is ``wanted``, or -1 (scanned from the end:
    what this module looks for is near the end of long conversations)."""
    for i in range(len(messages) - 1 if before is None else before - 1, -1, -1):
        if wanted(messages[i]):
            return i
    return -1


def cleared(messages: Sequence[Any]) -> frozenset[int]:
    """Indices of the system messages a later user message has cleared (``clear_at``)."""
    last_user = _last(messages, lambda m: m.role == "user")
    return frozenset(i for i in range(last_user)
                     if messages[i].clear_at == "next_user_message" and messages[i].role == "system")


def _opens_turn(message: Any) -> bool:
    """A user message that asks something (not only tool results): the start of a turn."""
    content = message.content
    return message.role == "user" and (isinstance(content, str) or any(
        not (isinstance(b, dict) and b.get("type") == "tool_result") for b in content))


def turn_effort(messages: Sequence[Any], top_level: Effort | None) -> Effort | None:
    """The effort of the turn being generated: the last system message's ``output_config.effort`` since
    the assistant answer before the turn's opening user message, else the top-level one."""
    if not any(m.role == "system" and m.output_config is not None for m in messages):
        return top_level   # the usual case, found without looking for the turn's start in a long tool loop
    opening = _last(messages, _opens_turn)
    previous = _last(messages, lambda m: m.role == "assistant", max(opening, 0))
    for i in range(len(messages) - 1, previous, -1):
        config = messages[i].output_config
        if messages[i].role == "system" and config is not None and config.effort is not None:
            return config.effort
    return top_level


def check_system_message(message: Any, where: str) -> None:
    """Anthropic's rules for the per-message fields: system messages only, and never empty."""
    if message.role != "system":
        for name in ("clear_at", "output_config"):
            if getattr(message, name) is not None:
                raise invalid_request(f"{where}.{name}: only permitted on role: \"system\" messages.")
        return
    config = message.output_config
    if not message.content and (config is None or not config.model_fields_set):
        raise invalid_request(f"{where}: a system message needs content or output_config fields.")


__all__ = ["check_system_message", "cleared", "turn_effort"]
