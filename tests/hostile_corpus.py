"""Malformed and hostile requests for the proxy, as data (used by tests/test_hostile.py).

Each :class:`Case` is one request and what the proxy must answer:

* ``body`` is sent as ``json.dumps(body)``; ``raw`` (bytes) is sent as it is and wins over ``body``;
* ``status`` is the expected HTTP status, or a tuple of acceptable ones (where Anthropic's own
  behaviour is not pinned down, e.g. a BOM);
* ``error_type`` is the Anthropic ``error.type`` for a non-200 answer;
* ``fragment`` must appear (case-insensitively) in ``error.message``; a tuple means "one of these".
  The fragment names what is wrong (the field), so that a client can fix its request;
* ``upstream``: ``False`` = the request must be refused before anything reaches Gemini,
  ``"tool_names_valid"`` = it must reach Gemini with function names Gemini accepts
  (and not with the client's invalid ones), ``None`` = not checked.

Sizes are chosen to stay fast: the whole corpus runs in a few seconds against the real proxy.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

MODEL = "claude-sonnet-5"
MESSAGES = "/v1/messages"
COUNT = "/v1/messages/count_tokens"
HELLO = "Hello from the fake Gemini."


@dataclass(frozen=True)
class Case:
    name: str
    body: Any = None
    raw: bytes | None = None
    status: int | tuple[int, ...] = 400
    error_type: str | tuple[str, ...] | None = "invalid_request_error"
    fragment: str | tuple[str, ...] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    path: str = MESSAGES
    upstream: bool | str | None = None

    def payload(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return json.dumps(self.body).encode()

    @property
    def statuses(self) -> tuple[int, ...]:
        return self.status if isinstance(self.status, tuple) else (self.status,)


def req(**fields: Any) -> dict:
    """A valid request with ``fields`` replaced; a field set to ``DROP`` is removed."""
    body: dict[str, Any] = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "Say hello."}]}
    body.update(fields)
    return {k: v for k, v in body.items() if v is not DROP}


def count(**fields: Any) -> dict:
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello."}]}
    body.update(fields)
    return {k: v for k, v in body.items() if v is not DROP}


DROP = object()


def user(*blocks: Any) -> list[dict]:
    return [{"role": "user", "content": list(blocks)}]


def tool(name: str = "get_weather", schema: Any = None, **extra: Any) -> dict:
    if schema is None:
        schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    return {"name": name, "description": "A tool.", "input_schema": schema, **extra}


def history(tool_input_raw: str = "{}", tool_id: str = "toolu_01", result_id: str | None = None) -> bytes:
    """A raw body with one answered tool call whose input is ``tool_input_raw`` (raw JSON text)."""
    result_id = tool_id if result_id is None else result_id
    return ('{"model": "%s", "max_tokens": 64, "tools": [%s], "messages": ['
            '{"role": "user", "content": "What is the weather?"},'
            '{"role": "assistant", "content": [{"type": "tool_use", "id": %s, "name": "get_weather", "input": %s}]},'
            '{"role": "user", "content": [{"type": "tool_result", "tool_use_id": %s, "content": "sunny"}]}]}'
            % (MODEL, json.dumps(tool()), json.dumps(tool_id), tool_input_raw, json.dumps(result_id))).encode()


def raw_req(**raw_fields: str) -> bytes:
    """A valid request with some fields given as raw JSON text (NaN, 1e400, "\\ud800" escapes...)."""
    parts = {"model": json.dumps(MODEL), "max_tokens": "64",
             "messages": '[{"role": "user", "content": "Say hello."}]'}
    parts.update(raw_fields)
    return ("{" + ", ".join(f'"{k}": {v}' for k, v in parts.items()) + "}").encode()


def nested_schema(depth: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}}
    return schema


PNG = "iVBORw0KGgoAAAANSUHEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
IMG = {"type": "base64", "media_type": "image/png", "data": PNG}
TOOL_USE = {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}
TOOL_RESULT = {"type": "tool_result", "tool_use_id": "toolu_01", "content": "sunny"}
ASKED = {"role": "user", "content": "What is the weather?"}
CALLED = {"role": "assistant", "content": [TOOL_USE]}

DEEP = 10_000
WHOLE_DEEP = b"[" * DEEP + b"]" * DEEP
DEEP_OBJECT = '{"a": ' * DEEP + "{}" + "}" * DEEP
FIVE_MB = "lorem ipsum " * (5 * 1024 * 1024 // 12)
MANY_TURNS = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i}"} for i in range(5001)]

def fan_out(levels: int) -> dict:
    """A 1 KB schema whose keywords are merged into both alternatives at each level: 2^levels nodes."""
    schema: dict = {"type": "string"}
    for _ in range(levels):
        schema = {"anyOf": [{"title": "a"}, {"title": "b"}], "type": "object", "properties": {"a": schema}}
    return {"type": "object", "properties": {"x": schema}}


def many(n: int, fmt: str = "v{}") -> list[str]:
    return [fmt.format(i) for i in range(n)]


def wide(n: int, **keywords: Any) -> dict:
    return {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(n)}, **keywords}


def answered(n: int, content: Any) -> list[dict]:
    """One assistant turn of n tool calls and the user turn answering them, each with ``content``."""
    calls = [{**TOOL_USE, "id": f"toolu_{i}"} for i in range(n)]
    return [ASKED, {"role": "assistant", "content": calls},
            {"role": "user", "content": [{**TOOL_RESULT, "tool_use_id": f"toolu_{i}", "content": content}
                                         for i in range(n)]}]


AMPLIFIED = {"type": "object", "$defs": {"d": {"type": "string", "description": "x" * 1_000_000}},
             "properties": {f"p{i}": {"$ref": "#/$defs/d"} for i in range(200)}}
NODE = {"type": "object", "properties": {"value": {"type": "string"},
                                         "children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}
RECURSIVE_SCHEMA = {"type": "object", "properties": {"root": {"$ref": "#/$defs/node"}}, "$defs": {"node": NODE}}

CASES: list[Case] = [
    # --- the body itself ----------------------------------------------------------------------------
    Case("not_json", raw=b"model=claude&max_tokens=5", fragment="JSON", upstream=False),
    Case("empty_body", raw=b"", fragment="JSON", upstream=False),
    Case("whitespace_body", raw=b" \r\n\t ", fragment="JSON", upstream=False),
    Case("truncated_json", raw=json.dumps(req()).encode()[:-7], fragment="JSON", upstream=False),
    Case("trailing_garbage", raw=json.dumps(req()).encode() + b"}{", fragment="JSON", upstream=False),
    Case("json_list", raw=b"[]", fragment="object", upstream=False),
    Case("json_list_of_request", body=[req()], fragment="object", upstream=False),
    Case("json_string", raw=b'"hello"', fragment="object", upstream=False),
    Case("json_number", raw=b"42", fragment="object", upstream=False),
    Case("json_null", raw=b"null", fragment="object", upstream=False),
    Case("json_true", raw=b"true", fragment="object", upstream=False),
    Case("invalid_utf8", raw=b'{"model": "claude-sonnet-5", "max_tokens": 64, '
                             b'"messages": [{"role": "user", "content": "caf\xe9 \xff\xfe"}]}',
         fragment=("JSON", "utf-8"), upstream=False),
    Case("utf8_bom", raw=b"\xef\xbb\xbf" + json.dumps(req()).encode(), status=(200, 400), fragment="JSON"),
    Case("utf16_body", raw=json.dumps(req()).encode("utf-16"), status=(200, 400), fragment="JSON"),
    Case("duplicate_keys_last_valid", raw=b'{"model": "no-such-model", "model": "claude-sonnet-5", "max_tokens": 64, '
                                          b'"messages": [{"role": "user", "content": "Say hello."}]}',
         status=(200, 400), fragment="model"),
    Case("nested_10000_whole_body", raw=WHOLE_DEEP, fragment="nested", upstream=False),
    Case("nested_10000_in_metadata", raw=raw_req(metadata=DEEP_OBJECT), fragment="nested", upstream=False),
    Case("nested_10000_in_tool_input", raw=history(DEEP_OBJECT), fragment="nested", upstream=False),
    Case("nested_900_in_tool_input", raw=history('{"a": ' * 900 + "{}" + "}" * 900), status=(200, 400),
         fragment="nested"),
    Case("integer_5000_digits", raw=raw_req(max_tokens="1" + "0" * 5000), fragment=("max_tokens", "JSON"),
         upstream=False),

    # --- wrong type for every top-level field --------------------------------------------------------
    Case("model_int", body=req(model=5), fragment="model", upstream=False),
    Case("model_null", body=req(model=None), fragment="model", upstream=False),
    Case("model_empty", body=req(model=""), fragment="model", upstream=False),
    Case("model_list", body=req(model=[MODEL]), fragment="model", upstream=False),
    Case("max_tokens_string", body=req(max_tokens="64"), fragment="max_tokens", upstream=False),
    Case("max_tokens_fraction", body=req(max_tokens=64.5), fragment="max_tokens", upstream=False),
    Case("max_tokens_float_integral", body=req(max_tokens=64.0), status=(200, 400), fragment="max_tokens"),
    Case("max_tokens_negative", body=req(max_tokens=-1), fragment="max_tokens", upstream=False),
    Case("max_tokens_bool", body=req(max_tokens=True), fragment="max_tokens", upstream=False),
    Case("max_tokens_1e400", raw=raw_req(max_tokens="1e400"), fragment="max_tokens", upstream=False),
    Case("max_tokens_NaN", raw=raw_req(max_tokens="NaN"), fragment=("max_tokens", "JSON"), upstream=False),
    Case("max_tokens_zero", body=req(max_tokens=0), status=200, error_type=None),
    Case("max_tokens_zero_stream", body=req(max_tokens=0, stream=True), status=200, error_type=None),
    Case("max_tokens_huge_int_clamped", body=req(max_tokens=10**30), status=200, error_type=None),
    Case("messages_string", body=req(messages="hello"), fragment="messages", upstream=False),
    Case("messages_object", body=req(messages={"role": "user", "content": "hi"}), fragment="messages",
         upstream=False),
    Case("system_int", body=req(system=5), fragment="system", upstream=False),
    Case("system_list_of_strings", body=req(system=["be nice"]), fragment="system", upstream=False),
    Case("system_image_block", body=req(system=[{"type": "image", "source": IMG}]), fragment="system",
         upstream=False),
    Case("stream_string_true", body=req(stream="true"), fragment="stream", upstream=False),
    Case("stream_int", body=req(stream=1), fragment="stream", upstream=False),
    Case("temperature_string", body=req(temperature="hot"), fragment="temperature", upstream=False),
    Case("temperature_above_1", body=req(temperature=1.5), fragment="temperature", upstream=False),
    Case("temperature_negative", body=req(temperature=-0.1), fragment="temperature", upstream=False),
    Case("temperature_NaN", raw=raw_req(temperature="NaN"), fragment=("temperature", "JSON"), upstream=False),
    Case("temperature_Infinity", raw=raw_req(temperature="-Infinity"), fragment=("temperature", "JSON"),
         upstream=False),
    Case("top_p_string", body=req(top_p="x"), fragment="top_p", upstream=False),
    Case("top_p_above_1", body=req(top_p=2), fragment="top_p", upstream=False),
    Case("top_k_fraction", body=req(top_k=1.5), fragment="top_k", upstream=False),
    Case("top_k_negative", body=req(top_k=-1), fragment="top_k", upstream=False),
    Case("stop_sequences_string", body=req(stop_sequences="STOP"), fragment="stop_sequences", upstream=False),
    Case("stop_sequences_ints", body=req(stop_sequences=[1, 2]), fragment="stop_sequences", upstream=False),
    Case("tools_object", body=req(tools={"name": "x"}), fragment="tools", upstream=False),
    Case("tools_list_of_strings", body=req(tools=["get_weather"]), fragment="tools", upstream=False),
    Case("tool_choice_string", body=req(tool_choice="auto"), fragment="tool_choice", upstream=False),
    Case("tool_choice_unknown_type", body=req(tools=[tool()], tool_choice={"type": "sometimes"}),
         fragment="tool_choice", upstream=False),
    Case("tool_choice_unknown_tool", body=req(tools=[tool()], tool_choice={"type": "tool", "name": "nope"}),
         fragment="tool_choice", upstream=False),
    Case("tool_choice_tool_without_name", body=req(tools=[tool()], tool_choice={"type": "tool"}),
         fragment="tool_choice", upstream=False),
    Case("thinking_string", body=req(thinking="on"), fragment="thinking", upstream=False),
    Case("thinking_unknown_type", body=req(thinking={"type": "sometimes"}), fragment="thinking", upstream=False),
    Case("thinking_enabled_without_budget", body=req(thinking={"type": "enabled"}), fragment="budget_tokens",
         upstream=False),
    Case("thinking_budget_string", body=req(thinking={"type": "enabled", "budget_tokens": "lots"}),
         fragment="budget_tokens", upstream=False),
    Case("metadata_string", body=req(metadata="user-1"), fragment="metadata", upstream=False),
    Case("output_config_string", body=req(output_config="fast"), fragment="output_config", upstream=False),
    Case("output_config_bad_effort", body=req(output_config={"effort": "ultra"}), fragment="effort",
         upstream=False),

    # --- missing / empty required fields ---------------------------------------------------------------
    Case("missing_model", body=req(model=DROP), fragment="model", upstream=False),
    Case("missing_max_tokens", body=req(max_tokens=DROP), fragment="max_tokens", upstream=False),
    Case("missing_messages", body=req(messages=DROP), fragment="messages", upstream=False),
    Case("empty_messages", body=req(messages=[]), fragment="messages", upstream=False),
    Case("empty_object", body={}, fragment=("model", "max_tokens", "messages"), upstream=False),

    # --- messages and content blocks -------------------------------------------------------------------
    Case("role_unknown", body=req(messages=[{"role": "bot", "content": "hi"}]), fragment="role", upstream=False),
    Case("role_missing", body=req(messages=[{"content": "hi"}]), fragment="role", upstream=False),
    Case("message_not_object", body=req(messages=["hi"]), fragment="messages.0", upstream=False),
    Case("content_int", body=req(messages=[{"role": "user", "content": 5}]), fragment="content", upstream=False),
    Case("content_null", body=req(messages=[{"role": "user", "content": None}]), fragment="content",
         upstream=False),
    Case("content_object", body=req(messages=[{"role": "user", "content": {"type": "text", "text": "hi"}}]),
         fragment="content", upstream=False),
    Case("block_not_object", body=req(messages=user("hi")), fragment="content.0", upstream=False),
    Case("block_without_type", body=req(messages=user({"text": "hi"})), fragment="type", upstream=False),
    Case("block_type_int", body=req(messages=user({"type": 7, "text": "hi"})), fragment="type", upstream=False),
    Case("block_type_unknown", body=req(messages=user({"type": "hologram", "data": "x"})), fragment="hologram",
         upstream=False),
    Case("text_block_without_text", body=req(messages=user({"type": "text"})), fragment="text", upstream=False),
    Case("text_block_text_int", body=req(messages=user({"type": "text", "text": 5})), fragment="text",
         upstream=False),
    Case("text_block_text_list", body=req(messages=user({"type": "text", "text": ["a"]})), fragment="text",
         upstream=False),
    Case("only_empty_text", body=req(messages=[{"role": "user", "content": ""}]), fragment="messages",
         upstream=False),
    Case("image_without_source", body=req(messages=user({"type": "image"})), fragment="source", upstream=False),
    Case("image_source_string", body=req(messages=user({"type": "image", "source": PNG})), fragment="source",
         upstream=False),
    Case("image_gif", body=req(messages=user({"type": "image", "source": {**IMG, "media_type": "image/gif"}})),
         fragment="media_type", upstream=False),
    Case("image_html_media_type", body=req(messages=user({"type": "image",
                                                          "source": {**IMG, "media_type": "text/html"}})),
         fragment="media_type", upstream=False),
    Case("image_bad_base64", body=req(messages=user({"type": "image", "source": {**IMG, "data": "not base64!!"}})),
         fragment="data", upstream=False),
    Case("image_empty_data", body=req(messages=user({"type": "image", "source": {**IMG, "data": ""}})),
         fragment="data", upstream=False),
    Case("image_url_source", body=req(messages=user({"type": "image", "source": {
        "type": "url", "url": "http://169.254.169.254/latest/meta-data/"}})), fragment="url", upstream=False),
    Case("document_file_source", body=req(messages=user({"type": "document", "source": {
        "type": "file", "file_id": "file_01"}})), fragment="source", upstream=False),
    Case("document_without_source", body=req(messages=user({"type": "document", "title": "x"})),
         fragment="source", upstream=False),
    Case("document_pdf_as_png", body=req(messages=user({"type": "document", "source": IMG})),
         fragment="media_type", upstream=False),
    Case("tool_use_in_user_message", body=req(tools=[tool()], messages=user(TOOL_USE)), fragment="tool_use",
         upstream=False),
    Case("tool_result_in_assistant_message", body=req(tools=[tool()], messages=[
        ASKED, {"role": "assistant", "content": [TOOL_RESULT]}]), fragment="tool_result", upstream=False),
    Case("tool_result_orphan", body=req(tools=[tool()], messages=user(TOOL_RESULT)), fragment="tool_use_id",
         upstream=False),
    Case("tool_result_wrong_id", body=req(tools=[tool()], messages=[
        ASKED, CALLED, {"role": "user", "content": [{**TOOL_RESULT, "tool_use_id": "toolu_99"}]}]),
         fragment="tool_use_id", upstream=False),
    Case("tool_use_unanswered_then_text", body=req(tools=[tool()], messages=[
        ASKED, CALLED, {"role": "user", "content": "never mind"}]), fragment="tool_result", upstream=False),
    Case("tool_use_input_list", body=req(tools=[tool()], messages=[
        ASKED, {"role": "assistant", "content": [{**TOOL_USE, "input": [1, 2]}]},
        {"role": "user", "content": [TOOL_RESULT]}]), fragment="input", upstream=False),
    Case("tool_use_empty_id", raw=history("{}", tool_id=""), status=(200, 400), fragment="id"),
    Case("tool_result_content_int", body=req(tools=[tool()], messages=[
        ASKED, CALLED, {"role": "user", "content": [{**TOOL_RESULT, "content": 5}]}]), fragment="content",
         upstream=False),
    Case("tool_result_without_tool_use_id", body=req(tools=[tool()], messages=[
        ASKED, CALLED, {"role": "user", "content": [{"type": "tool_result", "content": "sunny"}]}]),
         fragment="tool_use_id", upstream=False),

    # --- tools --------------------------------------------------------------------------------------------
    Case("tool_names_duplicate", body=req(tools=[tool(), tool()]), fragment="get_weather", upstream=False),
    Case("tool_name_leading_digit", body=req(tools=[tool("1password_lookup")]), status=200, error_type=None,
         upstream="tool_names_valid"),
    Case("tool_name_leading_dash", body=req(tools=[tool("-x")], tool_choice={"type": "tool", "name": "-x"}),
         status=200, error_type=None, upstream="tool_names_valid"),
    Case("tool_name_spaces", body=req(tools=[tool("get weather")]), fragment="name", upstream=False),
    Case("tool_name_65_chars", body=req(tools=[tool("a" * 65)]), fragment="name", upstream=False),
    Case("tool_name_empty", body=req(tools=[tool("")]), fragment="name", upstream=False),
    Case("tool_name_nul", body=req(tools=[tool("get\u0000weather")]), fragment="name", upstream=False),
    Case("tool_name_int", body=req(tools=[{"name": 5, "input_schema": {}}]), fragment="name", upstream=False),
    Case("tool_without_input_schema", body=req(tools=[{"name": "get_weather"}]), fragment="input_schema",
         upstream=False),
    Case("tool_input_schema_string", body=req(tools=[tool(schema="object")]), fragment="input_schema",
         upstream=False),
    Case("tool_input_schema_list", body=req(tools=[tool(schema=[{"type": "object"}])]), fragment="input_schema",
         upstream=False),
    # Anthropic requires an object schema at the root of input_schema.
    Case("tool_input_schema_type_int", body=req(tools=[tool(schema={"type": 5})]), fragment="input_schema.type",
         upstream=False),
    Case("tool_input_schema_type_string", body=req(tools=[tool(schema={"type": "string"})]),
         fragment="must be 'object'", upstream=False),
    Case("tool_input_schema_without_type", body=req(tools=[tool(schema={"properties": {}})]),
         fragment="input_schema.type", upstream=False),
    Case("tool_description_int", body=req(tools=[tool(description=5)]), fragment="description", upstream=False),
    Case("tool_type_int", body=req(tools=[tool(type=5)]), fragment="type", upstream=False),
    Case("tool_schema_200_deep", body=req(tools=[tool(schema=nested_schema(200))]), status=(200, 400),
         fragment="nested"),
    Case("tool_schema_recursive_ref", body=req(tools=[tool(schema=RECURSIVE_SCHEMA)]), status=200, error_type=None),
    Case("tool_schema_ref_to_root", body=req(tools=[tool(schema={"type": "object", "properties": {
        "again": {"$ref": "#"}}})]), status=200, error_type=None),
    Case("tool_schema_ref_cycle", body=req(tools=[tool(schema={"type": "object", "$ref": "#/$defs/a", "$defs": {
        "a": {"$ref": "#/$defs/b"}, "b": {"allOf": [{"$ref": "#/$defs/a"}]}}})]), status=200, error_type=None),
    Case("tool_schema_remote_ref", body=req(tools=[tool(schema={"type": "object", "$ref": "http://169.254.169.254/schema.json"})]),
         status=(200, 400), fragment="$ref"),
    Case("tool_schema_junk_keywords", body=req(tools=[tool(schema={
        "type": "bogus", "properties": [1, 2], "required": "a", "enum": [{}], "minimum": "5", "items": True})]),
         status=(200, 400), fragment="input_schema"),

    # --- structured output schemas: bounded like tool schemas (what they may hold: test_structured_outputs)
    Case("output_schema_wide", body=req(output_config={"format": {"type": "json_schema", "schema": {
        "type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(5000)}}}}),
         fragment="limits.properties", upstream=False),
    Case("output_format_not_json_schema", body=req(output_config={"format": {"type": "regex", "pattern": ".*"}}),
         fragment="output_config.format.type", upstream=False),

    # --- numbers and unicode --------------------------------------------------------------------------
    Case("NaN_in_tool_input", raw=history('{"city": NaN}'), status=(200, 400), fragment=("NaN", "input", "JSON")),
    Case("Infinity_in_tool_input", raw=history('{"city": Infinity}'), status=(200, 400),
         fragment=("Infinity", "input", "JSON")),
    Case("1e400_in_tool_input", raw=history('{"city": 1e400}'), status=(200, 400),
         fragment=("Infinity", "input", "JSON", "number")),
    Case("NaN_in_tool_schema", raw=raw_req(tools='[{"name": "t", "input_schema": {"type": "object", "properties": '
                                                 '{"n": {"type": "number", "minimum": NaN}}}}]'),
         status=(200, 400), fragment=("NaN", "minimum", "JSON")),
    Case("lone_surrogate_in_text", raw=raw_req(messages='[{"role": "user", "content": "a\\ud800b"}]'),
         status=(200, 400), fragment=("surrogate", "content", "unicode")),
    Case("lone_surrogate_in_system", raw=raw_req(system='"be \\udfff nice"'), status=(200, 400),
         fragment=("surrogate", "system", "unicode")),
    Case("lone_surrogate_in_schema_key", raw=raw_req(tools='[{"name": "t", "input_schema": {"type": "object", '
                                                           '"properties": {"\\ud83d": {"type": "string"}}}}]'),
         status=(200, 400), fragment=("surrogate", "properties", "unicode")),
    Case("surrogate_bytes_cesu8", raw=b'{"model": "claude-sonnet-5", "max_tokens": 64, "messages": '
                                      b'[{"role": "user", "content": "a\xed\xa0\x80b"}]}',
         status=(200, 400), fragment=("utf-8", "JSON", "content", "surrogate")),
    Case("lone_surrogate_in_model", raw=raw_req(model='"claude-sonnet-5\\ud800"'), fragment="model",
         upstream=False),
    Case("unicode_rtl_nul_zero_width", body=req(messages=[{"role": "user", "content":
                                                           "\u202eevil\u202c \u200f\u200b a\u0000b \ufeff \U0001F600"
                                                           "e\u0301 \uffff"}]),
         status=200, error_type=None),

    # --- open fields, routing, query strings ------------------------------------------------------------
    Case("sdk_top_level_fields", body=req(container="c", speed="fast", context_management={"edits": []},
                                          service_tier="auto", cache_control={"type": "ephemeral"}),
         status=200, error_type=None),
    # A field conformance.yaml does not know is named in a 400, so that a new SDK field is seen, not dropped.
    Case("unknown_top_level_fields", body=req(totally_new_field={"x": [1]}), status=400,
         error_type="invalid_request_error", fragment="totally_new_field: Extra inputs are not permitted",
         upstream=False),
    Case("unknown_model", body=req(model="gpt-4o"), status=404, error_type="not_found_error", fragment="gpt-4o",
         upstream=False),
    Case("beta_query", body=req(), path=MESSAGES + "?beta=true", status=200, error_type=None),
    Case("stream_true_legit", body=req(stream=True), status=200, error_type=None),
    Case("anthropic_headers", body=req(), status=200, error_type=None,
         headers={"anthropic-version": "2099-01-01", "anthropic-beta": "made-up-beta,another",
                  "x-stainless-lang": "python", "anthropic-user-profile-id": "p"}),
    Case("text_plain_content_type", body=req(), headers={"content-type": "text/plain"}, status=(200, 400, 415),
         fragment="content-type"),

    # --- size -----------------------------------------------------------------------------------------
    Case("five_mb_text_block", body=req(messages=user({"type": "text", "text": FIVE_MB})),
         status=(200, 400, 413), error_type=("invalid_request_error", "request_too_large"),
         fragment=("prompt is too long", "too large", "maximum")),
    Case("five_thousand_turns", body=req(messages=MANY_TURNS), status=200, error_type=None),

    # --- size and shape (tools.yaml and content.yaml limits): refused at once, naming the bound -------
    Case("enum_200000_values", body=req(tools=[tool(schema={"type": "object", "properties": {"x": {
        "type": "string", "enum": many(200_000)}}})]), fragment="limits.enum_values", upstream=False),
    Case("enum_5000_values", body=req(tools=[tool(schema={"type": "object", "properties": {"x": {
        "type": "string", "enum": many(5000)}}})]), status=200, error_type=None),
    Case("required_50000_names", body=req(tools=[tool(schema={"type": "object", "properties": {"a": {
        "type": "string"}}, "required": many(50_000)})]), fragment="limits.required", upstream=False),
    Case("object_5000_properties", body=req(tools=[tool(schema=wide(5000))]), fragment="limits.properties",
         upstream=False),
    Case("object_500_properties_all_required", body=req(tools=[tool(schema=wide(500, required=many(500, "p{}")))]),
         status=200, error_type=None),
    Case("required_unhashable_names", body=req(tools=[tool(schema={"type": "object", "properties": {"a": {
        "type": "string"}}, "required": [{}, ["a"], "a", 1]})]), status=200, error_type=None),
    Case("anyOf_5000_alternatives", body=req(tools=[tool(schema={"type": "object", "properties": {"x": {
        "anyOf": [{"const": v} for v in many(5000)]}}})]), fragment="limits.alternatives", upstream=False),
    Case("allOf_5000_parts", body=req(tools=[tool(schema={"type": "object", "properties": {"x": {
        "allOf": [{"type": "string"}] * 5000}}})]), fragment="limits.alternatives", upstream=False),
    Case("anyOf_500_constants", body=req(tools=[tool(schema={"type": "object", "properties": {"x": {
        "anyOf": [{"const": v} for v in many(500)]}}})]), status=200, error_type=None),
    Case("anyOf_fan_out_20_levels", body=req(tools=[tool(schema=fan_out(20))]), fragment="limits.schema_nodes",
         upstream=False),
    Case("description_behind_200_refs", body=req(tools=[tool(schema=AMPLIFIED)]), fragment="limits.schema_size",
         upstream=False),
    Case("tools_5000", body=req(tools=[tool(f"t{i}") for i in range(5000)]), fragment="limits.tools",
         upstream=False),
    Case("tools_300", body=req(tools=[tool(f"t{i}") for i in range(300)]), status=200, error_type=None),
    Case("messages_200000", body=req(messages=[{"role": "user", "content": "x"}] * 200_000),
         fragment="limits.messages", upstream=False),
    Case("blocks_200000", body=req(messages=user(*[{"type": "text", "text": "x"}] * 200_000)),
         fragment="limits.content_blocks", upstream=False),
    Case("tool_result_blocks_200000", body=req(tools=[tool()], messages=answered(2, [{"type": "text", "text": "x"}]
                                                                                  * 100_000)),
         fragment="limits.content_blocks", upstream=False),
    Case("tool_rounds_2000", body=req(tools=[tool()], messages=answered(2000, "sunny")), status=200, error_type=None),
    Case("count_enum_200000_values", body=count(tools=[tool(schema={"type": "object", "properties": {"x": {
        "type": "string", "enum": many(200_000)}}})]), path=COUNT, fragment="limits.enum_values", upstream=False),
    Case("count_messages_200000", body=count(messages=[{"role": "user", "content": "x"}] * 200_000), path=COUNT,
         fragment="limits.messages", upstream=False),

    # --- count_tokens -----------------------------------------------------------------------------------
    Case("count_not_json", raw=b"{{{", path=COUNT, fragment="JSON", upstream=False),
    Case("count_list_body", raw=b"[1]", path=COUNT, fragment="object", upstream=False),
    Case("count_missing_messages", body=count(messages=DROP), path=COUNT, fragment="messages", upstream=False),
    Case("count_missing_model", body=count(model=DROP), path=COUNT, fragment="model", upstream=False),
    Case("count_unknown_model", body=count(model="gpt-4o"), path=COUNT, status=404, error_type="not_found_error",
         fragment="gpt-4o", upstream=False),
    Case("count_tool_use_in_user", body=count(tools=[tool()], messages=user(TOOL_USE)), path=COUNT,
         fragment="tool_use", upstream=False),
    Case("count_bad_tool_name", body=count(tools=[tool("get weather")]), path=COUNT, fragment="name",
         upstream=False),
    Case("count_nested_10000", raw=WHOLE_DEEP, path=COUNT, fragment="nested", upstream=False),
    Case("count_extra_fields", body=count(max_tokens=10, stream=True, temperature=0.5), path=COUNT, status=200,
         error_type=None),
    Case("count_lone_surrogate", raw=b'{"model": "claude-sonnet-5", "messages": [{"role": "user", "content": '
                                     b'"a\\ud800b"}]}', path=COUNT, status=(200, 400),
         fragment=("surrogate", "content", "unicode")),
]

assert len({c.name for c in CASES}) == len(CASES), "case names must be unique"
