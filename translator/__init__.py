"""Anthropic Messages API ⇄ LiteLLM (Gemini) translation, as a pure library.

No I/O and no LiteLLM import: give it the loaded spec and plain data (or LiteLLM's response
objects), get plain data back.

    spec = load_spec()                                   # validates every YAML table
    call = translate_request(body, spec)                 # → call.kwargs for litellm.acompletion
    call = translate_request(body, spec, turn_cache=TurnCache(32 << 20))  # the same, history turns memoised
    call = translate_call(body, spec)                    # the same, with `speed` and web_fetch rules
    hops = plan_fallbacks(body, spec, call=call)         # `fallbacks`: a Fallback per model, translated
    message, outcome = translate_response(resp, call, spec, "msg_1")
    stream = StreamTranslator(call, spec, "msg_1"); stream.start(); stream.feed(chunk); stream.finish()
    message = collect(events)                            # the events of a whole stream → its Message
    error = map_upstream_error(spec.errors, class_names=[...], status=429, message="...")
    turn = thread_turn(body, spec)                       # message threads: create, continue, or None
    body = continued_request(read_thread(kept), body)    # a continue → the whole conversation
    query = report_query(args, now); usage_page(query, totals)   # Anthropic's Admin API usage report

``StreamTranslator.feed`` reads each LiteLLM chunk through :func:`read_chunk`, which turns it into
the translator's own events (``TextDelta``, ``ToolCallStart``, ``Finish``, ...); ``TRANSITIONS`` is
keyed by their types. Everything else in this package is private: import ``translator`` only.
"""
from .anthropic_types import parse_request
from .caching import (LOOKBACK as CACHE_LOOKBACK, CacheAsk, CacheChoice, Hashed, cache_ask, canonical_json, choose_cache,
                      content_counts, hashed_prefixes, prefix_keys, prefixes)
from .chunks import (End, Finish, Grounding, HandOver, TextDelta, ThinkingDelta, ToolCallDelta, ToolCallStart,
                     UrlContext, Usage, read_chunk, response_chunk)
from .collect import collect, translate_response
from .compaction import compacted_body, compaction_block, compaction_usage, summary_request, summary_text
from .edits import EditPlan, counted_tokens, estimate as edits_estimate, plan_edits
from .edit_report import EditReport, billed_usage
from .decoding import decode_json, input_estimate, json_bytes
from .errors import AnthropicError, map_upstream_error
from .fallbacks import Fallback, plan_fallbacks, translate_call, with_speed
from .request import UpstreamCall, translate_count_tokens, translate_request
from .response import Outcome, unusable_answer_error, usage
from .paging import page as model_page
from .prices import PricesTable, cache_worth_growing, gemini_service_tier, price_on, rates, unpriced_models
from .routing import Route, model_entry, model_list, resolve_model
from .signatures import decode_tool_id, encode_tool_id
from .spec import DEFAULT_SPEC_DIR, Spec, SpecError, load_spec
from .tables import ErrorText, OwnErrors
from .stream import TRANSITIONS, StreamProtocolError, StreamTranslator
from .threads import (HeldThread, KeptStreamTranslator, ThreadTurn, continued_request, kept_thread, read_thread,
                      thread_error, thread_turn)
from .tools import DeclarationCache, ToolPlan
from .turn_cache import TurnCache
from .web_fetch import domain_allowed, fetch_blocks
from .usage_report import ReportQuery, cost_page, report_query, usage_page

__all__ = [
    "AnthropicError", "DEFAULT_SPEC_DIR", "DeclarationCache", "End", "Finish", "Grounding", "HeldThread",
    "KeptStreamTranslator", "Outcome", "Route", "Spec", "SpecError", "StreamProtocolError", "StreamTranslator",
    "TRANSITIONS", "TextDelta", "ThinkingDelta", "ThreadTurn", "ToolCallDelta", "ToolCallStart", "ToolPlan",
    "UpstreamCall", "Usage", "collect", "continued_request", "decode_json", "decode_tool_id", "encode_tool_id",
    "input_estimate", "json_bytes", "kept_thread", "load_spec", "map_upstream_error", "model_entry", "model_list",
    "model_page", "parse_request", "read_chunk", "read_thread", "resolve_model", "response_chunk", "thread_error", "thread_turn",
    "translate_count_tokens", "translate_request", "translate_response", "unusable_answer_error", "usage",
    "ReportQuery", "cost_page", "report_query", "usage_page",
    "EditPlan", "EditReport", "billed_usage", "compacted_body", "counted_tokens", "compaction_block", "compaction_usage", "edits_estimate", "plan_edits",
    "summary_request", "summary_text",
    "Fallback", "HandOver", "UrlContext", "domain_allowed", "fetch_blocks", "plan_fallbacks", "translate_call",
    "with_speed",
    "CACHE_LOOKBACK", "CacheAsk", "CacheChoice", "Hashed", "cache_ask", "canonical_json", "choose_cache",
    "content_counts", "hashed_prefixes", "prefix_keys", "prefixes",
    "PricesTable", "cache_worth_growing", "gemini_service_tier", "price_on", "rates", "unpriced_models",
    "ErrorText", "OwnErrors",
    "TurnCache",
]
