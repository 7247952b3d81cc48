"""Anthropic tools and tool_choice → LiteLLM tools for Gemini function calling.

Every rule (which JSON-Schema keyword is kept, merged, described or dropped; which Anthropic tool
types exist; how names are aliased) is data in ``spec/tools.yaml``. This module only interprets
the kinds named there. Pure: no I/O; the only state is a :class:`DeclarationCache` the caller owns.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, NamedTuple

import jsonschema

from .tables import Naming, StrictToolChoice, ToolChoiceMap, ToolLimits, ToolsTable


class ToolError(ValueError):
    """The request's tools or tool_choice cannot be served; the caller answers with a 400."""


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
    """

    def __init__(self, size: int):
        if size < 1:
            raise ValueError("DeclarationCache size must be at least 1")
        self._size = size
        self._entries: OrderedDict[tuple, tuple[dict, _Converted]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def _get(self, key: tuple, view: dict) -> _Converted | None:
        entry = self._entries.get(key)
        if entry is None or entry[0] != view:
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def _put(self, key: tuple, view: dict, converted: _Converted) -> None:
        # A private copy: the request's dicts may be changed by whoever holds them afterwards.
        self._entries[key] = (copy.deepcopy(view), converted)
        self._entries.move_to_end(key)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)


def plan_tools(tools: list[dict] | None, tool_choice: Mapping | None, table: ToolsTable,
               cache: DeclarationCache | None = None, offered: frozenset[str] | None = None) -> ToolPlan:
    """Convert the request's ``tools`` and ``tool_choice`` with the tools ``table``.

    ``offered`` (mid-conversation tool changes) names the tools sent to Gemini; the others are still
    converted and aliased, so that history calls of a removed tool map to the same Gemini name."""
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
    sent = [c.tool if c.name not in aliases else _renamed(c.tool, aliases[c.name]) for c in functions]
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
    name = view.get("name") if isinstance(view.get("name"), str) else kind
    for entry in table.server_tools:
        if re.fullmatch(entry.match, kind):
            return _Converted(entry.action, name, None)
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
    return getattr(table, choice.get("type") if isinstance(choice, Mapping) else "auto")


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


def _thaw(value: Any) -> Any:
    """A plain, private copy of table data (which may be frozen into mapping proxies and tuples),
    or of a value kept from a request (the declaration cache outlives the request)."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, (list, tuple)):
        return [_thaw(v) for v in value]
    if isinstance(value, (dict, Mapping)):  # dict first: the Mapping ABC check is slow
        return {k: _thaw(v) for k, v in value.items()}
    return value


# --- schemas -------------------------------------------------------------------------------------

class _Notes:
    """Key under which a node carries constraints to describe; never equal to a JSON key."""


_NOTES = _Notes()
_SCALARS = (str, int, float, type(None))  # checked before Mapping (dict before it too): its ABC check is slow
_JSON_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"),
               (type(None), "null"), ((list, tuple), "array"), ((dict, Mapping), "object"))
_EXACT_TYPES = {cls: name for classes, name in _JSON_TYPES
                for cls in (classes if isinstance(classes, tuple) else (classes,))}  # the fast path of _json_type
_VALUE_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "count": lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
    "boolean": lambda v: isinstance(v, bool),
    "any": lambda v: True,
}


# Kinds whose value's length tools.yaml ``limits`` bounds in each node: kind → (limit, what is counted).
_BOUNDED = {"enum": ("enum_values", "values"), "properties": ("properties", "properties"),
            "required": ("required", "names"), "any_of": ("alternatives", "alternatives"),
            "oneOf_to_anyOf": ("alternatives", "alternatives"), "merge_allOf": ("alternatives", "alternatives")}
# Kinds whose value holds schemas: those are charged where they are converted, not where they are held.
_HOLDS_SCHEMAS = frozenset({"properties", "items", "any_of", "oneOf_to_anyOf", "merge_allOf", "definitions"})


def _json_type(value: Any) -> str:
    return _EXACT_TYPES.get(type(value)) or next(name for cls, name in _JSON_TYPES if isinstance(value, cls))


def _frozen(value: Any, memo: dict[int, tuple[Any, Any]]) -> Any:
    """A hashable stand-in that is ``==`` another's exactly when the values are (1, 1.0 and True
    stay one value, as in a list membership test), so that sets can replace list scans.

    ``memo`` (id → (container, kept alive so the id stays its own; stand-in)) freezes each container
    once: converted subtrees are compared again at every enclosing anyOf.
    """
    if isinstance(value, _SCALARS) or not isinstance(value, (dict, list, tuple, Mapping)):
        return value
    known = memo.get(id(value))
    if known is None:
        if isinstance(value, (dict, Mapping)):
            frozen: Any = frozenset((k, _frozen(v, memo)) for k, v in value.items())
        else:
            frozen = type(value), tuple(_frozen(v, memo) for v in value)
        known = memo[id(value)] = (value, frozen)
    return known[1]


def _unique(values, memo: dict | None = None) -> list:
    """The first of each run of equal values, in order; linear, as enums may be long."""
    memo = {} if memo is None else memo
    seen: set = set()
    out: list = []
    for v in values:
        key = _frozen(v, memo)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def _place(where: tuple) -> str:
    return ".".join(str(step) for step in where)


def _with_note(node: dict, keyword: str, value: Any) -> dict:
    return {**node, _NOTES: node.get(_NOTES, ()) + ((keyword, value),)}


class _Policy:
    """``schema_policy`` and ``description_format`` indexed for the converter; for a structured
    output schema (``response``), with ``response_schema``'s differences."""

    def __init__(self, table: ToolsTable, response: bool = False):
        policy = table.schema_policy
        keywords = {**policy.keywords, **table.response_schema.keywords} if response else policy.keywords
        # keyword → kind; a kind given as an object ({keep: T}, {to_description_unless: [...]}) is
        # named by its key, and what it holds is in ``args``.
        self.kinds: dict[str, str] = {}
        self.args: dict[str, Any] = {}
        for keyword, kind in keywords.items():
            if isinstance(kind, str):
                self.kinds[keyword] = kind
            else:
                ((self.kinds[keyword], self.args[keyword]),) = kind
        self.object_root = not response or table.response_schema.object_root
        self.type_lists = response and table.response_schema.nulls == "type_list"
        self.unknown: str = policy.unknown_keywords
        self.types = frozenset(policy.types)
        self.untyped = list(policy.untyped_types)
        self.untyped_items = list(policy.untyped_item_types)
        self.null_type: str = policy.null_only_type
        self.max_refs: int = policy.max_ref_expansions
        self.max_refs_total: int = policy.max_ref_expansions_total
        self.max_depth: int = policy.max_depth
        self.fallback_type: str = policy.bound_fallback_type
        self.keep_formats: Mapping = policy.formats.keep
        self.drop_formats = frozenset(policy.formats.drop)
        self.left_out_names = frozenset(table.response_schema.left_out_properties if response
                                        else policy.left_out_properties.names)
        self.left_out_label: str = policy.left_out_properties.label
        self.merge_rules: Mapping = policy.allOf_merge
        self.limits: dict[str, int] = dict(table.limits)
        self.type_of: dict[str, list[str]] = {}  # keyword → the types it applies to, in table order
        for type_name, keywords in policy.type_keywords.items():
            for keyword in keywords:
                self.type_of.setdefault(keyword, []).append(type_name)
        fmt = table.description_format
        self.template: str = fmt.template
        self.separator: str = fmt.separator
        self.max_chars: int = fmt.max_value_chars

    def kind(self, key: Any) -> str | None:
        return self.kinds.get(key, self.unknown) if isinstance(key, str) else None

    def or_null(self, node: dict) -> dict:
        """``node`` that may also be null: ``nullable`` (Gemini Schema), or a "null" type (JSON Schema)."""
        if not self.type_lists:
            return {**node, "nullable": True}
        kind = node["type"]
        return {**node, "type": kind if isinstance(kind, list) else [kind, "null"]}

    def only_null(self) -> dict:
        """A node that can only be null. Gemini Schema has no null type: a nullable string, with a note."""
        if self.type_lists:
            return {"type": "null"}
        return {"type": self.null_type, "nullable": True, "description": self.describe(None, [("type", "null")])}

    def describe(self, description: str | None, notes) -> str:
        parts = [description] if description else []
        seen = set(parts)
        for keyword, value in notes:
            text = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
            if len(text) > self.max_chars:
                text = text[:self.max_chars] + "…"
            note = self.template.format(keyword=keyword, value=text)
            if note not in seen:
                seen.add(note)
                parts.append(note)
        return self.separator.join(parts)


class _Budget:
    """What converting one request's tool schemas may take (tools.yaml ``limits``): schema nodes,
    and the size of what is read (about its length as compact JSON).

    Every read counts, so a node reached again (through ``$ref``, or as part of each anyOf
    alternative) costs again: fan-out is bounded, not only width.
    """

    def __init__(self, limits: ToolLimits, subject: str = "the request's tool schemas take"):
        self.max_nodes, self.max_size = limits.schema_nodes, limits.schema_size
        self.nodes = self.size = 0
        self.subject = subject

    def spend(self, nodes: int, size: int, where: tuple) -> None:
        self.nodes += nodes
        self.size += size
        if self.nodes > self.max_nodes:
            raise self._over(where, "schema_nodes", self.max_nodes, "schema nodes")
        if self.size > self.max_size:
            raise self._over(where, "schema_size", self.max_size, "characters of schema")

    def _over(self, where: tuple, name: str, limit: int, what: str) -> ToolError:
        return ToolError(f"{_place(where)}: {self.subject} more than the {limit} {what} allowed "
                         f"(tools.yaml limits.{name}; every $ref and anyOf alternative counts again where it is "
                         "expanded)")

    def costed(self, convert: Callable[[], _Converted]) -> _Converted:
        """``convert()``, carrying what it spent (a cached conversion is charged that again)."""
        nodes, size = self.nodes, self.size
        return convert()._replace(cost=(self.nodes - nodes, self.size - size))


def _size(value: Any) -> int:
    """About the length of ``value`` as compact JSON: what the budget counts."""
    if isinstance(value, str):
        return len(value) + 2
    if isinstance(value, _SCALARS):
        return len(str(value))
    return len(_SIZER.encode(value))


# Compact JSON for _size; anything JSON has no form for is counted by its repr.
_SIZER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), check_circular=False, skipkeys=True, default=repr)


class _Converter:
    """One input schema (its root is what ``$ref`` pointers resolve against) → Gemini Schema.

    ``where`` arguments are the place of a node in the request (a tuple of steps), for messages.
    """

    def __init__(self, policy: _Policy, root: Any, budget: _Budget, where: tuple):
        self.p = policy
        self.document = root
        self.refs_left = policy.max_refs_total
        self.budget = budget
        self.where = where
        self.keys: dict[int, tuple[Any, Any]] = {}  # memo of _frozen

    def root(self) -> dict:
        where = self.where
        if not self.p.object_root:
            return self.child(self.document, (), 0, where)
        node, path = self.expand(dict(self.document) if isinstance(self.document, Mapping) else {}, (), where)
        self.visit(node, where)
        for key in [k for k in node if self.p.kind(k) == "any_of"]:
            # Gemini wants an OBJECT at the top: alternatives there can only be told.
            node = _with_note({k: v for k, v in node.items() if k != key}, key, node[key])
        return self.emit(node, "object", False, path, 0, where)

    # Bounds and costs.
    def visit(self, node: dict, where: tuple) -> None:
        """Refuse a node over a per-node bound, and charge reading it (before any of its work)."""
        size = 0
        for key, value in node.items():
            kind = self.p.kind(key)
            self.check(kind, key, value, where)
            size += self.weigh(kind, key, value)
        self.budget.spend(1, size, where)

    def check(self, kind: str | None, key: Any, value: Any, where: tuple) -> None:
        bound = _BOUNDED.get(kind)
        if bound is not None and isinstance(value, (list, dict, Mapping)) and len(value) > self.p.limits[bound[0]]:
            raise ToolError(f"{_place(where + (key,))}: {len(value)} {bound[1]}, more than the "
                            f"{self.p.limits[bound[0]]} allowed (tools.yaml limits.{bound[0]})")

    def weigh(self, kind: str | None, key: Any, value: Any) -> int:
        """The size of one keyword; schemas it holds are charged when they are converted."""
        size = len(key) + 3 if isinstance(key, str) else 1  # "key":
        if kind in _HOLDS_SCHEMAS and isinstance(value, (list, dict, Mapping)):
            return size + len(value) + sum(_size(k) for k in value if isinstance(k, str))
        return size + _size(value)

    # Resolving $ref, allOf, oneOf and const, so that only Gemini-shaped keywords remain.
    def expand(self, node: dict, path: tuple, where: tuple) -> tuple[dict, tuple]:
        while True:
            self.budget.spend(0, len(node), where)  # each scan for a keyword to expand
            for key in node:
                kind = self.p.kind(key)
                handler = self._expanders.get(kind)
                if handler is not None:
                    break
            else:
                return node, path
            self.check(kind, key, node[key], where)
            self.budget.spend(0, self.weigh(kind, key, node[key]), where)
            rest = {k: v for k, v in node.items() if k != key}
            node, path = handler(self, rest, key, node[key], path, where)

    def _inline_ref(self, rest: dict, key: str, ref: Any, path: tuple, where: tuple) -> tuple[dict, tuple]:
        if not isinstance(ref, str):
            return _with_note(rest, key, ref), path
        if path.count(ref) >= self.p.max_refs or self.refs_left <= 0:
            if not any(self.p.kind(k) == "type" for k in rest):
                rest["type"] = self.p.fallback_type
            return _with_note(rest, key, ref), path
        target = self._resolve(ref)
        if target is None:
            return _with_note(rest, key, ref), path
        self.refs_left -= 1
        return self.merge(rest, target if isinstance(target, Mapping) else {}, where), path + (ref,)

    def _resolve(self, ref: str) -> Any:
        """A local JSON pointer (``#/$defs/x``) → its target, or None."""
        if not ref.startswith("#"):
            return None
        target = self.document
        for part in ref[1:].split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(target, Mapping) and part in target:
                target = target[part]
            elif isinstance(target, list) and part.isdigit() and int(part) < len(target):
                target = target[int(part)]
            else:
                return None
        return target

    def _merge_all_of(self, rest: dict, key: str, parts: Any, path: tuple, where: tuple) -> tuple[dict, tuple]:
        if not isinstance(parts, list) or not parts:
            return _with_note(rest, key, parts), path
        merged, grown = rest, path
        for index, part in enumerate(parts):
            sub, sub_path = self.expand(dict(part) if isinstance(part, Mapping) else {}, path, where + (key, index))
            merged = self.merge(merged, sub, where)
            grown += sub_path[len(path):]
        return merged, grown

    def _one_of(self, rest: dict, key: str, value: Any, path: tuple, where: tuple) -> tuple[dict, tuple]:
        if any(self.p.kind(k) == "any_of" for k in rest):
            return _with_note(rest, key, value), path
        return {**rest, "anyOf": value}, path

    def _const(self, rest: dict, key: str, value: Any, path: tuple, where: tuple) -> tuple[dict, tuple]:
        return {**rest, "enum": [value]}, path

    _expanders = {"inline_ref": _inline_ref, "merge_allOf": _merge_all_of,
                  "oneOf_to_anyOf": _one_of, "const_to_enum": _const}

    def merge(self, base: Mapping, other: Mapping, where: tuple) -> dict:
        """Both schemas at once (allOf); a keyword both have with different values follows allOf_merge."""
        compared = sum(_size(v) + _size(base[k]) for k, v in other.items() if k in base)
        self.budget.spend(0, len(base) + len(other) + compared, where)
        out = dict(base)
        notes = list(out.get(_NOTES, ()))
        for key, value in other.items():
            if key is _NOTES:
                notes.extend(value)
            elif key not in out:
                out[key] = value
            elif out[key] != value:
                merger = _MERGERS.get(self.p.merge_rules.get(key))
                merged = merger(self, out[key], value) if merger else None
                if merged is None:
                    notes.append((key, value))
                else:
                    out[key] = merged
        if notes:
            out[_NOTES] = tuple(notes)
        return out

    # Building Gemini nodes.
    def node(self, raw: Any, path: tuple, depth: int, where: tuple) -> dict | None:
        """A Gemini node for ``raw``, or None when it can only be null."""
        if depth > self.p.max_depth:
            return {"type": self.p.fallback_type}
        node, path = self.expand(dict(raw) if isinstance(raw, Mapping) else {}, path, where)
        self.visit(node, where)
        for key in node:
            if self.p.kind(key) == "any_of":
                rest = {k: v for k, v in node.items() if k != key}
                if isinstance(node[key], list) and node[key]:
                    branches = [self.merge(rest, b if isinstance(b, Mapping) else {}, where) for b in node[key]]
                    return self.union(branches, path, depth, where + (key,))
                node = _with_note(rest, key, node[key])
                break
        types, nullable = self._types(node)
        if not types:
            return None
        if len(types) > 1:
            return self.union([{**node, "type": t} for t in types] + ([{"type": "null"}] if nullable else []),
                              path, depth, where + ("type",))
        return self.emit(node, types[0], nullable, path, depth, where)

    def child(self, raw: Any, path: tuple, depth: int, where: tuple) -> dict:
        out = self.node(raw, path, depth, where)
        return self.p.only_null() if out is None else out

    def union(self, branches: list[dict], path: tuple, depth: int, where: tuple) -> dict | None:
        """anyOf of the branches: nested anyOf flattened, null alternatives turned into nullable."""
        results = [self.node(b, path, depth + 1, where + (index,)) for index, b in enumerate(branches)]
        flat = _unique((b for r in results if r is not None for b in r.get("anyOf", (r,))), self.keys)
        if any(r is None for r in results):
            flat = _unique((self.p.or_null(b) for b in flat), self.keys)
        if len(flat) > 1 and all(b["type"] == "string" and "enum" in b for b in flat):
            common = [{k: v for k, v in b.items() if k != "enum"} for b in flat]
            if all(c == common[0] for c in common):  # alternatives of string constants: one enum
                flat = [{**flat[0], "enum": _unique(v for b in flat for v in b["enum"])}]
        if not flat:
            return None
        return flat[0] if len(flat) == 1 else {"anyOf": flat}

    def _types(self, node: dict) -> tuple[list[str], bool]:
        """The node's Gemini types (several → anyOf; empty → only null) and whether null is allowed."""
        declared: Any = None
        values: list | None = None
        flag = False
        for key, value in node.items():
            kind = self.p.kind(key)
            if kind == "type":
                declared = value
            elif kind == "enum" and isinstance(value, list) and value:
                values = value
            elif kind == "nullable" and value is True:
                flag = True
        names = [t for t in (d.lower() for d in _type_list(declared)) if t in self.p.types or t == "null"]
        if not names and values is not None:
            names = _unique(_json_type(v) for v in values)
        if names:
            return [t for t in _unique(names) if t != "null"], flag or "null" in names
        inferred = _unique(self.p.type_of[k][0] for k in node if isinstance(k, str) and k in self.p.type_of)
        return inferred or list(self.p.untyped), flag

    def emit(self, node: dict, type_name: str, nullable: bool, path: tuple, depth: int, where: tuple) -> dict:
        """The Gemini node of one type: each keyword goes to the emitter of its kind."""
        built = _Emitted(type_name, list(node.get(_NOTES, ())), path, depth, where)
        policy, emitters = self.p, self._emitters
        for key, value in node.items():
            kind = policy.kind(key)
            applies = policy.type_of.get(key)
            if kind is not None and (applies is None or type_name in applies):
                emitters[kind](self, built, key, value)
        out = built.out
        if type_name == "array" and "items" not in out:
            out["items"] = self.child({"type": policy.untyped_items}, path, depth + 1, where + ("items",))
        if built.properties:
            out["properties"] = properties = built.properties
            required = built.required
            names = _unique(r for r in required if isinstance(r, str) and r in properties) \
                if isinstance(required, list) else []
            if names:
                out["required"] = names
        if nullable:
            out = policy.or_null(out)
        text = policy.describe(built.description, built.notes)
        if text:
            out["description"] = text
        return out

    def _emit_keep(self, built: _Emitted, key: str, value: Any) -> None:
        if _VALUE_CHECKS[self.p.args[key]](value):
            built.out[key] = _thaw(value)
        else:
            built.notes.append((key, value))

    def _emit_unless(self, built: _Emitted, key: str, value: Any) -> None:
        if value not in self.p.args[key]:
            built.notes.append((key, value))

    def _emit_note(self, built: _Emitted, key: str, value: Any) -> None:
        built.notes.append((key, value))

    def _emit_description(self, built: _Emitted, key: str, value: Any) -> None:
        if isinstance(value, str):
            built.description = value
        else:
            built.notes.append((key, value))

    def _emit_enum(self, built: _Emitted, key: str, value: Any) -> None:
        self._enum(built.out, built.notes, key, value, built.type_name)

    def _emit_format(self, built: _Emitted, key: str, value: Any) -> None:
        if isinstance(value, str) and value in self.p.keep_formats.get(built.type_name, ()):
            built.out[key] = value
        elif not (isinstance(value, str) and value in self.p.drop_formats):
            built.notes.append((key, value))

    def _emit_items(self, built: _Emitted, key: str, value: Any) -> None:
        if isinstance(value, list):  # tuple validation: each position one of these
            value = {"anyOf": value} if value else {}
        built.out["items"] = self.child(value, built.path, built.depth + 1, built.where + (key,))

    def _emit_properties(self, built: _Emitted, key: str, value: Any) -> None:
        if isinstance(value, Mapping):
            built.properties = self._properties(value, built.notes, built.path, built.depth, built.where + (key,))
        else:
            built.notes.append((key, value))

    def _emit_required(self, built: _Emitted, key: str, value: Any) -> None:
        built.required = value

    def _emit_nothing(self, built: _Emitted, key: str, value: Any) -> None:
        return None

    # tools.yaml keyword kind → what emit does with the keyword. Kinds of _expanders are gone before
    # emit; type and nullable are emit's own (see _types), any_of is split into alternatives before it.
    _emitters = {"keep": _emit_keep, "to_description_unless": _emit_unless, "to_description": _emit_note,
                 "description": _emit_description, "enum": _emit_enum, "format": _emit_format,
                 "items": _emit_items, "properties": _emit_properties, "required": _emit_required,
                 "type": _emit_nothing, "nullable": _emit_nothing, "any_of": _emit_nothing,
                 "definitions": _emit_nothing, "drop": _emit_nothing}

    def _enum(self, out: dict, notes: list, key: str, value: Any, type_name: str) -> None:
        if not isinstance(value, list) or not value:
            notes.append((key, value))
            return
        if type_name != "string":
            same = [v for v in value if _json_type(v) == type_name
                    or (type_name == "number" and _json_type(v) == "integer")]
            notes.append((key, same or value))
            return
        strings = _unique(v for v in value if isinstance(v, str))
        if any(strings):
            out[key] = [v for v in strings if v]
        if "" in strings:
            notes.append((key, [""]))  # Gemini refuses empty enum values; tell the model "" is allowed

    def _properties(self, value: Mapping, notes: list, path: tuple, depth: int, where: tuple) -> dict:
        properties: dict[str, Any] = {}
        left_out = []
        for name, schema in value.items():
            if name in self.p.left_out_names:
                left_out.append(name)
            elif schema is not False:  # `false`: the property must not be there
                properties[name] = self.child(schema, path, depth + 1, where + (name,))
        if left_out:
            notes.append((self.p.left_out_label, left_out))
        return properties


def _type_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


class _Emitted:
    """A Gemini node as emit builds it: the keywords kept so far, the notes, and what waits for the end."""

    __slots__ = ("out", "type_name", "notes", "path", "depth", "where", "description", "properties", "required")

    def __init__(self, type_name: str, notes: list, path: tuple, depth: int, where: tuple):
        self.out: dict[str, Any] = {"type": type_name}
        self.type_name, self.notes, self.path, self.depth, self.where = type_name, notes, path, depth, where
        self.description: Any = None
        self.properties: dict | None = None
        self.required: Any = None


# allOf_merge rules: (converter, mine, theirs) → the merged value, or None when the two cannot be
# combined (the second is then described).

def _merge_union(conv: _Converter, mine: Any, theirs: Any) -> Any:
    if isinstance(mine, Mapping) and isinstance(theirs, Mapping):
        return {**mine, **{k: (v if k not in mine or mine[k] == v else {"allOf": [mine[k], v]})
                           for k, v in theirs.items()}}
    if isinstance(mine, list) and isinstance(theirs, list):
        return _unique(mine + theirs, conv.keys)
    return None


def _merge_join(conv: _Converter, mine: Any, theirs: Any) -> Any:
    return f"{mine}{conv.p.separator}{theirs}" if isinstance(mine, str) and isinstance(theirs, str) else None


def _merge_intersect(conv: _Converter, mine: Any, theirs: Any) -> Any:
    if not (isinstance(mine, list) and isinstance(theirs, list)):
        return None
    allowed = {_frozen(v, conv.keys) for v in theirs}
    return [v for v in mine if _frozen(v, conv.keys) in allowed] or None


def _merge_intersect_types(conv: _Converter, mine: Any, theirs: Any) -> Any:
    mine_types, theirs_types = _type_list(mine), _type_list(theirs)
    mine_set, theirs_set = set(mine_types), set(theirs_types)
    both = [t for t in mine_types if t in theirs_set or (t == "integer" and "number" in theirs_set)]
    kept = set(both)
    both += [t for t in theirs_types if t == "integer" and "number" in mine_set and t not in kept]
    return (both[0] if len(both) == 1 else both) or None


def _merge_max(conv: _Converter, mine: Any, theirs: Any) -> Any:
    number = _VALUE_CHECKS["number"]
    return max(mine, theirs) if number(mine) and number(theirs) else None


def _merge_min(conv: _Converter, mine: Any, theirs: Any) -> Any:
    number = _VALUE_CHECKS["number"]
    return min(mine, theirs) if number(mine) and number(theirs) else None


_MERGERS = {"union": _merge_union, "join": _merge_join, "intersect": _merge_intersect,
            "intersect_types": _merge_intersect_types, "max": _merge_max, "min": _merge_min}
