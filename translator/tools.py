"""Anthropic tools and tool_choice → LiteLLM tools for Gemini function calling.

Every rule (which JSON-Schema keyword is kept, merged, described or dropped; which Anthropic tool
types exist; how names are aliased) is data in ``spec/tools.yaml``. This module only interprets
the kinds named there; schemas are converted by :mod:`.schema_convert`. Pure: no I/O; the only state
is a :class:`DeclarationCache` the caller owns.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import marshal
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

import jsonschema

from .schema import ToolError, _Budget, _Policy, _thaw
from .schema_convert import _Converter
from .tables import Naming, StrictToolChoice, ToolChoiceMap, ToolsTable


@dataclass(frozen=True)
class ToolPlan:
    """What to send LiteLLM for the request's tools, and how names map back."""

    tools: list[dict] | None
    tool_choice: str | dict | None
    disable_parallel: bool
    left_out: tuple[str, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)  # Anthropic name → Gemini name, renamed tools only
    # Gemini's functionCallingConfig.mode to send as it is instead of tool_choice (tools.yaml strict_tool_choice)
    calling_mode: str | None = None
    strict: Mapping[str, Any] = field(default_factory=dict)  # Gemini name → input_schema, of strict tools
    # Server tools sent as Gemini grounding: tools.yaml action → the request's tool (max_uses, domains, ...)
    grounding: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def to_gemini(self, name: str) -> str:
        """The name Gemini knows a tool by (history tool_use blocks, tool_choice)."""
        return self.aliases.get(name, name)

    def to_anthropic(self, name: str) -> str:
        """The client's name for a tool call Gemini made."""
        return self._from_gemini.get(name, name)

    def broken_call(self, name: str, arguments: str) -> str | None:
        """Why a call Gemini made (by its Gemini ``name``) breaks its strict tool's ``input_schema``;
        None when the tool is not strict or the call fits. Gemini sends a call whole, arguments and all."""
        schema = self.strict.get(name)
        return None if schema is None else _violation(schema, arguments, self.to_anthropic(name))

    @cached_property
    def _from_gemini(self) -> dict[str, str]:
        # Built once per plan: a lookup per tool call, not a scan of the aliases.
        return {gemini: anthropic for anthropic, gemini in self.aliases.items()}


# Server tools Gemini runs itself (tools.yaml action → the tools.yaml entry of the Gemini tool sent).
GROUNDING = {"google_search": "google_search_tool", "url_context": "url_context_tool"}


class _Converted(NamedTuple):
    action: str  # "function", a GROUNDING action, or "leave_out"
    name: str
    tool: dict | None  # the LiteLLM tool, for functions
    cost: tuple[int, int] = (0, 0)  # schema nodes and size its conversion took (see _Budget)


class DeclarationCache:
    """Bounded LRU of converted tools, owned by the caller (one per loaded tools table).

    Claude Code sends the same tools with every request; converting them is milliseconds, finding
    them here is microseconds. Entries are keyed by (name, description, type) and checked against
    the whole tool (minus ``dropped_tool_fields``) with ``==``, which is much cheaper than
    serialising 65 KB of tools into a canonical key. Cached declarations are shared between plans:
    treat them as read-only (LiteLLM leaves them unchanged, see tests).

    The last ``PLANS`` whole plans are kept too, under the marshal bytes of the tools, tool_choice and
    offered names they were made from (tells a tuple from a list; a value marshal refuses is not
    kept): the same tools on the next turn give the same plan, without a lookup per tool.
    """

    PLANS = 64

    def __init__(self, size: int):
        if size < 1:
            raise ValueError("DeclarationCache size must be at least 1")
        self._size = size
        self._entries: OrderedDict[tuple, tuple[dict, _Converted]] = OrderedDict()
        self._plans: OrderedDict[bytes, tuple[ToolPlan, tuple]] = OrderedDict()  # and its tools' entry keys
        self._lock = threading.Lock()   # shared by worker threads (service/offload.py)

    def __len__(self) -> int:
        return len(self._entries)

    def _get(self, key: tuple, view: dict) -> _Converted | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None or entry[0] != view:
                return None
            self._entries.move_to_end(key)
            return entry[1]

    def _put(self, key: tuple, view: dict, converted: _Converted) -> None:
        # A private copy: the request's dicts may be changed by whoever holds them afterwards.
        entry = (copy.deepcopy(view), converted)
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            if len(self._entries) > self._size:
                self._entries.popitem(last=False)


    def _plan(self, key: bytes) -> ToolPlan | None:
        """The plan kept under ``key``; its tools' entries count as used, as a plan made again would use them."""
        with self._lock:
            found = self._plans.get(key)
            if found is None:
                return None
            self._plans.move_to_end(key)
            for tool_key in found[1]:
                if tool_key in self._entries:
                    self._entries.move_to_end(tool_key)
            return found[0]

    def _keep_plan(self, key: bytes, plan: ToolPlan, tools: Any) -> ToolPlan:
        # The request's own dicts that the plan holds, copied: whoever holds them may change them.
        plan = dataclasses.replace(plan, strict=copy.deepcopy(plan.strict), grounding=copy.deepcopy(plan.grounding))
        tool_keys = tuple(_cache_key(tool) for tool in tools or () if isinstance(tool, dict))
        with self._lock:
            self._plans[key] = (plan, tool_keys)
            self._plans.move_to_end(key)
            if len(self._plans) > self.PLANS:
                self._plans.popitem(last=False)
        return plan


def plan_tools(tools: list[dict] | None, tool_choice: Mapping | None, table: ToolsTable,
               cache: DeclarationCache | None = None, offered: frozenset[str] | None = None) -> ToolPlan:
    """Convert the request's ``tools`` and ``tool_choice`` with the tools ``table``.

    ``offered`` (mid-conversation tool changes) names the tools sent to Gemini; the others are still
    converted and aliased, so that history calls of a removed tool map to the same Gemini name."""
    key = _plan_key(tools, tool_choice, offered) if cache is not None else None
    plan = cache._plan(key) if cache is not None and key is not None else None
    if plan is None:
        plan = _planned(tools, tool_choice, table, cache, offered)
        if cache is not None and key is not None:
            plan = cache._keep_plan(key, plan, tools)
    return plan


def _plan_key(tools: Any, tool_choice: Mapping | None, offered: frozenset[str] | None) -> bytes | None:
    try:
        return marshal.dumps((tools, None if tool_choice is None else dict(tool_choice),
                              None if offered is None else sorted(offered)), 2)
    except (ValueError, TypeError):  # not marshal's types (a subclass, an object): planned every time
        return None


def _planned(tools: list[dict] | None, tool_choice: Mapping | None, table: ToolsTable,
             cache: DeclarationCache | None, offered: frozenset[str] | None) -> ToolPlan:
    check_tool_count(tools, table)
    dropped = table.dropped_tool_fields
    policy: _Policy | None = None
    budget = _Budget(table.limits)
    converted: list[_Converted] = []
    for index, tool in enumerate(tools or ()):
        if type(tool) is not dict and not isinstance(tool, Mapping):
            raise ToolError(f"tools.{index}: a tool must be an object")
        view = {k: v for k, v in tool.items() if k not in dropped} if any(f in tool for f in dropped) else tool
        key = _cache_key(view)
        entry = cache._get(key, view) if cache is not None and key is not None else None
        if entry is None:
            policy = policy or _Policy(table)
            entry = budget.costed(lambda: _convert_tool(view, index, table, policy, budget))
            if cache is not None and key is not None:
                cache._put(key, view, entry)
        else:  # charged as if converted, so that the answer does not depend on what is cached
            budget.spend(*entry.cost, ("tools", index))
        converted.append(entry)

    names = [c.name for c in converted]
    if len(set(names)) != len(names):
        twice = sorted(n for n, times in Counter(names).items() if times > 1)
        raise ToolError(f"tools: tool names must be unique; repeated: {', '.join(twice)}")
    aliases = _aliases([c.name for c in converted if c.action == "function"], table.names)
    strict = _strict_schemas(converted, tools or (), aliases)
    if offered is not None:
        converted = [c for c in converted if c.name in offered]
        names = [c.name for c in converted]
    functions = [c for c in converted if c.action == "function"]
    sent = [c.tool if c.name not in aliases else _renamed(c.tool, aliases[c.name])
            for c in functions if c.tool is not None]  # (a function's tool is never None)
    left_out = tuple(c.name for c in converted
                     if c.action == "leave_out" or (c.action in GROUNDING and functions))
    grounding = {} if functions else {c.action: tool for c, tool in zip(converted, tools or ()) if c.action in GROUNDING}
    if grounding:
        sent = [_thaw(getattr(table, GROUNDING[action])) for action in GROUNDING if action in grounding]
    choice, disable_parallel = _tool_choice(tool_choice, table.tool_choice, names,
                                            [c.name for c in functions], aliases)
    mode = _strict_mode(tool_choice, table.strict_tool_choice) if strict else None
    return ToolPlan(tools=sent or None, tool_choice=choice if sent and mode is None else None,
                    disable_parallel=disable_parallel, left_out=left_out, aliases=aliases,
                    calling_mode=mode, strict=strict, grounding=grounding)


def sanitize_schema(schema: Mapping, table: ToolsTable) -> dict:
    """A tool's ``input_schema`` (JSON Schema) → Gemini's Schema subset, always an object at the root."""
    return _Converter(_Policy(table), schema, _Budget(table.limits), ("input_schema",)).root()


def response_schema(schema: Mapping, table: ToolsTable, where: tuple) -> dict:
    """A structured output schema → what Gemini's ``responseJsonSchema`` takes, by the same policy as
    tool schemas with tools.yaml ``response_schema``'s differences (any root, nulls as JSON Schema types).
    Raises :class:`ToolError` naming ``where`` when it is over a bound."""
    return _Converter(_Policy(table, response=True), schema, _Budget(table.limits, "the output schema takes"), where).root()


def check_tool_count(tools: Any, table: ToolsTable) -> None:
    """Refuse more tools than ``limits.tools``; callers may check before validating each tool."""
    limit = table.limits.tools
    if isinstance(tools, (list, tuple)) and len(tools) > limit:
        raise ToolError(f"tools: {len(tools)} tools, more than the {limit} allowed (tools.yaml limits.tools)")


# --- tools ---------------------------------------------------------------------------------------

def _cache_key(view: dict) -> tuple | None:
    key = (view.get("name"), view.get("description"), view.get("type"))
    try:
        hash(key)
    except TypeError:  # not a valid tool; converting it raises the right error
        return None
    return key


def _convert_tool(view: dict, index: int, table: ToolsTable, policy: _Policy, budget: _Budget) -> _Converted:
    kind = view.get("type")
    where = f"tools.{index}"
    if kind is None or kind == table.custom_tool_type:
        name = _checked_name(view.get("name"), where, table)
        schema = view.get("input_schema")
        if not isinstance(schema, Mapping):
            raise ToolError(f"{where}.input_schema: must be an object (a JSON Schema)")
        if schema.get("type") != "object":
            raise ToolError(f"{where}.input_schema.type: must be 'object' (a tool's input is a JSON object), "
                            f"got {schema.get('type')!r}")
        description = view.get("description")
        if description is not None and not isinstance(description, str):
            raise ToolError(f"{where}.description: must be a string")
        parameters = _Converter(policy, schema, budget, ("tools", index, "input_schema")).root()
        return _Converted("function", name, _function(name, description, parameters))
    if not isinstance(kind, str):
        raise ToolError(f"{where}.type: must be a string")
    for entry in table.client_tools:
        if re.fullmatch(entry.match, kind):
            name = _checked_name(view.get("name", entry.name), where, table)
            notes = [(f, view[f]) for f in entry.describe_fields if f in view]
            parameters = _Converter(policy, _thaw(dict(entry.input_schema)), budget, ("tools", index)).root()
            return _Converted("function", name, _function(name, policy.describe(entry.description, notes),
                                                          parameters))
    given = view.get("name")
    name = given if isinstance(given, str) else kind
    for server in table.server_tools:
        if re.fullmatch(server.match, kind):
            return _Converted(server.action, name, None)
    if table.unknown_tool_type == "reject":
        raise ToolError(f"{where}.type: tool type '{kind}' is not supported")
    return _Converted("leave_out", name, None)


def _checked_name(name: Any, where: str, table: ToolsTable) -> str:
    pattern = table.names.anthropic
    if not isinstance(name, str) or not re.fullmatch(pattern, name):
        raise ToolError(f"{where}.name: must match {pattern}, got {name!r}")
    return name


def _function(name: str, description: str | None, parameters: dict) -> dict:
    function: dict[str, Any] = {"name": name}
    if description:
        function["description"] = description
    function["parameters"] = parameters
    return {"type": "function", "function": function}


def _renamed(tool: dict, name: str) -> dict:
    return {**tool, "function": {**tool["function"], "name": name}}


def _aliases(names: list[str], naming: Naming) -> dict[str, str]:
    """Gemini names for the tools whose own name Gemini refuses; a function of the name set only."""
    valid, limit, prefix = re.compile(naming.gemini).fullmatch, naming.max_length, naming.alias_prefix
    taken = {n for n in names if len(n) <= limit and valid(n)}
    aliases: dict[str, str] = {}
    for name in names:
        if name in taken:
            continue
        alias = prefix + name
        if len(alias) > limit or alias in taken:
            digest = hashlib.sha256(name.encode()).hexdigest()[:naming.hash_chars]
            alias = f"{prefix}{name[:limit - len(prefix) - len(digest) - 1]}_{digest}"
        if alias in taken or not valid(alias):
            raise ToolError(f"tools: cannot give tool '{name}' a name Gemini accepts")
        taken.add(alias)
        aliases[name] = alias
    return aliases


def _tool_choice(choice: Mapping | None, table: ToolChoiceMap, names: list[str], functions: list[str],
                 aliases: Mapping[str, str]) -> tuple[str | dict | None, bool]:
    if choice is None:
        return None, False
    mapping = dict(table)  # Anthropic tool_choice.type → LiteLLM's
    if not isinstance(choice, Mapping) or choice.get("type") not in mapping:
        kind = choice.get("type") if isinstance(choice, Mapping) else choice
        raise ToolError(f"tool_choice.type: expected one of {', '.join(mapping)}, got {kind!r}")
    disable_parallel = choice.get("disable_parallel_tool_use") is True
    value = mapping[choice["type"]]
    if value != "named_function":
        return (value if functions else None), disable_parallel
    name = choice.get("name")
    if name in functions:
        return {"type": "function", "function": {"name": aliases.get(name, name)}}, disable_parallel
    if name not in names:
        raise ToolError(f"tool_choice.name: '{name}' is not the name of a tool in tools")
    if functions:
        raise ToolError(f"tool_choice.name: tool '{name}' cannot be forced: it is not offered to Gemini")
    return None, disable_parallel  # only search grounding is sent: Gemini decides when to search


def _strict_schemas(converted: list[_Converted], tools: Any, aliases: Mapping[str, str]) -> dict[str, Any]:
    """Gemini name → the input_schema (as the client gave it) of each custom tool with ``strict: true``."""
    strict = {}
    for index, (entry, tool) in enumerate(zip(converted, tools)):
        value = tool.get("strict", False)
        if not isinstance(value, bool):
            raise ToolError(f"tools.{index}.strict: must be a boolean, got {value!r}")
        if value and entry.action == "function" and "input_schema" in tool:
            strict[aliases.get(entry.name, entry.name)] = tool["input_schema"]
    return strict


def _strict_mode(choice: Mapping | None, table: StrictToolChoice) -> str | None:
    """The functionCallingConfig.mode strict tools get with this tool_choice (none given: auto)."""
    return getattr(table, choice["type"] if isinstance(choice, Mapping) else "auto")  # _tool_choice checked it


def _violation(schema: Any, arguments: str, tool: str) -> str | None:
    try:
        value = json.loads(arguments) if arguments else {}
    except ValueError:
        return f"a call of the strict tool '{tool}' whose arguments are not JSON"
    try:
        error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(value))
    except Exception:  # noqa: BLE001 - a schema jsonschema cannot apply is not checked (Gemini got its rewrite)
        return None
    if error is None:
        return None
    return (f"a call of the strict tool '{tool}' breaks its input_schema at {error.json_path}: "
            f"{error.message[:300]}")


