"""A synthetic request of Claude Code's size and shape, for the translator benchmark.

Deterministic (seeded) filler text; nothing is copied from real captures. What it has, like a
Claude Code request of late 2025:

* 24 tools, each with a ~2 KB description and a JSON Schema 2020-12 ``input_schema``
  (``$schema``, ``additionalProperties: false``, ``anyOf`` with ``null``, ``const``, ``enum``,
  ``exclusiveMinimum``, ``propertyNames``, ``format``, ``default``, nested objects and arrays);
* a ~6 KB system prompt in 3 text blocks, the last two with ``cache_control``;
* a conversation: a user turn with a reminder block, a mid-conversation ``system`` message, an
  assistant turn with ``thinking`` + text + two ``tool_use`` blocks, the two ``tool_result`` blocks,
  another assistant turn with thinking and text, and the new user turn;
* ``thinking: adaptive``, ``output_config.effort``, ``metadata.user_id``, ``max_tokens`` 32000.

About 80 KB of JSON in all (``python -m bench.claude_code_request`` prints the figures).
"""
from __future__ import annotations

import json
import random
from typing import Any

from translator import encode_tool_id

SCHEMA_2020 = "https://json-schema.org/draft/2020-12/schema"
# Gemini's documented "skip validation" signature: accepted by the fake for any model.
DUMMY_SIGNATURE = "c2tpcF90aG91Z2h0X3NpZ25hdHVyZV92YWxpZGF0b3I="

_WORDS = (
    "the a an of to in for on with by from when while before after each every any this that these those "
    "file files path directory project repository branch commit change changes diff patch line lines "
    "function method class module package test tests suite command shell process output input result "
    "results error errors warning value values option options setting settings user request response "
    "task tasks step steps plan agent tool tools call calls argument arguments parameter parameters "
    "schema field fields type types string number boolean object array list map key keys name names "
    "read write edit create delete update search find match pattern query filter sort limit offset "
    "always never only must should may can do not use prefer avoid keep make sure check verify run "
    "quickly carefully exactly clearly instead unless otherwise also then first next finally "
    "background foreground timeout seconds minutes lines characters bytes tokens context window "
    "notebook cell cells worktree session message messages summary description example examples"
).split()


def _sentence(rng: random.Random, lo: int = 6, hi: int = 18) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(lo, hi))]
    words[0] = words[0].capitalize()
    return " ".join(words) + "."


def _text(rng: random.Random, chars: int) -> str:
    """Markdown-ish prose of about ``chars`` characters: paragraphs, bullets, a heading, code."""
    parts: list[str] = []
    size = 0
    while size < chars:
        kind = rng.random()
        if kind < 0.12:
            piece = "## " + _sentence(rng, 2, 5).rstrip(".")
        elif kind < 0.4:
            piece = "\n".join("- " + _sentence(rng, 5, 14) for _ in range(rng.randint(2, 5)))
        elif kind < 0.47:
            piece = "```\n" + " ".join(rng.choice(_WORDS) for _ in range(8)) + " --flag=value\n```"
        else:
            piece = " ".join(_sentence(rng) for _ in range(rng.randint(2, 5)))
        parts.append(piece)
        size += len(piece) + 2
    return "\n\n".join(parts)[:chars]


def _leaf(rng: random.Random, kind: str) -> dict[str, Any]:
    desc = _sentence(rng, 5, 16)
    if kind == "string":
        node: dict[str, Any] = {"description": desc, "type": "string"}
        if rng.random() < 0.3:
            node["maxLength"] = rng.choice((80, 200, 4000))
        return node
    if kind == "path":
        return {"description": "The absolute path to the file " + desc.lower(), "type": "string"}
    if kind == "uri":
        return {"description": desc, "type": "string", "format": "uri"}
    if kind == "bool":
        return {"description": desc, "type": "boolean", **({"default": False} if rng.random() < 0.5 else {})}
    if kind == "count":
        return {"description": desc, "type": "integer", "exclusiveMinimum": 0, "maximum": 9007199254740991}
    if kind == "range":
        return {"description": desc, "type": "number", "minimum": 0, "maximum": rng.choice((600000, 100, 1))}
    if kind == "enum":
        return {"description": desc, "type": "string",
                "enum": rng.sample(("low", "medium", "high", "auto", "code", "markdown", "raw", "replace",
                                    "insert", "delete", "pending", "in_progress", "completed"), rng.randint(2, 5))}
    if kind == "nullable":
        return {"description": desc, "anyOf": [{"type": "string"}, {"type": "null"}]}
    if kind == "const_union":
        return {"description": desc, "anyOf": [
            {"type": "object", "properties": {"kind": {"const": "inline"}, "text": {"type": "string"}},
             "required": ["kind", "text"], "additionalProperties": False},
            {"type": "object", "properties": {"kind": {"const": "file"}, "path": {"type": "string"}},
             "required": ["kind", "path"], "additionalProperties": False}]}
    if kind == "string_map":
        return {"description": desc, "type": "object", "propertyNames": {"type": "string", "pattern": "^[a-z_]+$"},
                "additionalProperties": {"type": "string"}}
    if kind == "items":
        return {"description": desc, "type": "array", "minItems": 1, "maxItems": rng.choice((4, 16, 50)),
                "items": {"type": "object", "properties": {
                    "content": {"type": "string", "minLength": 1, "description": _sentence(rng, 4, 10)},
                    "status": {"type": "string", "enum": ["pending", "in_progress", "completed"]},
                    "priority": {"type": "integer", "minimum": 1, "maximum": 5},
                    "tags": {"type": "array", "items": {"type": "string"}},
                }, "required": ["content", "status"], "additionalProperties": False}}
    if kind == "nested":
        return {"description": desc, "type": "object", "properties": {
            "mode": {"type": "string", "enum": ["fast", "thorough"]},
            "limits": {"type": "object", "properties": {
                "max_results": {"type": "integer", "exclusiveMinimum": 0},
                "timeout_ms": {"type": "number", "minimum": 0, "maximum": 600000}},
                "additionalProperties": False},
            "labels": {"type": "array", "items": {"type": "string", "maxLength": 64}}},
            "required": ["mode"], "additionalProperties": False}
    raise ValueError(kind)


_KINDS = ("string", "path", "uri", "bool", "count", "range", "enum", "nullable", "const_union", "string_map",
          "items", "nested")
_TOOL_NAMES = ("RunShell", "OpenFile", "PatchFile", "SaveFile", "FindFiles", "SearchText", "ListTree",
               "FetchPage", "WebLookup", "TodoBoard", "SubAgent", "NotebookCell", "PlanMode", "AskUser",
               "JobStart", "JobOutput", "JobStop", "TaskAdd", "TaskGet", "TaskList", "TaskEdit", "Timer",
               "SkillRun", "ReportIssue")


def tool(rng: random.Random, name: str, description_chars: int = 1900) -> dict[str, Any]:
    props: dict[str, Any] = {}
    kinds = ["string"] + rng.sample(_KINDS, rng.randint(2, 5))
    for i, kind in enumerate(kinds):
        key = f"{rng.choice(_WORDS)}_{rng.choice(_WORDS)}_{i}".replace("-", "_")
        props[key] = _leaf(rng, kind)
    required = [k for k in props if rng.random() < 0.5] or [next(iter(props))]
    return {"name": name, "description": _text(rng, description_chars),
            "input_schema": {"$schema": SCHEMA_2020, "type": "object", "properties": props, "required": required,
                             "additionalProperties": False}}


def claude_code_request(seed: int = 7, stream: bool = True, model: str = "claude-sonnet-4-5") -> dict[str, Any]:
    rng = random.Random(seed)
    tools = [tool(rng, name) for name in _TOOL_NAMES]
    sig = DUMMY_SIGNATURE
    first_call = encode_tool_id("call-1", sig, "msg_x_1")
    second_call = encode_tool_id("call-2", None, "msg_x_2")
    system = [
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.0.0; cc_entrypoint=cli"},
        {"type": "text", "text": "You are a coding agent running in a terminal.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": _text(rng, 6000), "cache_control": {"type": "ephemeral"}},
    ]
    messages = [
        {"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>\n" + _text(rng, 900) + "\n</system-reminder>"},
            {"type": "text", "text": "Look at the failing test in the parser module and fix it."}]},
        {"role": "system", "content": "Note: " + _sentence(rng, 8, 20)},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": _text(rng, 700), "signature": "gm1:" + sig},
            {"type": "text", "text": "I'll look at the test and the parser first."},
            {"type": "tool_use", "id": first_call, "name": "RunShell",
             "input": {tools[0]["input_schema"]["required"][0]: "pytest -x tests/test_parser.py"}},
            {"type": "tool_use", "id": second_call, "name": "OpenFile",
             "input": {tools[1]["input_schema"]["required"][0]: "/repo/parser.py"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": first_call, "content": _text(rng, 1500)},
            {"type": "tool_result", "tool_use_id": second_call,
             "content": [{"type": "text", "text": _text(rng, 1800)}], "cache_control": {"type": "ephemeral"}}]},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": _text(rng, 400), "signature": "gm1:"},
            {"type": "text", "text": _text(rng, 300)}]},
        {"role": "user", "content": [{"type": "text", "text": "Yes, go ahead and apply the fix."}]},
    ]
    return {"model": model, "max_tokens": 32000, "system": system, "messages": messages, "tools": tools,
            "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"},
            "metadata": {"user_id": json.dumps({"device_id": "0" * 64, "session_id": "bench"})},
            "stream": stream}


def describe(body: dict[str, Any]) -> dict[str, Any]:
    return {"bytes": len(json.dumps(body).encode()), "tools": len(body["tools"]),
            "tools_bytes": len(json.dumps(body["tools"]).encode()),
            "system_bytes": sum(len(b["text"]) for b in body["system"]),
            "messages_bytes": len(json.dumps(body["messages"]).encode())}


if __name__ == "__main__":
    print(describe(claude_code_request()))
