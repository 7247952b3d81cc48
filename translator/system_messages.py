"""Mid-conversation system messages: which are still shown, and which per-turn output_config applies.

``clear_at: "next_user_message"`` shows a system message only for the user turn it follows: once a
later ``role: "user"`` message exists, it stays in ``messages`` but is no longer shown to the model.
A system message's ``output_config`` (``effort``) applies to the turn it precedes, before the
top-level ``output_config``: for this request, the turn being generated.
"""
from __future__ import annotations

from typing import Any, Sequence

from .errors import invalid_request


def cleared(messages: Sequence[Any]) -> frozenset[int]:
    """Indices of the system messages a later user message has cleared (``clear_at``)."""
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=-1)
    return frozenset(i for i, m in enumerate(messages[:last_user])
                     if m.role == "system" and m.clear_at == "next_user_message")


def _opens_turn(message: Any) -> bool:
    """A user message that asks something (not only tool results): the start of a turn."""
    content = message.content
    return message.role == "user" and (isinstance(content, str) or any(
        not (isinstance(b, dict) and b.get("type") == "tool_result") for b in content))


def turn_effort(messages: Sequence[Any], top_level: str | None) -> str | None:
    """The effort of the turn being generated: the last system message's ``output_config.effort`` since
    the assistant answer before the turn's opening user message, else the top-level one."""
    opening = max((i for i, m in enumerate(messages) if _opens_turn(m)), default=-1)
    previous = max((i for i, m in enumerate(messages[:max(opening, 0)]) if m.role == "assistant"), default=-1)
    for message in reversed(messages[previous + 1:]):
        config = message.output_config
        if message.role == "system" and config is not None and config.effort is not None:
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
