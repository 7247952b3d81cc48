"""What converting a JSON Schema for Gemini may do and take: the policy, the budget, the merge rules.

``schema_policy``, ``description_format`` and ``limits`` of ``spec/tools.yaml`` indexed for
:mod:`.schema_convert`, with the value helpers the converter and the tool planner share. Pure.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from .tables import ToolLimits, ToolsTable

if TYPE_CHECKING:
    from .schema_convert import _Converter
    from .tools import _Converted


class ToolError(ValueError):
    """The request's tools or tool_choice cannot be served; the caller answers with a 400."""


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
_BOUNDED: dict[str | None, tuple[str, str]] = {
    "enum": ("enum_values", "values"), "properties": ("properties", "properties"),
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
        for type_name, applicable in policy.type_keywords.items():
            for keyword in applicable:
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


def _type_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


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


_MERGERS: dict[str | None, Callable[[_Converter, Any, Any], Any]] = {
    "union": _merge_union, "join": _merge_join, "intersect": _merge_intersect,
    "intersect_types": _merge_intersect_types, "max": _merge_max, "min": _merge_min}
