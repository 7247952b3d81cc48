"""Stream events → the Message they describe, so that a non-streaming answer is the same answer.

The service reads every upstream answer as a stream; a client that did not ask for one gets the
events folded into a Message here (what the SDKs' ``get_final_message()`` builds from a stream),
so both kinds of answer agree by construction. A non-streamed LiteLLM answer goes the same way:
:func:`translate_response` feeds it to the stream translator as one chunk and folds the events.
Pure: events in, a dict out.
"""
from __future__ import annotations

import json
from typing import Any, Iterable

from .chunks import response_chunk
from .request import UpstreamCall
from .response import Outcome
from .spec import Spec
from .stream import StreamTranslator

# content_block_delta type → (block field, how the delta applies to it).
DELTAS: dict[str, tuple[str, str]] = {
    "text_delta": ("text", "append"),
    "thinking_delta": ("thinking", "append"),
    "signature_delta": ("signature", "replace"),
    "input_json_delta": ("partial_json", "append"),
    "compaction_delta": ("content", "replace"),
}


def collect(events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """The Message of a complete event stream (``message_start`` … ``message_stop``).

    Raises ``ValueError`` when the events do not begin with ``message_start``."""
    message: dict[str, Any] | None = None
    blocks: dict[int, dict[str, Any]] = {}
    for event in events:
        kind = event["type"]
        if kind == "message_start":  # copies of what is changed below: the events stay as they were
            start = event["message"]
            message = {**start, "content": list(start["content"]), "usage": dict(start["usage"])}
        elif message is None:
            raise ValueError(f"a {kind} event before message_start")
        elif kind == "content_block_start":
            blocks[event["index"]] = dict(event["content_block"])  # deltas set its top-level fields only
            message["content"].append(blocks[event["index"]])
        elif kind == "content_block_delta":
            _apply(blocks[event["index"]], event["delta"])
        elif kind == "content_block_stop":
            _close(blocks[event["index"]])
        elif kind == "message_delta":
            message.update(event["delta"])
            if "context_management" in event:
                message["context_management"] = event["context_management"]
            message["usage"] = {**message["usage"], **event.get("usage", {})}
    if message is None:
        raise ValueError("no message_start event")
    return message


def _apply(block: dict[str, Any], delta: dict[str, Any]) -> None:
    name, how = DELTAS[delta["type"]]
    block[name] = block.get(name, "") + delta[name] if how == "append" else delta[name]


def _close(block: dict[str, Any]) -> None:
    """A tool call's arguments arrive as JSON text; the block holds them parsed (``{}`` if broken)."""
    text = block.pop("partial_json", None)
    if text is None:
        return
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError:
        parsed = {}
    block["input"] = parsed if isinstance(parsed, dict) else {}


def translate_response(response: Any, call: UpstreamCall, spec: Spec, message_id: str) -> tuple[dict, Outcome]:
    """The Anthropic Message for a non-streaming LiteLLM response (object or dict), and how it ended.

    An unusable answer (``outcome.malformed``) still gets a Message, with the default stop reason,
    as a stream finished anyway does; the caller decides whether to retry. Raises nothing on odd
    responses (absent fields are empty)."""
    stream = StreamTranslator(call, spec, message_id)
    events = stream.start() + stream.feed(response_chunk(response)) + stream.finish()
    return collect(events), stream.outcome
