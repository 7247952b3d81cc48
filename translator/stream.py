"""LiteLLM stream chunks → Anthropic stream events, as a sans-IO state machine.

Like h11, the machine does no I/O: ``feed`` takes a chunk, reads it into the translator's own
events (``chunks.read_chunk``) and returns the Anthropic events they produce; the transitions are
a table keyed by state and event type (``TRANSITIONS``), not control flow. The grammar it keeps
(protocol.md §3.3): one ``message_start``; blocks opened and closed one at a time with
contiguous indexes; a thinking block gets its ``signature_delta`` just before it closes; a
``tool_use`` (and a ``server_tool_use``) starts with ``input: {}`` and its arguments come as
``input_json_delta``; a ``web_search_tool_result`` (and a ``web_fetch_tool_result``) comes whole in its
start event; a ``fallback`` block (the model declined and a fallback answers on: ``hand_over``) is a
start and a stop; then one ``message_delta`` with the stop reason and the cumulative usage, and
``message_stop``.
"""
from __future__ import annotations

import json
from typing import Any, Callable

from .chunks import (End, Finish, Grounding, HandOver, TextDelta, ThinkingDelta, ToolCallDelta, ToolCallStart,
                     UrlContext, Usage, field, read_chunk)
from .edit_report import EditReport
from .request import UpstreamCall
from .response import ANSWER_BLOCKS, Outcome, outcome, search_blocks, stop_details, usage
from .signatures import encode_tool_id, tag_signature, thinking_signature
from .spec import Spec
from .web_fetch import fetch_blocks

Event = dict[str, Any]

# (state, event type) → (actions, next state). The events come from chunks (translator/chunks.py):
# thinking text, text, the start of a tool call, more arguments for the open tool call; ``End`` is
# the end of the stream, where the web searches Gemini's grounding reported (collected from any
# chunk) become whole blocks, as they follow the text and tool calls in a non-streamed answer too.
TRANSITIONS: dict[tuple[str, type], tuple[tuple[str, ...], str]] = {
    ("idle", ThinkingDelta): (("open_thinking", "thinking_delta"), "thinking"),
    ("idle", TextDelta): (("open_text", "text_delta"), "text"),
    ("idle", ToolCallStart): (("open_tool", "tool_delta"), "tool_use"),
    ("idle", End): (("search_blocks", "message_delta", "message_stop"), "done"),
    ("thinking", ThinkingDelta): (("thinking_delta",), "thinking"),
    ("thinking", TextDelta): (("sign", "close", "open_text", "text_delta"), "text"),
    ("thinking", ToolCallStart): (("sign", "close", "open_tool", "tool_delta"), "tool_use"),
    ("thinking", End): (("sign", "close", "search_blocks", "message_delta", "message_stop"), "done"),
    ("text", ThinkingDelta): (("close", "open_thinking", "thinking_delta"), "thinking"),
    ("text", TextDelta): (("text_delta",), "text"),
    ("text", ToolCallStart): (("close", "open_tool", "tool_delta"), "tool_use"),
    ("text", End): (("close", "search_blocks", "message_delta", "message_stop"), "done"),
    ("tool_use", ThinkingDelta): (("close", "open_thinking", "thinking_delta"), "thinking"),
    ("tool_use", TextDelta): (("close", "open_text", "text_delta"), "text"),
    ("tool_use", ToolCallStart): (("close", "open_tool", "tool_delta"), "tool_use"),
    ("tool_use", ToolCallDelta): (("tool_delta",), "tool_use"),
    ("tool_use", End): (("close", "search_blocks", "message_delta", "message_stop"), "done"),
    # The model declined and a fallback answers on: the open block ends, a fallback block marks the hop.
    ("idle", HandOver): (("fallback_block",), "idle"),
    ("thinking", HandOver): (("sign", "close", "fallback_block"), "idle"),
    ("text", HandOver): (("close", "fallback_block"), "idle"),
    ("tool_use", HandOver): (("close", "fallback_block"), "idle"),
} | {
    # What only needs noting for the end (how it ended, usage, searches) changes no state.
    (state, kind): ((action,), state) for state in ("idle", "thinking", "text", "tool_use")
    for kind, action in ((Finish, "note_finish"), (Usage, "note_usage"), (Grounding, "note_grounding"),
                         (UrlContext, "note_url_context"))
}
CONTENT = (ThinkingDelta, TextDelta, ToolCallStart, ToolCallDelta)


class StreamProtocolError(RuntimeError):
    """The translator was driven out of order (a bug in the caller, not bad input)."""


class StreamTranslator:
    """One streamed answer. ``start()`` once, ``feed(chunk)`` per chunk, ``finish()`` at the end."""

    def __init__(self, call: UpstreamCall, spec: Spec, message_id: str, input_estimate: int = 0,
                 edits: EditReport | None = None):
        self.edits = edits or EditReport()  # context_management: lead blocks, applied_edits
        self.spec = spec
        self.message_id = message_id
        self.input_estimate = input_estimate
        self.state = "new"
        self.index = -1                  # index of the open (or last) block
        self.blocks_opened = 0
        self.searches = 0                # web searches reported (Google Search grounding)
        self.fetches = 0                 # web fetches reported (URL context)
        self.iterations: list[dict[str, Any]] = []  # usage of each model that declined (server-side fallbacks)
        self._answering = call.route.requested       # who answers, as a fallback block's `from` names it
        self._begin(call)

    def _begin(self, call: UpstreamCall) -> None:
        """The state of one model's answer (the request's model, or a fallback's)."""
        self.call = call
        self.visible_blocks = 0          # ANSWER_BLOCKS opened
        self.finish_reason: str | None = None
        self.native_reason: str | None = None
        self.raw_usage: Usage | None = None   # the last Usage event; None until the upstream reports one
        self.saw_tool_call = False
        self._grounding: list[Any] = []  # groundingMetadata seen on any chunk
        self._url_context: list[Any] = []  # urlContextMetadata seen on any chunk
        self._tool_index: int | None = None   # LiteLLM's index of the open tool call
        self._ignored: set[int] = set()       # tool call indexes left out (disable_parallel, broken)
        self.broken_call: str | None = None   # why a strict tool's call broke its schema: the answer is unusable
        self._suppress = call.max_tokens == 0
        self._issuer: str | None = None  # the model that answers (a fallback's, not always the call's)
        self._guards = _NO_CONTENT if self._suppress else _GUARDS

    # -- public -----------------------------------------------------------------------------
    def start(self) -> list[Event]:
        """The stream's first event: ``[message_start]``, its usage the input estimate.

        Raises :class:`StreamProtocolError` when called twice."""
        if self.state != "new":
            raise StreamProtocolError("start() called twice")
        self.state = "idle"
        lead = self.edits.lead_events()
        self.index += len(self.edits.lead_blocks)
        return [{"type": "message_start", "message": {
            "id": self.message_id, "type": "message", "role": "assistant", "model": self.call.route.requested,
            "content": [], "stop_reason": None, "stop_sequence": None, "stop_details": None,
            "usage": {"input_tokens": self.input_estimate, "cache_creation_input_tokens": 0,
                      "cache_read_input_tokens": 0, "output_tokens": 1}}}, *lead]

    def feed(self, chunk: Any) -> list[Event]:
        """The Anthropic events one LiteLLM chunk (object or dict) produces, often none; what only
        matters at the end (finish reason, usage, grounding) is kept for :meth:`finish`.

        Raises :class:`StreamProtocolError` before :meth:`start` or after :meth:`finish`."""
        if self.state in ("new", "done"):
            raise StreamProtocolError(f"feed() in state {self.state}")
        events: list[Event] = []
        if type(chunk) is HandOver:
            self._step(chunk, events)
            return events
        if self._issuer is None:
            self._issuer = str(field(chunk, "model") or self.call.route.signer).removeprefix("gemini/")
        for event in read_chunk(chunk):
            self._step(event, events)
        return events

    @property
    def outcome(self) -> Outcome:
        """How the answer ended so far (``malformed``: nothing usable, retry or answer an error)."""
        return outcome(self.finish_reason, self.native_reason, tool_calls=self.saw_tool_call,
                       visible=self.visible_blocks > 0, table=self.spec.stop_reasons,
                       no_content_asked=self._suppress, broken_call=self.broken_call)

    @property
    def declined(self) -> bool:
        """Whether the answer so far is a refusal a fallback model may answer instead
        (stop_reasons.yaml ``fallback_on``); an answer that called tools never is."""
        rule = self.spec.stop_reasons.fallback_on
        if self.saw_tool_call:
            return False
        if self.native_reason:
            return self.native_reason in rule.native
        return self.finish_reason in rule.litellm

    def hand_over(self, call: UpstreamCall, model: str) -> list[Event]:
        """The events that end a declined answer (see :attr:`declined`) and hand the turn to a fallback:
        the open block's stop, then a ``fallback`` block; the fallback's chunks are fed next.

        Raises :class:`StreamProtocolError` outside an answer."""
        if self.state in ("new", "done"):
            raise StreamProtocolError(f"hand_over() in state {self.state}")
        return self.feed(HandOver(call, model))  # through feed, so that a subclass keeping events keeps these

    def final_usage(self) -> dict[str, Any]:
        """The answer's usage as its ``message_delta`` reports it: with fallbacks, the sum over every
        model that ran, and ``iterations`` (a ``message`` entry per declined model, then the
        ``fallback_message`` entry of the one that answered)."""
        last = usage(self.raw_usage, searches=self.searches, fetches=self.fetches)
        if not self.iterations:
            return last
        answered = {"type": "fallback_message", "model": self._answering,
                    **{k: last[k] for k in ITERATION_FIELDS}}
        iterations = [*self.iterations, answered]
        return {**last, **{k: sum(i[k] for i in iterations) for k in ITERATION_FIELDS}, "iterations": iterations}

    @property
    def has_content(self) -> bool:
        return self.blocks_opened > 0

    def finish(self) -> list[Event]:
        """The closing events: the open block's stop, the web search blocks, ``message_delta``
        (stop reason, stop details, usage) and ``message_stop``. A malformed answer (see
        :attr:`outcome`) finished anyway gets the default stop reason.

        Raises :class:`StreamProtocolError` before :meth:`start` or when called twice."""
        events: list[Event] = []
        self._step(_END, events)
        return events

    # -- mechanism --------------------------------------------------------------------------
    def _step(self, event: Any, events: list[Event]) -> None:
        kind = type(event)
        guard = self._guards.get(kind)
        if guard is not None and not guard(self, event):
            return
        try:
            actions, next_state = _PLAN[(self.state, kind)]
        except KeyError:
            raise StreamProtocolError(f"no transition from {self.state} on {kind.__name__}") from None
        for action in actions:
            action(self, event, events)
        self.state = next_state

    def _drop(self, event: Any) -> bool:
        return False

    def _admit_tool(self, event: ToolCallStart) -> bool:
        if self.call.tools.disable_parallel and self.saw_tool_call:
            self._ignored.add(event.index)
            return False
        broken = self.call.tools.broken_call(event.name, event.arguments)
        if broken:  # never shown: the answer is retried, or ends in an error
            self.broken_call = self.broken_call or broken
            self._ignored.add(event.index)
            return False
        return True

    def _continues_tool(self, event: ToolCallDelta) -> bool:
        return event.index == self._tool_index and event.index not in self._ignored

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

    def _do_thinking_delta(self, event: ThinkingDelta, events: list[Event]) -> None:
        self._delta({"type": "thinking_delta", "thinking": event.text}, events)

    def _do_sign(self, event: Any, events: list[Event]) -> None:
        # When a tool call follows the thinking directly, its signature rides along here too.
        signature = event.signature if type(event) is ToolCallStart else None
        self._delta({"type": "signature_delta", "signature": thinking_signature(self._tagged(signature))}, events)

    def _tagged(self, signature: str | None) -> str | None:
        return tag_signature(signature, self._issuer or self.call.route.signer)

    def _do_open_text(self, payload: Any, events: list[Event]) -> None:
        self._open({"type": "text", "text": ""}, events)

    def _do_text_delta(self, event: TextDelta, events: list[Event]) -> None:
        self._delta({"type": "text_delta", "text": event.text}, events)

    def _do_open_tool(self, event: ToolCallStart, events: list[Event]) -> None:
        # A call without an id (not LiteLLM's Gemini, which makes them up) gets one from its place.
        self._open({"type": "tool_use",
                    "id": encode_tool_id(event.id, self._tagged(event.signature), f"{self.message_id}_{self.index + 1}"),
                    "name": self.call.tools.to_anthropic(event.name),
                    "input": {}}, events)
        self.saw_tool_call = True
        self._tool_index = event.index

    def _do_tool_delta(self, event: ToolCallStart | ToolCallDelta, events: list[Event]) -> None:
        if event.arguments:
            self._delta({"type": "input_json_delta", "partial_json": event.arguments}, events)

    def _do_search_blocks(self, payload: Any, events: list[Event]) -> None:
        blocks = [] if self._suppress else search_blocks(self._grounding, self.message_id)
        self.searches = len(blocks) // 2
        if not self._suppress:
            fetched, self.fetches = fetch_blocks(self._url_context, self.call.tools.grounding.get("url_context"),
                                                 self.spec.tools, self.message_id)
            blocks += fetched
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
        events.append(self.edits.decorate({"type": "message_delta",
                       "delta": {"stop_reason": reason, "stop_sequence": None,
                                 "stop_details": stop_details(Outcome(reason, result.native),
                                                              self.spec.stop_reasons, self.finish_reason)},
                       "usage": self.final_usage()}))

    def _do_message_stop(self, payload: Any, events: list[Event]) -> None:
        events.append({"type": "message_stop"})

    def _do_note_finish(self, event: Finish, events: list[Event]) -> None:
        self.finish_reason = event.reason or self.finish_reason
        self.native_reason = event.native or self.native_reason

    def _do_note_usage(self, event: Usage, events: list[Event]) -> None:
        self.raw_usage = event

    def _do_note_grounding(self, event: Grounding, events: list[Event]) -> None:
        self._grounding += event.metadata

    def _do_note_url_context(self, event: UrlContext, events: list[Event]) -> None:
        self._url_context += event.metadata

    def _do_fallback_block(self, event: HandOver, events: list[Event]) -> None:
        # Not content for the stream's head: the fallback's own answer is what is waited for.
        declined = usage(self.raw_usage)
        self.iterations.append({"type": "message", "model": self._answering,
                                **{k: declined[k] for k in ITERATION_FIELDS}})
        self.index += 1
        events.append({"type": "content_block_start", "index": self.index, "content_block": {
            "type": "fallback", "from": {"model": self._answering}, "to": {"model": event.model},
            "trigger": {"type": "refusal", "category": None}}})
        events.append({"type": "content_block_stop", "index": self.index})
        self._answering = event.model
        self._begin(event.call)


_END = End()
ITERATION_FIELDS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens")
# Content events that may be dropped before the table: tool calls left out and argument pieces
# with no open call, or all of them when no content was asked for (max_tokens 0).
_GUARDS: dict[type, Callable[[StreamTranslator, Any], bool]] = {ToolCallStart: StreamTranslator._admit_tool,
                                                                 ToolCallDelta: StreamTranslator._continues_tool}
_NO_CONTENT = dict.fromkeys(CONTENT, StreamTranslator._drop)
# TRANSITIONS with the actions' methods looked up once, for the hot path.
_PLAN = {key: (tuple(getattr(StreamTranslator, "_do_" + name) for name in actions), state)
         for key, (actions, state) in TRANSITIONS.items()}
