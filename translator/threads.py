"""Message threads (``anthropic-beta: message-threads-2026-08-12``), the pure part.

A request with ``thread: {"type": "create"}`` is answered as usual, and what the thread keeps is
its held fields (``system``, ``tools``: threads.yaml) and its messages followed by the reply. A
``continue`` sends only the new messages: the request answered is the kept conversation followed
by them, with the held fields of the create request. Storing, expiry and the "once only" rule are
the service's (service/state/threads.py); this module says what a request asks, what is kept, and the
errors, from spec/threads.yaml.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from .anthropic_types import ThreadContinue, parse_thread
from .collect import collect
from .errors import AnthropicError, invalid_request
from .spec import Spec
from .stream import StreamTranslator


@dataclass(frozen=True)
class ThreadTurn:
    """A request's use of a thread: a create, or a continue from ``previous_message_id``."""

    previous_message_id: str | None = None

    @property
    def continues(self) -> bool:
        return self.previous_message_id is not None


@dataclass(frozen=True)
class HeldThread:
    """What a thread keeps: the held fields of its create request, and the conversation so far."""

    fields: Mapping[str, Any]
    messages: Sequence[Any]


def thread_error(spec: Spec, name: str, *, message_id: str = "", fields: Sequence[str] = ()) -> AnthropicError:
    """The threads.yaml error ``name``, with its ``error_code`` in ``error.details``."""
    table = spec.threads
    rule = getattr(table.errors, name)
    reasons = "; ".join(f"{field}: {table.unsupported[field]}" for field in fields if field in table.unsupported)
    message = rule.message.format(id=message_id[:100], fields=", ".join(fields), reasons=reasons)
    details: dict[str, Any] | None = None
    if rule.error_code:
        details = {"error_code": rule.error_code}
        if name == "thread_unsupported_request":
            details["unsupported"] = list(fields)
    return AnthropicError(rule.status, rule.type, message, details=details)


def thread_turn(body: Any, spec: Spec) -> ThreadTurn | None:
    """The thread a request body asks for (``None`` without ``thread``), or the 400 it is refused with."""
    if not isinstance(body, dict) or body.get("thread") is None:
        return None  # without a thread; a body that is no object: the request's own checks say so
    thread = parse_thread(body)
    if thread is None:
        return None
    refused = [name for name in spec.threads.unsupported if body.get(name) is not None]
    if refused:
        raise thread_error(spec, "thread_unsupported_request", fields=refused)
    if not isinstance(thread, ThreadContinue):
        return ThreadTurn()
    held = [name for name in spec.threads.held_fields if name in body]
    if held:
        raise thread_error(spec, "held_field_on_continue", fields=held)
    if not isinstance(body.get("messages"), list):
        raise invalid_request("messages: a thread continue needs the list of new messages (it may be empty).")
    return ThreadTurn(thread.previous_message_id)


def continued_request(held: HeldThread, body: Mapping[str, Any]) -> dict[str, Any]:
    """The request a continue stands for: the thread's fields and conversation, then the new messages."""
    request = {name: value for name, value in body.items() if name != "thread"}
    request.update(held.fields)
    request["messages"] = [*held.messages, *body["messages"]]
    return request


def kept_thread(request: Mapping[str, Any], reply: Mapping[str, Any], spec: Spec) -> bytes:
    """What the thread keeps once ``reply`` answered ``request`` (the whole conversation of a
    continue), encoded for the store. A reply without content (``max_tokens: 0``) adds no message."""
    fields = {name: request[name] for name in spec.threads.held_fields if name in request}
    messages = list(request["messages"])
    if reply["content"]:
        messages.append({"role": "assistant", "content": reply["content"]})
    return json.dumps({"fields": fields, "messages": messages}, ensure_ascii=False, separators=(",", ":")).encode()


def read_thread(data: bytes) -> HeldThread:
    """A kept thread back from the store."""
    kept = json.loads(data)
    return HeldThread(kept["fields"], kept["messages"])


class KeptStreamTranslator(StreamTranslator):
    """A stream translator that also keeps the events it made, so that the reply of a thread turn
    can be kept once its stream is complete (and only then)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.events: list[dict[str, Any]] = []

    def start(self) -> list[dict[str, Any]]:
        return self._kept(super().start())

    def feed(self, chunk: Any) -> list[dict[str, Any]]:
        return self._kept(super().feed(chunk))

    def finish(self) -> list[dict[str, Any]]:
        return self._kept(super().finish())

    def _kept(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        self.events += events
        return events

    @property
    def reply(self) -> dict[str, Any] | None:
        """The whole reply once ``message_stop`` was made, else ``None``."""
        if self.events and self.events[-1]["type"] == "message_stop":
            return collect(self.events)
        return None


__all__ = ["HeldThread", "KeptStreamTranslator", "ThreadTurn", "continued_request", "kept_thread", "read_thread",
           "thread_error", "thread_turn"]
