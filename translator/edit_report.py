"""What an answer says about the request's ``context_management`` edits, as Anthropic reports it.

``context_management: {applied_edits: [...]}`` on the Message and on a stream's ``message_delta``
(whenever the request had edits, ``[]`` when none applied); a ``compaction`` block before the model's
own blocks; the summary call's usage as a ``usage.iterations`` entry of type ``compaction``, beside
one of type ``message`` (the top-level usage leaves the compaction out). Pure.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

Event = dict[str, Any]


@dataclass(frozen=True)
class EditReport:
    """``reported``: the request had edits; ``lead_blocks``: whole blocks before the model's (a
    compaction block); ``compaction_usage``: the summary call's iteration entry."""

    reported: bool = False
    applied_edits: tuple[Mapping[str, Any], ...] = ()
    lead_blocks: tuple[Mapping[str, Any], ...] = ()
    compaction_usage: Mapping[str, Any] | None = None

    def context_management(self) -> dict[str, Any] | None:
        return {"applied_edits": [dict(edit) for edit in self.applied_edits]} if self.reported else None

    def lead_events(self) -> list[Event]:
        """The stream events of the lead blocks, indexes from 0: a compaction block starts with a null
        content that one ``compaction_delta`` fills (as the SDKs accumulate it)."""
        events: list[Event] = []
        for index, block in enumerate(self.lead_blocks):
            events.append({"type": "content_block_start", "index": index,
                           "content_block": {**block, "content": None}})
            events.append({"type": "content_block_delta", "index": index,
                           "delta": {"type": "compaction_delta", "content": block.get("content"),
                                     "encrypted_content": None}})
            events.append({"type": "content_block_stop", "index": index})
        return events

    def decorate(self, message_delta: Event) -> Event:
        """``message_delta`` with ``context_management`` and, after a compaction, ``usage.iterations``."""
        if self.compaction_usage is not None:
            usage = message_delta["usage"]
            message = {"type": "message", **{key: usage.get(key, 0) for key in (
                "input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")}}
            message_delta["usage"] = {**usage, "iterations": [dict(self.compaction_usage), message]}
        context = self.context_management()
        if context is not None:
            message_delta["context_management"] = context
        return message_delta

    def paused_events(self, message_id: str, model: str, stop_reason: str) -> list[Event]:
        """A whole answer that is only the lead blocks (``pause_after_compaction``)."""
        usage = {"input_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 0}
        start = {"type": "message_start", "message": {
            "id": message_id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "stop_details": None, "usage": dict(usage)}}
        delta = {"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": None,
                                                    "stop_details": None}, "usage": dict(usage)}
        return [start, *self.lead_events(), self.decorate(delta), {"type": "message_stop"}]


def billed_usage(usage: Mapping[str, Any] | None, report: EditReport | None) -> Mapping[str, Any] | None:
    """The usage to book (ledger, rate limits): the answer's, plus the compaction call's tokens, which
    Anthropic's top-level usage leaves out but which were spent all the same."""
    spent = report.compaction_usage if report is not None else None
    if usage is None or spent is None:
        return usage
    return {**usage, **{key: usage.get(key, 0) + spent.get(key, 0) for key in (
        "input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")}}
