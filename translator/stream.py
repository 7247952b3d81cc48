"""LiteLLM stream chunks → Anthropic stream events, as a sans-IO state machine.

Like h11, the machine does no I/O: ``feed`` takes a chunk and returns the events it produces,
and the transitions are a table (``TRANSITIONS``), not control flow. The grammar it keeps
(protocol.md §3.3): one ``message_start``; blocks opened and closed one at a time with
contiguous indexes; a thinking block gets its ``signature_delta`` just before it closes; a
``tool_use`` (and a ``server_tool_use``) starts with ``input: {}`` and its arguments come as
``input_json_delta``; a ``web_search_tool_result`` comes whole in its start event; then one
``message_delta`` with the stop reason and the cumulative usage, and ``message_stop``.
"""
from __future__ import annotations

import json
from typing import Any

from .request import UpstreamCall
from .response import ANSWER_BLOCKS, Outcome, field, outcome, search_blocks, stop_details, usage
from .signatures import encode_tool_id, thinking_signature
from .spec import Spec

Event = dict[str, Any]

# (state, signal) → (actions, next state). Signals come from chunks: thinking text, text,
# the start of a tool call, more arguments for the open tool call, and the end of the stream,
# where the web searches Gemini's grounding reported (collected from any chunk) become whole
# blocks, as they follow the text and tool calls in a non-streamed answer too.
TRANSITIONS: dict[tuple[str, str], tuple[tuple[str, ...], str]] = {
    ("idle", "thinking"): (("open_thinking", "thinking_delta"), "thinking"),
    ("idle", "text"): (("open_text", "text_delta"), "text"),
    ("idle", "tool_call"): (("open_tool", "tool_delta"), "tool_use"),
    ("idle", "end"): (("search_blocks", "message_delta", "message_stop"), "done"),
    ("thinking", "thinking"): (("thinking_delta",), "thinking"),
    ("thinking", "text"): (("sign", "close", "open_text", "text_delta"), "text"),
    ("thinking", "tool_call"): (("sign", "close", "open_tool", "tool_delta"), "tool_use"),
    ("thinking", "end"): (("sign", "close", "search_blocks", "message_delta", "message_stop"), "done"),
    ("text", "thinking"): (("close", "open_thinking", "thinking_delta"), "thinking"),
    ("text", "text"): (("text_delta",), "text"),
    ("text", "tool_call"): (("close", "open_tool", "tool_delta"), "tool_use"),
    ("text", "end"): (("close", "search_blocks", "message_delta", "message_stop"), "done"),
    ("tool_use", "thinking"): (("close", "open_thinking", "thinking_delta"), "thinking"),
    ("tool_use", "text"): (("close", "open_text", "text_delta"), "text"),
    ("tool_use", "tool_call"): (("close", "open_tool", "tool_delta"), "tool_use"),
    ("tool_use", "tool_args"): (("tool_delta",), "tool_use"),
    ("tool_use", "end"): (("close", "search_blocks", "message_delta", "message_stop"), "done"),
}


class StreamProtocolError(RuntimeError):
    """The translator was driven out of order (a bug in the caller, not bad input)."""


class StreamTranslator:
    """One streamed answer. ``start()`` once, ``feed(chunk)`` per chunk, ``finish()`` at the end."""

    def __init__(self, call: UpstreamCall, spec: Spec, message_id: str, input_estimate: int = 0):
        self.call = call
        self.spec = spec
        self.message_id = message_id
        self.input_estimate = input_estimate
        self.state = "new"
        self.index = -1                  # index of the open (or last) block
        self.blocks_opened = 0
        self.visible_blocks = 0          # ANSWER_BLOCKS opened
        self.finish_reason: str | None = None
        self.native_reason: str | None = None
        self.raw_usage: Any = None
        self.saw_tool_call = False
        self.searches = 0                # web searches reported (Google Search grounding)
        self._grounding: list[Any] = []  # groundingMetadata seen on any chunk
        self._tool_index: int | None = None   # LiteLLM's index of the open tool call
        self._ignored: set[int] = set()       # tool call indexes left out (disable_parallel)
        self._suppress = call.max_tokens == 0

    # -- public -----------------------------------------------------------------------------
    def start(self) -> list[Event]:
        if self.state != "new":
            raise StreamProtocolError("start() called twice")
        self.state = "idle"
        return [{"type": "message_start", "message": {
            "id": self.message_id, "type": "message", "role": "assistant", "model": self.call.route.requested,
            "content": [], "stop_reason": None, "stop_sequence": None, "stop_details": None,
            "usage": {"input_tokens": self.input_estimate, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": 1}}}]

    def feed(self, chunk: Any) -> list[Event]:
        if self.state in ("new", "done"):
            raise StreamProtocolError(f"feed() in state {self.state}")
        events: list[Event] = []
        if field(chunk, "usage") is not None:
            self.raw_usage = field(chunk, "usage")
        for choice in field(chunk, "choices", []):
            if field(choice, "finish_reason"):
                self.finish_reason = field(choice, "finish_reason")
            native = field(field(choice, "provider_specific_fields"), "native_finish_reason")
            if native:
                self.native_reason = native
            delta = field(choice, "delta")
            if delta is None or self._suppress:
                continue
            reasoning = field(delta, "reasoning_content")
            if reasoning:
                self._step("thinking", reasoning, events)
            text = field(delta, "content")
            if text:
                self._step("text", text, events)
            for call in field(delta, "tool_calls", []):
                self._tool_signal(call, events)
        self._grounding += field(chunk, "vertex_ai_grounding_metadata", [])
        return events

    @property
    def outcome(self) -> Outcome:
        return outcome(self.finish_reason, self.native_reason, tool_calls=self.saw_tool_call,
                       visible=self.visible_blocks > 0, table=self.spec.stop_reasons,
                       no_content_asked=self._suppress)

    @property
    def has_content(self) -> bool:
        return self.blocks_opened > 0

    def finish(self) -> list[Event]:
        events: list[Event] = []
        self._step("end", None, events)
        return events

    # -- mechanism --------------------------------------------------------------------------
    def _tool_signal(self, call: Any, events: list[Event]) -> None:
        index = field(call, "index", 0)
        if field(call, "id"):
            if self.call.tools.disable_parallel and self.saw_tool_call:
                self._ignored.add(index)
                return
            self.saw_tool_call = True
            self._tool_index = index
            self._step("tool_call", call, events)
        elif index not in self._ignored and index == self._tool_index:
            args = field(field(call, "function"), "arguments")
            if args:
                self._step("tool_args", call, events)

    def _step(self, signal: str, payload: Any, events: list[Event]) -> None:
        try:
            actions, next_state = TRANSITIONS[(self.state, signal)]
        except KeyError:
            raise StreamProtocolError(f"no transition from {self.state} on {signal}") from None
        for action in actions:
            getattr(self, "_do_" + action)(payload, events)
        self.state = next_state

    def _open(self, block: dict[str, Any], events: list[Event]) -> None:
        if block["type"] != "tool_use":
            self._tool_index = None  # later argument pieces of an earlier call have no block to go to
        if block["type"] in ANSWER_BLOCKS:
            self.visible_blocks += 1
        self.index += 1
        self.blocks_opened += 1
        events.append({"type": "content_block_start", "index": self.index, "content_block": block})

    def _delta(self, delta: dict[str, Any], events: list[Event]) -> None:
        events.append({"type": "content_block_delta", "index": self.index, "delta": delta})

    def _do_open_thinking(self, payload: Any, events: list[Event]) -> None:
        self._open({"type": "thinking", "thinking": "", "signature": ""}, events)

    def _do_thinking_delta(self, payload: str, events: list[Event]) -> None:
        self._delta({"type": "thinking_delta", "thinking": payload}, events)

    def _do_sign(self, payload: Any, events: list[Event]) -> None:
        # When a tool call follows the thinking directly, its signature rides along here too.
        signature = None
        if isinstance(payload, dict) or hasattr(payload, "function"):
            signature = field(field(payload, "provider_specific_fields"), "thought_signature")
        self._delta({"type": "signature_delta", "signature": thinking_signature(signature)}, events)

    def _do_open_text(self, payload: Any, events: list[Event]) -> None:
        self._open({"type": "text", "text": ""}, events)

    def _do_text_delta(self, payload: str, events: list[Event]) -> None:
        self._delta({"type": "text_delta", "text": payload}, events)

    def _do_open_tool(self, payload: Any, events: list[Event]) -> None:
        function = field(payload, "function")
        signature = field(field(payload, "provider_specific_fields"), "thought_signature")
        self._open({"type": "tool_use",
                    "id": encode_tool_id(field(payload, "id"), signature, f"{self.message_id}_{self.index + 1}"),
                    "name": self.call.tools.to_anthropic(field(function, "name", "")),
                    "input": {}}, events)

    def _do_tool_delta(self, payload: Any, events: list[Event]) -> None:
        args = field(field(payload, "function"), "arguments", "")
        if args:
            self._delta({"type": "input_json_delta", "partial_json": args}, events)

    def _do_search_blocks(self, payload: Any, events: list[Event]) -> None:
        blocks = [] if self._suppress else search_blocks(self._grounding, self.message_id)
        self.searches = len(blocks) // 2
        for block in blocks:
            if block["type"] == "server_tool_use":
                self._open({**block, "input": {}}, events)
                self._delta({"type": "input_json_delta", "partial_json": json.dumps(block["input"])}, events)
            else:
                self._open(block, events)
            self._do_close(None, events)

    def _do_close(self, payload: Any, events: list[Event]) -> None:
        events.append({"type": "content_block_stop", "index": self.index})

    def _do_message_delta(self, payload: Any, events: list[Event]) -> None:
        result = self.outcome
        # A caller that finishes an unusable answer anyway gets the default stop reason.
        reason = self.spec.stop_reasons.default if result.malformed else result.stop_reason
        events.append({"type": "message_delta",
                       "delta": {"stop_reason": reason, "stop_sequence": None,
                                 "stop_details": stop_details(Outcome(reason, result.native),
                                                              self.spec.stop_reasons, self.finish_reason)},
                       "usage": usage(self.raw_usage, searches=self.searches)})

    def _do_message_stop(self, payload: Any, events: list[Event]) -> None:
        events.append({"type": "message_stop"})
