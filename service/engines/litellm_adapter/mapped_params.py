"""LiteLLM's parameter mapping (``get_optional_params``), remembered across the turns of a session.

Claude Code sends the same tools and settings on every turn; LiteLLM maps them into Gemini's
function declarations again each time, which costs ~6 ms for its 20-odd tools (most of a 50 KB
turn's CPU). The mapping depends on the model, the provider and the parameters, not on the
messages, so the result is kept under those (the parameters as sorted JSON) and handed out as a
fresh copy (the caller may change what it gets). What is kept is LiteLLM's own output, so a hit
is the same as a fresh call (tests/test_long_turn_decoding_caching.py compares them on Claude Code's requests).
"""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable

import orjson

from translator import json_bytes

ParamsMapping = Callable[[str, str, dict[str, Any]], dict[str, Any]]


class MappedParams:
    """A bounded LRU of what ``mapping`` (model, provider, parameters → LiteLLM's mapped parameters:
    gemini.optional_params) gave, as JSON; safe to share between threads."""

    def __init__(self, size: int, mapping: ParamsMapping):
        self.size, self.mapping = size, mapping
        self.entries: OrderedDict[tuple[str, str, bytes], bytes] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, model: str, provider: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            key = (model, provider, json_bytes({k: v for k, v in params.items() if k != "messages"}, sort_keys=True))
        except (TypeError, ValueError):  # a parameter that is not JSON: mapped every time
            return self.mapping(model, provider, params)
        with self.lock:
            held = self.entries.get(key)
            if held is not None:
                self.entries.move_to_end(key)
        if held is not None:
            return orjson.loads(held)
        optional = self.mapping(model, provider, params)
        try:
            data = orjson.dumps(optional)
        except TypeError:
            return optional
        if orjson.loads(data) == optional:  # only what JSON gives back whole (no tuples, no objects)
            with self.lock:
                self.entries[key] = data
                while len(self.entries) > self.size:
                    self.entries.popitem(last=False)
        return optional
