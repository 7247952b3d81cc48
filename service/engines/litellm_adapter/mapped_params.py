"""LiteLLM's parameter mapping (``get_optional_params``), remembered across the turns of a session.

Claude Code sends the same tools and settings on every turn; LiteLLM maps them into Gemini's
function declarations again each time, which costs ~6 ms for its 20-odd tools (most of a 50 KB
turn's CPU). The mapping depends on the model, the provider and the parameters, not on the
messages, so the result is kept under those (the parameters as sorted JSON) and handed out as a
fresh copy (the caller may change what it gets). What is kept is LiteLLM's own output, so a hit
is the same as a fresh call (tests/test_long_turn_decoding_caching.py compares them on Claude Code's requests).

The translator hands out the same tool list again for the same tools (its plan is kept), so the key of
a list seen before is found by the list's identity (the list held beside it) and the rest of the
parameters, without writing the tools again.
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
        # (model, provider, id of a tool list, the other parameters' JSON) → (that list, the entry's key)
        self.by_tools: OrderedDict[tuple[str, str, int, bytes], tuple[Any, tuple[str, str, bytes]]] = OrderedDict()
        self.lock = threading.Lock()

    def get(self, model: str, provider: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            key = self._key(model, provider, params)
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

    def _key(self, model: str, provider: str, params: dict[str, Any]) -> tuple[str, str, bytes]:
        """The entry key of ``params``: their JSON (sorted keys), found for a tool list seen before by its identity."""
        tools = params.get("tools")
        rest = json_bytes({k: v for k, v in params.items() if k not in ("messages", "tools")}, sort_keys=True)
        quick = (model, provider, id(tools), rest)
        with self.lock:
            seen = self.by_tools.get(quick)
        if seen is not None and seen[0] is tools:
            return seen[1]
        key = (model, provider, json_bytes({k: v for k, v in params.items() if k != "messages"}, sort_keys=True))
        with self.lock:
            self.by_tools[quick] = (tools, key)
            while len(self.by_tools) > self.size:
                self.by_tools.popitem(last=False)
        return key
