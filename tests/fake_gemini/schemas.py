"""Response schemas in the fake Gemini: the rules Gemini documents for ``responseJsonSchema``, and the
smallest JSON value that fits a schema (what the fake answers when a request asks for structured output).

Gemini's ``responseJsonSchema`` takes "the full JSON Schema" but honours a subset; what it documents as a rule is
checked here: a ``$ref`` resolves inside the schema (``#``, ``#/json/pointer``, ``#anchor``), has no sibling keys
but ``$``-prefixed ones, and a cyclic reference may only be used within non-required properties.  Keywords it does
not honour are accepted, as Gemini does.  ``minimal_instance`` works for both schema kinds (``responseSchema``'s
upper-case OpenAPI types too): required properties only, first ``anyOf``/``oneOf`` alternative that can be built,
the first listed type, ``""`` / ``0`` / ``false`` / ``[]`` / ``null`` raised to their lower bounds; ``pattern``,
``multipleOf`` and ``uniqueItems`` are not honoured (keep them out of test schemas that need a fitting answer).
"""

from __future__ import annotations

import math
from typing import Any

_FORMAT_VALUES = {"date-time": "1970-01-01T00:00:00Z", "date": "1970-01-01", "time": "00:00:00",
                  "email": "a@example.com", "uri": "https://example.com/", "uuid": "00000000-0000-0000-0000-000000000000",
                  "ipv4": "127.0.0.1", "ipv6": "::1", "hostname": "example.com", "duration": "PT0S"}


class NoInstance(Exception):
    """No value fits (a cyclic ``$ref`` among required properties, a ``false`` schema, a bad ``$ref``)."""


def _pointer(root: Any, ref: str) -> Any:
    if ref == "#":
        return root
    if ref.startswith("#/"):
        node = root
        for token in ref[2:].split("/"):
            token = token.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                raise NoInstance(f"$ref {ref!r} does not resolve inside the schema")
        return node
    if ref.startswith("#"):
        found = _anchor(root, ref[1:])
        if found is not None:
            return found
    raise NoInstance(f"$ref {ref!r} does not resolve inside the schema (only local references are followed)")


def _anchor(node: Any, name: str) -> Any:
    if isinstance(node, dict):
        if node.get("$anchor") == name:
            return node
        children = node.values()
    elif isinstance(node, list):
        children = node
    else:
        return None
    for child in children:
        found = _anchor(child, name)
        if found is not None:
            return found
    return None


def check_refs(node: Any, path: str) -> None:
    """A ``$ref`` with keys beside it other than ``$``-prefixed ones: Gemini refuses it."""
    if isinstance(node, dict):
        if "$ref" in node:
            extra = sorted(k for k in node if not k.startswith("$"))
            if extra:
                raise NoInstance(f"at '{path}': if $ref is set on a sub-schema, no other properties except those "
                                 f"starting with $ may be set (found {', '.join(extra)})")
        for key, child in node.items():
            if key not in ("enum", "const", "default", "examples", "example"):
                check_refs(child, f"{path}.{key}")
    elif isinstance(node, list):
        for i, child in enumerate(node):
            check_refs(child, f"{path}[{i}]")


def minimal_instance(schema: Any) -> Any:
    """The smallest value that fits ``schema`` (see the module docstring); ``NoInstance`` when none can be built."""
    return _Builder(schema).build(schema, ())


class _Builder:
    def __init__(self, root: Any):
        self.root = root

    def build(self, node: Any, refs: tuple[str, ...]) -> Any:
        if node is True or node == {}:
            return None
        if not isinstance(node, dict):
            raise NoInstance("a schema that no value fits (false)")
        if "$ref" in node:
            ref = node["$ref"]
            if ref in refs:
                raise NoInstance(f"cyclic $ref {ref!r} in a required property: cyclic references may only be "
                                 "used within non-required properties")
            return self.build(_pointer(self.root, ref), refs + (ref,))
        if "const" in node:
            return node["const"]
        if node.get("enum"):
            return node["enum"][0]
        for key in ("anyOf", "oneOf"):
            if node.get(key):
                return self._first_alternative(node[key], refs)
        if node.get("allOf"):
            return self.build(_merged(node), refs)
        return self._typed(node, _first_type(node), refs)

    def _first_alternative(self, alternatives: list, refs: tuple[str, ...]) -> Any:
        reasons = []
        for alternative in alternatives:
            try:
                return self.build(alternative, refs)
            except NoInstance as exc:
                reasons.append(str(exc))
        raise NoInstance(reasons[0] if reasons else "an empty list of alternatives")

    def _typed(self, node: dict, kind: str, refs: tuple[str, ...]) -> Any:
        if kind == "object":
            return self._object(node, refs)
        if kind == "array":
            prefix = [self.build(item, refs) for item in node.get("prefixItems", ())]
            missing = max(0, int(node.get("minItems", 0)) - len(prefix))
            return prefix + [self.build(node.get("items", True), refs) for _ in range(missing)]
        if kind == "string":
            return _FORMAT_VALUES.get(node.get("format"), "a" * int(node.get("minLength", 0)))
        if kind in ("integer", "number"):
            return _number(node, kind == "integer")
        return False if kind == "boolean" else None

    def _object(self, node: dict, refs: tuple[str, ...]) -> dict:
        props = node.get("properties") or {}
        wanted = [name for name in node.get("required", ()) if isinstance(name, str)]
        optional = [name for name in props if name not in wanted]
        wanted += optional[:max(0, int(node.get("minProperties", 0)) - len(wanted))]
        order = [n for n in node.get("propertyOrdering", ()) if n in wanted]
        order += [n for n in props if n in wanted and n not in order]
        order += [n for n in wanted if n not in order]
        extra = node.get("additionalProperties", True)
        return {name: self.build(props.get(name, extra), refs) for name in order}


def _first_type(node: dict) -> str:
    kind = node.get("type")
    if isinstance(kind, list):
        kind = kind[0] if kind else None
    if isinstance(kind, str):
        return kind.lower()
    if {"properties", "required", "additionalProperties"} & node.keys():
        return "object"
    if {"items", "prefixItems"} & node.keys():
        return "array"
    return "null"


def _merged(node: dict) -> dict:
    """``allOf`` folded into one schema: properties and required lists joined, other keys from the last."""
    out = {k: v for k, v in node.items() if k != "allOf"}
    for member in node["allOf"]:
        if not isinstance(member, dict):
            continue
        props = {**out.get("properties", {}), **member.get("properties", {})}
        required = list(out.get("required", ())) + [r for r in member.get("required", ()) if r not in out.get("required", ())]
        out.update({k: v for k, v in member.items() if k not in ("properties", "required")})
        if props:
            out["properties"] = props
        if required:
            out["required"] = required
    return out


def _number(node: dict, integer: bool) -> int | float:
    low, high = node.get("minimum"), node.get("maximum")
    step = 1 if integer else 0.5
    if _is_number(node.get("exclusiveMinimum")):
        low = node["exclusiveMinimum"] + step
    if _is_number(node.get("exclusiveMaximum")):
        high = node["exclusiveMaximum"] - step
    value: int | float = 0
    if _is_number(low) and low > value:
        value = math.ceil(low) if integer else low
    if _is_number(high) and high < value:
        value = math.floor(high) if integer else high
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)
