"""What a stream that ended early is booked with: the output the client received, not 0.

A stream can end before Gemini's closing chunk (Gemini cut it, the client left or stopped reading,
the idle timeout, a shutdown). Its ledger row, metrics and tpm charge then had no usage at all,
though the client had part of the answer. Such a stream is booked with:

- Gemini's last usage report (``usage_source: gemini``): the one the translator already has, or
  the last ``usageMetadata`` the upstream reader saw (Gemini repeats it on every chunk) when the
  stream ended before it was passed on;
- where there is no report, or it counts no output yet, the proxy's estimate of what was written to
  the client (``usage_source: estimate``): the characters of text, thinking and tool-input deltas
  sent, at 4 to a token (the rule ``translator.input_estimate`` applies to requests), and the
  input as ``message_start`` estimated it when Gemini gave no count.
"""
from __future__ import annotations

import logging
from typing import Any, Mapping

from translator import StreamTranslator

log = logging.getLogger("proxy")
DELTA_TEXT_FIELDS = ("text", "thinking", "partial_json")
CHARS_PER_TOKEN = 4


def content_chars(event: Mapping[str, Any]) -> int:
    """The characters of answer an event carries (0 for all but content deltas)."""
    if event["type"] != "content_block_delta":
        return 0
    delta = event["delta"]
    for name in DELTA_TEXT_FIELDS:
        if name in delta:
            return len(delta[name])
    return 0


def _take_last_report(stream: StreamTranslator, upstream: Any) -> None:
    """Pass the upstream reader's last usage report to the translator, if it never was."""
    parser = getattr(upstream, "parser", None)   # answers.GeminiAnswer's; LiteLLM's own streams have none
    if stream.raw_usage is None and parser is not None and parser.usage_report:
        try:  # close() also reads a chunk held back in pieces, which a stream cut mid-chunk may leave broken
            last = parser.close()[-1]
        except Exception as exc:  # noqa: BLE001 - the estimate books the stream instead
            log.info("the last usage report of a stream ended early could not be read: %s", type(exc).__name__)
            return
        stream.feed({"usage": last["usage"]})


def booked_usage(stream: StreamTranslator, upstream: Any, sent_chars: int) -> dict[str, Any]:
    """``usage`` and ``usage_source`` for the access log and usage.record, for any stream."""
    if stream.state == "done":  # finished: the closing message_delta's usage, as the client saw it
        if stream.raw_usage is None:
            return {"usage": None}
        return {"usage": stream.final_usage(), "usage_source": "gemini"}
    if stream.state != "new":
        _take_last_report(stream, upstream)
    usage = stream.final_usage()
    source = "gemini"
    if stream.raw_usage is None:
        usage["input_tokens"] = stream.input_estimate
    if not usage["output_tokens"]:
        usage["output_tokens"] = -(-sent_chars // CHARS_PER_TOKEN)  # rounded up: any text is a token
        source = "estimate"
    return {"usage": usage, "usage_source": source, "partial": True}
