"""A tool's or a structured output's JSON Schema → Gemini's Schema subset, by tools.yaml's policy.

Every rule (which keyword is kept, merged, described or dropped) is data in ``spec/tools.yaml``,
read through :class:`.schema._Policy`; this module only interprets the kinds named there. Pure.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .schema import (_BOUNDED, _HOLDS_SCHEMAS, _MERGERS, _NOTES, _VALUE_CHECKS, ToolError, _Budget, _json_type,
                     _place, _Policy, _size, _thaw, _type_list, _unique, _with_note)


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

    _expanders: dict[str | None, Callable[..., tuple[dict, tuple]]] = {
        "inline_ref": _inline_ref, "merge_allOf": _merge_all_of, "oneOf_to_anyOf": _one_of, "const_to_enum": _const}

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


class _Emitted:
    """A Gemini node as emit builds it: the keywords kept so far, the notes, and what waits for the end."""

    __slots__ = ("out", "type_name", "notes", "path", "depth", "where", "description", "properties", "required")

    def __init__(self, type_name: str, notes: list, path: tuple, depth: int, where: tuple):
        self.out: dict[str, Any] = {"type": type_name}
        self.type_name, self.notes, self.path, self.depth, self.where = type_name, notes, path, depth, where
        self.description: Any = None
        self.properties: dict | None = None
        self.required: Any = None

