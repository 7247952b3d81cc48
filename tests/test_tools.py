"""translator/tools.py with spec/tools.yaml: schema sanitising, tool planning, names, cache."""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from translator.spec import load_table
from translator.tools import DeclarationCache, ToolError, ToolPlan, plan_tools, sanitize_schema

TABLE = load_table("tools")
FIXTURES = Path(__file__).resolve().parent.parent.parent / "shared" / "fixtures" / "claude-code"

ANY_ITEM = {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "object"}]}
ANY_VALUE = {"anyOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "object"},
                       {"type": "array", "items": ANY_ITEM}]}


def prop(schema: dict, **root) -> dict:
    """A root object with the one property ``p``."""
    return {"type": "object", "properties": {"p": schema}, **root}


def note(keyword: str, value: str) -> str:
    return f"(constraint: {keyword}: {value})"


# --- keyword rules: input property schema → output property schema ----------------------------

KEYWORD_CASES = {
    "kept keywords": (
        {"type": "string", "title": "T", "description": "D", "minLength": 1, "maxLength": 9, "pattern": "^a",
         "default": "a", "example": "ab"},
        {"type": "string", "title": "T", "description": "D", "minLength": 1, "maxLength": 9, "pattern": "^a",
         "default": "a", "example": "ab"}),
    "dropped keywords": (
        {"type": "string", "$id": "x", "$comment": "c", "$schema": "s", "x-vendor": 1, "propertyOrdering": ["a"]},
        {"type": "string"}),
    "described keywords": (
        {"type": "integer", "description": "D", "exclusiveMinimum": 0, "multipleOf": 2},
        {"type": "integer", "description": f"D {note('exclusiveMinimum', '0')} {note('multipleOf', '2')}"}),
    "described without a description": (
        {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        {"type": "array", "items": {"type": "string"}, "description": note("uniqueItems", "true")}),
    "trivial values dropped": (
        {"type": "array", "items": {"type": "string"}, "uniqueItems": False, "deprecated": False},
        {"type": "array", "items": {"type": "string"}}),
    "kept keyword of the wrong value type is described": (
        {"type": "string", "minLength": -1, "title": 5},
        {"type": "string", "description": f"{note('minLength', '-1')} {note('title', '5')}"}),
    "keywords of another type ignored": (
        {"type": "string", "minimum": 1, "properties": {"a": {"type": "string"}}, "items": {"type": "string"}},
        {"type": "string"}),
    "additionalProperties false and {} dropped, schema described": (
        {"type": "object", "properties": {"a": {"type": "string", "additionalProperties": False}},
         "additionalProperties": {"type": "integer"}},
        {"type": "object", "properties": {"a": {"type": "string"}},
         "description": note("additionalProperties", '{"type": "integer"}')}),
    "propertyNames of strings dropped": (
        {"type": "object", "propertyNames": {"type": "string"}, "additionalProperties": {}},
        {"type": "object"}),
    "string const": ({"type": "string", "const": "x"}, {"type": "string", "enum": ["x"]}),
    "non-string const typed by its value and described": (
        {"const": 3}, {"type": "integer", "description": note("enum", "[3]")}),
    "integer enum described, type kept": (
        {"type": "integer", "enum": [1, 2]}, {"type": "integer", "description": note("enum", "[1, 2]")}),
    "untyped string enum": ({"enum": ["a", "b"]}, {"type": "string", "enum": ["a", "b"]}),
    "empty string leaves the enum": (
        {"type": "string", "enum": ["", "a"]},
        {"type": "string", "enum": ["a"], "description": note("enum", '[""]')}),
    "mixed enum split by type": (
        {"enum": ["a", 1, None]},
        {"anyOf": [{"type": "string", "enum": ["a"], "nullable": True},
                   {"type": "integer", "description": note("enum", "[1]"), "nullable": True}]}),
    "oneOf to anyOf, siblings merged into each": (
        {"description": "D", "oneOf": [{"type": "string"}, {"type": "object", "properties": {"k": {"type": "number"}}}]},
        {"anyOf": [{"type": "string", "description": "D"},
                   {"type": "object", "properties": {"k": {"type": "number"}}, "description": "D"}]}),
    "anyOf with null becomes nullable": (
        {"anyOf": [{"type": "string"}, {"type": "null"}]}, {"type": "string", "nullable": True}),
    "anyOf of string constants becomes one enum": (
        {"description": "D", "anyOf": [{"type": "string", "enum": ["a", "b"]}, {"type": "string", "const": "c"}]},
        {"type": "string", "enum": ["a", "b", "c"], "description": "D"}),
    "nested anyOf flattened": (
        {"anyOf": [{"type": "string"}, {"anyOf": [{"type": "integer"}, {"type": "boolean"}]}]},
        {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "boolean"}]}),
    "allOf merged": (
        {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "description": "A"},
                   {"properties": {"b": {"type": "number", "minimum": 1}}, "required": ["b"], "description": "B"},
                   {"properties": {"b": {"minimum": 3}}}]},
        {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "number", "minimum": 3}},
         "required": ["a", "b"], "description": "A B"}),
    "allOf types intersected, limits made strict": (
        {"allOf": [{"type": "number", "maximum": 10}, {"type": ["integer", "null"], "maximum": 5}]},
        {"type": "integer", "maximum": 5}),
    "allOf conflict described": (
        {"allOf": [{"type": "string", "pattern": "^a"}, {"pattern": "b$"}]},
        {"type": "string", "pattern": "^a", "description": note("pattern", '"b$"')}),
    "type list with null": ({"type": ["string", "null"]}, {"type": "string", "nullable": True}),
    "type list of several": (
        {"type": ["string", "integer"], "minLength": 1, "minimum": 0, "description": "D"},
        {"anyOf": [{"type": "string", "minLength": 1, "description": "D"},
                   {"type": "integer", "minimum": 0, "description": "D"}]}),
    "upper-case type": ({"type": "STRING"}, {"type": "string"}),
    "OpenAPI nullable": ({"type": "boolean", "nullable": True}, {"type": "boolean", "nullable": True}),
    "null only": ({"type": "null"}, {"type": "string", "nullable": True, "description": note("type", '"null"')}),
    "empty schema accepts any value": ({}, ANY_VALUE),
    "description only": (
        {"description": "D"},
        {"anyOf": [{**b, "description": "D"} for b in ANY_VALUE["anyOf"]]}),
    "type inferred from keywords": (
        {"properties": {"a": {"type": "string"}}, "required": ["a", "zz"]},
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}),
    "array without items": ({"type": "array"}, {"type": "array", "items": ANY_ITEM}),
    "tuple items": (
        {"type": "array", "items": [{"type": "string"}, {"type": "integer"}]},
        {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}}),
    "formats": (
        {"type": "object", "properties": {
            "t": {"type": "string", "format": "date-time"}, "u": {"type": "string", "format": "uri"},
            "i": {"type": "integer", "format": "int64"}, "f": {"type": "number", "format": "double"}}},
        {"type": "object", "properties": {
            "t": {"type": "string", "format": "date-time"},
            "u": {"type": "string", "description": note("format", '"uri"')},
            "i": {"type": "integer"}, "f": {"type": "number"}}}),
    "combinators Gemini lacks are described": (
        {"type": "string", "not": {"const": "x"}, "if": {"minLength": 2}},
        {"type": "string", "description": note("not", '{"const": "x"}') + " " + note("if", '{"minLength": 2}')}),
    "empty properties dropped": ({"type": "object", "properties": {}, "required": ["a"]}, {"type": "object"}),
    "false property removed": (
        {"type": "object", "properties": {"a": {"type": "string"}, "b": False}, "required": ["a", "b"]},
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}),
    "property names LiteLLM breaks on": (
        {"type": "object", "properties": {"$ref": {"type": "string"}, "strict": {"type": "boolean"},
                                          "ok": {"type": "string"}}, "required": ["strict", "ok"]},
        {"type": "object", "properties": {"ok": {"type": "string"}}, "required": ["ok"],
         "description": note("properties not offered", '["$ref", "strict"]')}),
    "keyword names as property names": (
        {"type": "object", "properties": {"type": {"type": "string"}, "description": {"type": "string"},
                                          "properties": {"type": "integer"}, "$schema": {"type": "string"}}},
        {"type": "object", "properties": {"type": {"type": "string"}, "description": {"type": "string"},
                                          "properties": {"type": "integer"}, "$schema": {"type": "string"}}}),
}


@pytest.mark.parametrize("given_schema, expected", KEYWORD_CASES.values(), ids=KEYWORD_CASES.keys())
def test_keyword_rule(given_schema: dict, expected: dict) -> None:
    assert sanitize_schema(prop(given_schema), TABLE) == {"type": "object", "properties": {"p": expected}}


ROOT_CASES = {
    "root keywords": (
        {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "additionalProperties": False,
         "properties": {"a": {"type": "string"}}, "required": ["a"]},
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}),
    "no properties": ({"type": "object", "properties": {}}, {"type": "object"}),
    "empty schema": ({}, {"type": "object"}),
    "root alternatives are described": (
        {"type": "object", "properties": {"a": {"type": "string"}}, "oneOf": [{"required": ["a"]}]},
        {"type": "object", "properties": {"a": {"type": "string"}},
         "description": note("anyOf", '[{"required": ["a"]}]')}),
    "root $ref": (
        {"$ref": "#/definitions/Args", "definitions": {"Args": {"type": "object", "properties": {"x": {"type": "number"}}}}},
        {"type": "object", "properties": {"x": {"type": "number"}}}),
}


@pytest.mark.parametrize("given_schema, expected", ROOT_CASES.values(), ids=ROOT_CASES.keys())
def test_root_rule(given_schema: dict, expected: dict) -> None:
    assert sanitize_schema(given_schema, TABLE) == expected


def test_refs_inlined_and_recursion_bounded() -> None:
    schema = {"type": "object", "properties": {"tree": {"$ref": "#/$defs/Node"}, "leaf": {"$ref": "#/$defs/Leaf"},
                                               "far": {"$ref": "https://example.com/x.json"}},
              "$defs": {"Leaf": {"type": "string", "description": "L"},
                        "Node": {"type": "object", "properties": {"v": {"$ref": "#/$defs/Leaf"},
                                                                  "kids": {"type": "array",
                                                                           "items": {"$ref": "#/$defs/Node"}}}}}}
    deepest = {"type": "object", "description": note("$ref", '"#/$defs/Node"')}
    level2 = {"type": "object", "properties": {"v": {"type": "string", "description": "L"},
                                               "kids": {"type": "array", "items": deepest}}}
    level1 = {"type": "object", "properties": {"v": {"type": "string", "description": "L"},
                                               "kids": {"type": "array", "items": level2}}}
    assert sanitize_schema(schema, TABLE) == {"type": "object", "properties": {
        "tree": level1, "leaf": {"type": "string", "description": "L"},
        "far": {**ANY_VALUE, "anyOf": [{**b, "description": note("$ref", '"https://example.com/x.json"')}
                                       for b in ANY_VALUE["anyOf"]]}}}


def test_self_reference_terminates() -> None:
    out = sanitize_schema({"type": "object", "properties": {"a": {"$ref": "#"}}}, TABLE)
    twice = out["properties"]["a"]["properties"]["a"]  # max_ref_expansions: 2
    assert twice["properties"]["a"] == {"type": "object", "description": note("$ref", '"#"')}


def test_deep_nesting_is_cut() -> None:
    schema: dict = {"type": "string"}
    for _ in range(200):
        schema = {"type": "array", "items": schema}
    out = sanitize_schema({"type": "object", "properties": {"deep": schema}}, TABLE)
    node, depth = out["properties"]["deep"], 1
    while node["type"] == "array":
        node, depth = node["items"], depth + 1
    assert node == {"type": "object"} and depth == TABLE.schema_policy.max_depth + 1  # nodes deeper than max_depth are cut


def test_long_described_values_are_cut() -> None:
    out = sanitize_schema(prop({"type": "string", "not": {"enum": ["x" * 1000]}}), TABLE)
    limit = TABLE.description_format.max_value_chars
    assert out["properties"]["p"]["description"] == note("not", '{"enum": ["' + "x" * (limit - 11) + "…")


def test_input_is_not_modified() -> None:
    schema = {"type": "object", "properties": {"a": {"allOf": [{"$ref": "#/$defs/A"}], "oneOf": [{"const": 1}]}},
              "$defs": {"A": {"type": ["integer", "null"]}}}
    before = copy.deepcopy(schema)
    sanitize_schema(schema, TABLE)
    assert schema == before


# --- property test: whatever the input, only what Gemini accepts comes out ---------------------

ALLOWED = {"type", "format", "title", "description", "nullable", "enum", "items", "minItems", "maxItems",
           "properties", "required", "minProperties", "maxProperties", "minimum", "maximum", "minLength",
           "maxLength", "pattern", "example", "default", "anyOf"}
TYPES = {"string", "number", "integer", "boolean", "object", "array"}
COUNTS = {"minItems", "maxItems", "minProperties", "maxProperties", "minLength", "maxLength"}

names = st.sampled_from(["a", "b", "type", "description", "properties", "items", "$ref", "strict", "x-y"])
scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from([0.5, -2.25]),
                    st.text(alphabet="ab", max_size=2))
type_names = st.sampled_from(["string", "number", "integer", "boolean", "object", "array", "null", "foo", "STRING"])
refs = st.sampled_from(["#/$defs/A", "#/$defs/B", "#/definitions/C", "#", "#/properties/a", "#/nope",
                        "https://example.com/s.json"])


def schema_node(children):
    """A dict of up to six keywords, each with values of the shapes JSON Schema allows (and some it does not)."""
    lists = st.lists(children, max_size=3)
    values = {
        "type": st.one_of(type_names, st.lists(type_names, max_size=3)),
        "properties": st.dictionaries(names, children, max_size=3),
        "required": st.lists(names, max_size=3),
        "items": st.one_of(children, lists),
        "anyOf": lists, "oneOf": lists, "allOf": lists,
        "not": children, "if": children, "propertyNames": children,
        "additionalProperties": st.one_of(st.booleans(), children),
        "$ref": refs,
        "$defs": st.dictionaries(st.sampled_from(["A", "B"]), children, max_size=2),
        "definitions": st.dictionaries(st.just("C"), children, max_size=1),
        "const": scalars, "enum": st.lists(scalars, max_size=4),
        "format": st.sampled_from(["date-time", "enum", "uri", "int32", "email"]),
        "description": st.one_of(st.text(alphabet="dD ", max_size=3), st.integers()),
        "title": scalars, "nullable": st.booleans(),
        "minimum": st.one_of(st.integers(), st.text(max_size=1)), "maxLength": st.integers(-2, 5),
        "minItems": st.integers(-1, 3), "exclusiveMinimum": st.integers(), "pattern": st.just("^a"),
        "default": scalars, "example": scalars, "examples": st.lists(scalars, max_size=2),
        "uniqueItems": st.booleans(), "x-vendor": scalars, "$schema": st.just("s"),
        "propertyOrdering": st.lists(names, max_size=2),
    }
    pairs = st.one_of([st.tuples(st.just(key), value) for key, value in values.items()])
    return st.lists(pairs, max_size=6, unique_by=lambda pair: pair[0]).map(dict)


schemas = st.deferred(lambda: st.one_of(st.booleans(), st.builds(dict), nodes))
nodes = schema_node(schemas)
roots = nodes


def check_node(node: dict, root: bool = False) -> None:
    assert isinstance(node, dict)
    if "anyOf" in node:
        assert not root and set(node) == {"anyOf"} and len(node["anyOf"]) >= 2
        for branch in node["anyOf"]:
            assert "anyOf" not in branch
            check_node(branch)
        return
    assert set(node) <= ALLOWED, set(node) - ALLOWED
    kind = node["type"]
    assert kind in TYPES and (kind == "object" or not root)
    if "enum" in node:
        assert kind == "string" and node["enum"]
        assert all(isinstance(v, str) and v for v in node["enum"]) and len(set(node["enum"])) == len(node["enum"])
    if kind == "array":
        check_node(node["items"])
    else:
        assert "items" not in node
    if "properties" in node:
        assert kind == "object" and node["properties"]
        for child in node["properties"].values():
            check_node(child)
    if "required" in node:
        assert set(node["required"]) <= set(node.get("properties", ())) and node["required"]
        assert len(set(node["required"])) == len(node["required"])
    if "format" in node:
        assert kind == "string" and node["format"] in ("date-time", "enum")
    for key in COUNTS & set(node):
        assert type(node[key]) is int and node[key] >= 0
    for key in {"minimum", "maximum"} & set(node):
        assert type(node[key]) in (int, float)
    assert node.get("nullable", True) is True
    assert isinstance(node.get("description", ""), str) and isinstance(node.get("title", ""), str)
    assert isinstance(node.get("pattern", ""), str)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(roots)
def test_any_schema_gives_only_what_gemini_accepts(schema: dict) -> None:
    out = sanitize_schema(schema, TABLE)
    check_node(out, root=True)
    json.dumps(out)


# --- LiteLLM leaves the output alone ------------------------------------------------------------

@pytest.fixture(scope="module")
def litellm_gemini():
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    from litellm.llms.vertex_ai.gemini.vertex_and_google_ai_studio_gemini import VertexGeminiConfig
    return VertexGeminiConfig()


def through_litellm(config, tools: list[dict]) -> list[dict]:
    """The function declarations LiteLLM builds from ``tools`` (it changes them in place)."""
    mapped = config._map_function(tools, optional_params={})
    return [d for t in mapped for d in t.get("function_declarations", [])]


RICH_TOOL = {"name": "rich", "description": "every rule at once", "input_schema": {
    "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "additionalProperties": False,
    "properties": {**{name: schema for name, (schema, _) in KEYWORD_CASES.items()},
                   "ref": {"$ref": "#/$defs/Node"}},
    "required": ["formats", "ref"],
    "$defs": {"Node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/Node"}}}}}}


def request_tools() -> list[dict]:
    tools = [RICH_TOOL, {"type": "bash_20250124", "name": "bash"},
             {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool", "max_characters": 5000},
             {"type": "computer_20251124", "name": "computer", "display_width_px": 1280, "display_height_px": 800},
             {"type": "memory_20250818", "name": "memory"}]
    if FIXTURES.is_dir():
        tools += json.loads((FIXTURES / "01-hello-request.json").read_text())["tools"]
    return tools


def test_litellm_keeps_every_declaration_unchanged(litellm_gemini) -> None:
    plan = plan_tools(request_tools(), {"type": "auto"}, TABLE)
    sent = copy.deepcopy(plan.tools)
    declarations = through_litellm(litellm_gemini, sent)
    assert declarations == [t["function"] for t in plan.tools]
    # In place too: the cached declarations LiteLLM is handed stay as they were.
    snapshot = copy.deepcopy(plan.tools)
    through_litellm(litellm_gemini, plan.tools)
    assert plan.tools == snapshot


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(roots)
def test_litellm_keeps_any_sanitized_schema(litellm_gemini, schema: dict) -> None:
    out = sanitize_schema(schema, TABLE)
    tool = {"type": "function", "function": {"name": "f", "parameters": copy.deepcopy(out)}}
    assert through_litellm(litellm_gemini, [tool]) == [{"name": "f", "parameters": out}]


def test_litellm_takes_the_search_tool(litellm_gemini) -> None:
    plan = plan_tools([{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}], None, TABLE)
    assert litellm_gemini._map_function(plan.tools, optional_params={}) == [{"googleSearch": {}}]


# --- Claude Code's real tools -------------------------------------------------------------------

def fixture_tools() -> list[tuple[str, dict]]:
    if not FIXTURES.is_dir():
        return []
    found = []
    for path in sorted(FIXTURES.glob("*-request*.json")):
        data = json.loads(path.read_text())
        for request in data if isinstance(data, list) else [data]:
            found += [(f"{path.name}:{t['name']}", t) for t in request.get("tools", [])]
    return found


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="no /work/shared/fixtures/claude-code (Claude Code captures)")
def test_every_claude_code_tool_converts() -> None:
    tools = fixture_tools()
    assert len(tools) > 24
    for where, tool in tools:
        plan = plan_tools([tool], None, TABLE)
        assert plan.left_out == () and plan.aliases == {}, where
        function = plan.tools[0]["function"]
        assert function["name"] == tool["name"] and function["description"] == tool["description"], where
        check_node(function["parameters"], root=True)
        assert set(function["parameters"].get("properties", ())) == set(tool["input_schema"].get("properties", ()))


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="no /work/shared/fixtures/claude-code (Claude Code captures)")
def test_claude_code_constraints_are_described() -> None:
    tools = {t["name"]: t for _, t in fixture_tools()}
    params = {name: plan_tools([t], None, TABLE).tools[0]["function"]["parameters"] for name, t in tools.items()}
    read_limit = params["Read"]["properties"]["limit"]
    assert read_limit["type"] == "integer" and read_limit["description"].endswith(note("exclusiveMinimum", "0"))
    status = params["TaskUpdate"]["properties"]["status"]
    assert status["type"] == "string" and status["enum"][-1] == "deleted"
    assert params["WebFetch"]["properties"]["url"]["description"].endswith(note("format", '"uri"'))


# --- tools and tool_choice ----------------------------------------------------------------------

WEATHER = {"name": "get_weather", "description": "Weather for a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
WEATHER_OUT = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def test_custom_tool_and_dropped_fields() -> None:
    tool = {**WEATHER, "type": "custom", "cache_control": {"type": "ephemeral"}, "strict": True,
            "defer_loading": True, "eager_input_streaming": True, "input_examples": [{"city": "Paris"}],
            "allowed_callers": ["direct"]}
    # strict is not sent with the declaration: it sets the calling mode and the check of calls.
    assert plan_tools([tool], None, TABLE) == ToolPlan([WEATHER_OUT], None, False, (), calling_mode="VALIDATED",
                                                       strict={"get_weather": WEATHER["input_schema"]})


def test_no_tools() -> None:
    assert plan_tools([], None, TABLE) == ToolPlan(None, None, False, ())
    assert plan_tools(None, {"type": "auto"}, TABLE) == ToolPlan(None, None, False, ())


@pytest.mark.parametrize("choice, expected", [
    ({"type": "auto"}, "auto"),
    ({"type": "any"}, "required"),
    ({"type": "none"}, "none"),
    ({"type": "tool", "name": "get_weather"}, {"type": "function", "function": {"name": "get_weather"}}),
    (None, None),
])
def test_tool_choice(choice, expected) -> None:
    plan = plan_tools([WEATHER], choice, TABLE)
    assert plan.tools == [WEATHER_OUT] and plan.tool_choice == expected and plan.disable_parallel is False


def test_disable_parallel() -> None:
    plan = plan_tools([WEATHER], {"type": "any", "disable_parallel_tool_use": True}, TABLE)
    assert plan.tool_choice == "required" and plan.disable_parallel is True


@pytest.mark.parametrize("tools, choice, message", [
    ([WEATHER], {"type": "tool", "name": "nope"}, "tool_choice.name: 'nope' is not the name of a tool in tools"),
    ([], {"type": "tool", "name": "get_weather"}, "tool_choice.name: 'get_weather' is not the name of a tool"),
    ([WEATHER, {"type": "web_fetch_20250910", "name": "web_fetch"}], {"type": "tool", "name": "web_fetch"},
     "tool_choice.name: tool 'web_fetch' cannot be forced: it is not offered to Gemini"),
    ([WEATHER], {"type": "sometimes"}, "tool_choice.type: expected one of auto, any, none, tool, got 'sometimes'"),
    ([WEATHER, WEATHER], None, "tools: tool names must be unique; repeated: get_weather"),
    ([{**WEATHER, "name": "bad name"}], None, "tools.0.name: must match"),
    ([{"name": "x"}], None, "tools.0.input_schema: must be an object"),
    (["x"], None, "tools.0: a tool must be an object"),
])
def test_tool_errors(tools, choice, message) -> None:
    with pytest.raises(ToolError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        plan_tools(tools, choice, TABLE)
    assert issubclass(ToolError, ValueError)


def test_unknown_tool_type_follows_the_table() -> None:
    tool = {"type": "hologram_20990101", "name": "hologram"}
    assert plan_tools([WEATHER, tool], None, TABLE).left_out == ("hologram",)
    with pytest.raises(ToolError, match="tool type 'hologram_20990101' is not supported"):
        plan_tools([tool], None, TABLE.model_copy(update={"unknown_tool_type": "reject"}))


# --- server tools -------------------------------------------------------------------------------

SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}


def test_web_search_alone_becomes_google_search() -> None:
    fetch = {"type": "web_fetch_20250910", "name": "web_fetch"}
    plan = plan_tools([SEARCH, fetch], {"type": "tool", "name": "web_search"}, TABLE)
    assert plan == ToolPlan([{"googleSearch": {}}, {"urlContext": {}}], None, False, (),
                            grounding={"google_search": SEARCH, "url_context": fetch})


def test_web_search_next_to_functions_is_left_out() -> None:
    plan = plan_tools([WEATHER, SEARCH], {"type": "any"}, TABLE)
    assert plan == ToolPlan([WEATHER_OUT], "required", False, ("web_search",))


@pytest.mark.parametrize("tool", [
    {"type": "web_fetch_20260318", "name": "web_fetch"},
    {"type": "code_execution_20250825", "name": "code_execution"},
    {"type": "tool_search_tool_bm25", "name": "tool_search_tool_bm25"},
    {"type": "tool_search_tool_regex_20251119", "name": "tool_search_tool_regex"},
    {"type": "advisor_20260301", "name": "advisor", "model": "m"},
    {"type": "mcp_toolset", "mcp_server_name": "srv"},
])
def test_other_server_tools_are_left_out(tool) -> None:
    plan = plan_tools([WEATHER, tool], {"type": "auto"}, TABLE)
    assert plan == ToolPlan([WEATHER_OUT], "auto", False, (tool.get("name", tool["type"]),))


def test_only_left_out_tools_send_nothing() -> None:
    plan = plan_tools([{"type": "code_execution_20250825", "name": "code_execution"}], {"type": "any"}, TABLE)
    assert plan == ToolPlan(None, None, False, ("code_execution",))


# --- client tools -------------------------------------------------------------------------------

def client_function(tool: dict) -> dict:
    plan = plan_tools([tool], None, TABLE)
    assert plan.left_out == ()
    return plan.tools[0]["function"]


def test_bash_schema() -> None:
    bash = client_function({"type": "bash_20250124", "name": "bash", "cache_control": {"type": "ephemeral"}})
    assert bash["name"] == "bash"
    assert bash["parameters"] == {"type": "object", "properties": {
        "command": {"type": "string", "description": "The command to run. Required unless restart is true."},
        "restart": {"type": "boolean",
                    "description": "Set to true to restart the shell instead of running a command."}}}


@pytest.mark.parametrize("kind, name, undo", [
    ("text_editor_20241022", "str_replace_editor", True),
    ("text_editor_20250124", "str_replace_editor", True),
    ("text_editor_20250429", "str_replace_based_edit_tool", False),
    ("text_editor_20250728", "str_replace_based_edit_tool", False),
])
def test_text_editor_schemas(kind, name, undo) -> None:
    editor = client_function({"type": kind, "name": name})
    assert editor["name"] == name
    params = editor["parameters"]
    assert params["required"] == ["command", "path"]
    assert ("undo_edit" in params["properties"]["command"]["enum"]) is undo
    assert params["properties"]["view_range"] == {
        "type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2,
        "description": "view: [first, last] line numbers, 1-based; last may be -1 for the end of the file."}


def test_tool_fields_told_in_the_description() -> None:
    editor = client_function({"type": "text_editor_20250728", "name": "str_replace_based_edit_tool",
                              "max_characters": 10000})
    assert editor["description"].endswith(note("max_characters", "10000"))
    computer = client_function({"type": "computer_20250124", "name": "computer", "display_width_px": 1024,
                                "display_height_px": 768, "display_number": 1})
    assert computer["description"].endswith(
        f"{note('display_width_px', '1024')} {note('display_height_px', '768')} {note('display_number', '1')}")
    assert "zoom" in computer["parameters"]["properties"]["action"]["enum"]
    old = client_function({"type": "computer_20241022", "name": "computer", "display_width_px": 1024,
                           "display_height_px": 768})
    assert "scroll" not in old["parameters"]["properties"]["action"]["enum"]


def test_memory_schema() -> None:
    memory = client_function({"type": "memory_20250818", "name": "memory"})
    assert memory["parameters"]["properties"]["command"]["enum"] == [
        "view", "create", "str_replace", "insert", "delete", "rename"]
    assert memory["parameters"]["required"] == ["command"]


# --- names --------------------------------------------------------------------------------------

def named(name: str) -> dict:
    return {**WEATHER, "name": name}


def test_names_gemini_refuses_are_aliased_and_map_back() -> None:
    plan = plan_tools([named("1password"), named("-dash"), named("ok-name"), named("t_1password")],
                      {"type": "tool", "name": "1password"}, TABLE)
    long_alias = "t_1password_" + __import__("hashlib").sha256(b"1password").hexdigest()[:8]
    assert plan.aliases == {"1password": long_alias, "-dash": "t_-dash"}  # t_1password is taken
    assert [t["function"]["name"] for t in plan.tools] == [long_alias, "t_-dash", "ok-name", "t_1password"]
    assert plan.tool_choice == {"type": "function", "function": {"name": long_alias}}
    for name in ("1password", "-dash", "ok-name", "t_1password", "not_declared"):
        assert plan.to_anthropic(plan.to_gemini(name)) == name
    assert plan.to_gemini("ok-name") == "ok-name"


def test_aliases_depend_on_the_request_only() -> None:
    tools = [named("9lives"), named("xxxy")]
    first = plan_tools(tools, None, TABLE)
    second = plan_tools(copy.deepcopy(tools), None, TABLE, DeclarationCache(4))
    assert first.aliases == second.aliases == {"9lives": "t_9lives"}


def test_long_name_alias_fits() -> None:
    name = "7" + "a" * 63
    plan = plan_tools([named(name)], None, TABLE)
    alias = plan.aliases[name]
    assert len(alias) == 64 and alias.startswith("t_7aaa") and plan.to_anthropic(alias) == name


def test_aliased_tool_does_not_change_the_cached_declaration() -> None:
    cache = DeclarationCache(8)
    aliased = plan_tools([named("1x")], None, TABLE, cache)
    plain = plan_tools([named("1x")], None, TABLE, cache)
    assert aliased.tools[0]["function"]["name"] == plain.tools[0]["function"]["name"] == "t_1x"
    assert cache._entries[("1x", WEATHER["description"], None)][1].tool["function"]["name"] == "1x"


# --- cache --------------------------------------------------------------------------------------

def test_cache_hit_returns_the_same_declaration() -> None:
    cache = DeclarationCache(8)
    first = plan_tools([WEATHER], None, TABLE, cache)
    again = plan_tools([copy.deepcopy(WEATHER) | {"cache_control": {"type": "ephemeral"}}], None, TABLE, cache)
    assert again.tools[0] is first.tools[0] and len(cache) == 1


def test_cache_checks_the_whole_tool() -> None:
    cache = DeclarationCache(8)
    first = plan_tools([WEATHER], None, TABLE, cache)
    changed = copy.deepcopy(WEATHER)
    changed["input_schema"]["properties"]["city"]["type"] = "integer"
    second = plan_tools([changed], None, TABLE, cache)
    assert second.tools[0] is not first.tools[0]
    assert second.tools[0]["function"]["parameters"]["properties"]["city"] == {"type": "integer"}


def test_cache_is_not_fooled_by_later_changes_to_the_request() -> None:
    cache = DeclarationCache(8)
    tool = copy.deepcopy(WEATHER)
    first = plan_tools([tool], None, TABLE, cache)
    tool["input_schema"]["properties"]["city"]["type"] = "integer"
    assert plan_tools([tool], None, TABLE, cache).tools[0] is not first.tools[0]


def test_cache_is_bounded_lru() -> None:
    cache = DeclarationCache(2)
    a, b, c = named("a"), named("b"), named("c")
    first_a = plan_tools([a], None, TABLE, cache).tools[0]
    plan_tools([b], None, TABLE, cache)
    assert plan_tools([a], None, TABLE, cache).tools[0] is first_a  # a is now the most recent
    plan_tools([c], None, TABLE, cache)  # evicts b
    assert len(cache) == 2
    assert plan_tools([a], None, TABLE, cache).tools[0] is first_a
    assert {k[0] for k in cache._entries} == {"a", "c"}
    with pytest.raises(ValueError):
        DeclarationCache(0)


def test_the_same_tools_give_the_same_plan() -> None:
    """A whole plan is kept under its tools' (and tool_choice's, offered names') bytes: the next turn's
    equal tools get the very plan, equal to one made without a cache; anything else another."""
    cache = DeclarationCache(8)
    tools = [WEATHER, named("9lives"), {**named("c"), "strict": True}]
    choice = {"type": "tool", "name": "get_weather"}
    for options in ((None, None), (choice, None), (None, frozenset({"get_weather"}))):
        first = plan_tools(copy.deepcopy(tools), *options[:1], TABLE, cache, offered=options[1])
        again = plan_tools(copy.deepcopy(tools), *options[:1], TABLE, cache, offered=options[1])
        assert again is first and first == plan_tools(copy.deepcopy(tools), *options[:1], TABLE, offered=options[1])
    assert len(cache._plans) == 3
    as_tuple = plan_tools(tuple(copy.deepcopy(tools)), None, TABLE, cache)  # type: ignore[arg-type]
    assert as_tuple is not first and len(cache._plans) == 4


def test_a_kept_plan_holds_its_own_copy_of_the_request() -> None:
    cache = DeclarationCache(8)
    tool = {**copy.deepcopy(WEATHER), "strict": True}
    plan_tools([tool], None, TABLE, cache)
    tool["input_schema"]["properties"]["city"]["type"] = "integer"   # the request's dict, changed afterwards
    again = plan_tools([{**copy.deepcopy(WEATHER), "strict": True}], None, TABLE, cache)
    assert again.strict == {"get_weather": WEATHER["input_schema"]}


def test_table_loads_and_rejects_typos(tmp_path: Path) -> None:
    from translator.spec import SpecError
    spec_dir = Path(__file__).resolve().parent.parent / "spec"
    text = (spec_dir / "tools.yaml").read_text()
    (tmp_path / "tools.yaml").write_text(text.replace("    exclusiveMinimum: to_description",
                                                      "    exclusiveMinimum: to_desription"))
    with pytest.raises(SpecError, match="schema_policy.keywords.exclusiveMinimum"):
        load_table("tools", tmp_path)
