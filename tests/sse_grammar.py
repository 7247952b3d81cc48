"""A checker for Anthropic's stream grammar (protocol.md §3), used on every stream the tests see."""
from __future__ import annotations

import json
from typing import Any

DELTA_FOR_BLOCK = {
    "text": {"text_delta", "citations_delta"},
    "thinking": {"thinking_delta", "signature_delta"},
    "tool_use": {"input_json_delta"},
    "server_tool_use": {"input_json_delta"},
    "web_search_tool_result": set(),
    "web_fetch_tool_result": set(),
    "fallback": set(),
}
TOOL_BLOCKS = ("tool_use", "server_tool_use")


class GrammarError(AssertionError):
    pass


def parse_sse(raw: bytes | str) -> list[tuple[str, dict[str, Any]]]:
    """Split SSE text into (event name, JSON data); every frame must have both lines."""
    text = raw.decode() if isinstance(raw, bytes) else raw
    if "[DONE]" in text:
        raise GrammarError("OpenAI-style [DONE] sentinel in an Anthropic stream")
    events = []
    for frame in text.split("\n\n"):
        if not frame.strip():
            continue
        lines = frame.split("\n")
        if len(lines) != 2 or not lines[0].startswith("event: ") or not lines[1].startswith("data: "):
            raise GrammarError(f"bad frame: {frame!r}")
        name, data = lines[0][7:], json.loads(lines[1][6:])
        if data.get("type") != name:
            raise GrammarError(f"event line {name!r} does not match data type {data.get('type')!r}")
        events.append((name, data))
    return events


def check_stream(raw: bytes | str, *, expect_error: bool = False) -> list[dict[str, Any]]:
    """Validate a whole stream; returns the event dicts (pings included)."""
    events = [data for _, data in parse_sse(raw)]
    if not events or events[0]["type"] != "message_start":
        raise GrammarError("the stream must begin with message_start")
    start = events[0]["message"]
    for key in ("id", "type", "role", "model", "content", "usage"):
        if key not in start:
            raise GrammarError(f"message_start.message lacks {key}")
    if not isinstance(start["usage"], dict) or start["content"] != [] or start["stop_reason"] is not None:
        raise GrammarError("message_start must have a usage object, empty content and a null stop_reason")
    open_block: dict[str, Any] | None = None
    next_index = 0
    json_buffer = ""
    saw_delta = False
    finished = False
    for event in events[1:]:
        kind = event["type"]
        if finished:
            raise GrammarError(f"{kind} after message_stop")
        if kind == "ping":
            continue
        if kind == "error":
            if not expect_error:
                raise GrammarError(f"unexpected error event: {event}")
            return events
        if kind == "message_start":
            raise GrammarError("a second message_start")
        if kind == "content_block_start":
            if open_block is not None:
                raise GrammarError("content_block_start while another block is open")
            if event["index"] != next_index:
                raise GrammarError(f"index {event['index']} where {next_index} was due")
            open_block = event["content_block"]
            json_buffer = ""
            if open_block["type"] in TOOL_BLOCKS and open_block.get("input") != {}:
                raise GrammarError(f"{open_block['type']} must start with input {{}}")
            if open_block["type"] == "web_search_tool_result" and "tool_use_id" not in open_block:
                raise GrammarError("web_search_tool_result must name its server_tool_use")
            if open_block["type"] == "text" and open_block.get("text") != "":
                raise GrammarError("text must start empty")
            if open_block["type"] == "thinking" and (open_block.get("thinking") != "" or "signature" not in open_block):
                raise GrammarError("thinking must start empty with a signature field")
        elif kind == "content_block_delta":
            if open_block is None or event["index"] != next_index:
                raise GrammarError("delta outside its open block")
            delta_type = event["delta"]["type"]
            if delta_type not in DELTA_FOR_BLOCK.get(open_block["type"], set()):
                raise GrammarError(f"{delta_type} in a {open_block['type']} block")
            if delta_type == "input_json_delta":
                json_buffer += event["delta"]["partial_json"]
            if open_block["type"] == "thinking" and open_block.get("_signed") and delta_type == "thinking_delta":
                raise GrammarError("thinking_delta after signature_delta")
            if delta_type == "signature_delta":
                open_block["_signed"] = True
        elif kind == "content_block_stop":
            if open_block is None or event["index"] != next_index:
                raise GrammarError("content_block_stop without its open block")
            if open_block["type"] in TOOL_BLOCKS and json_buffer:
                value = json.loads(json_buffer)
                if not isinstance(value, dict):
                    raise GrammarError("tool input must be a JSON object")
            if open_block["type"] == "thinking" and not open_block.get("_signed"):
                raise GrammarError("thinking block closed without signature_delta")
            open_block = None
            next_index += 1
        elif kind == "message_delta":
            if open_block is not None:
                raise GrammarError("message_delta while a block is open")
            if not isinstance(event.get("usage"), dict) or "output_tokens" not in event["usage"]:
                raise GrammarError("message_delta needs a usage object with output_tokens")
            if event["delta"].get("stop_reason") is None:
                raise GrammarError("message_delta needs a stop_reason")
            saw_delta = True
        elif kind == "message_stop":
            if not saw_delta:
                raise GrammarError("message_stop before message_delta")
            finished = True
        else:
            raise GrammarError(f"unknown event type {kind}")
    if expect_error:
        raise GrammarError("expected an error event")
    if not finished:
        raise GrammarError("the stream ended without message_stop")
    return events
