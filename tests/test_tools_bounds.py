"""Size bounds of one request (tools.yaml and content.yaml ``limits``), and linear schema walks.

Each bound: a request just under it is translated, one just over gets a 400 that names the bound
and where it was hit. Requests that used to take minutes (a 200,000-value enum, 50,000 required
names, thousands of anyOf branches, anyOf fan-out) are refused at once.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import translator
from bench.claude_code_request import claude_code_request
from translator import AnthropicError, DeclarationCache, SpecError, load_spec
from translator.spec import DEFAULT_SPEC_DIR, load_table
from translator.tables import ToolsTable
from translator.tools import ToolError, plan_tools, sanitize_schema

SPEC = load_spec()
TABLE = load_table("tools")
LIMITS = dict(TABLE.limits)
CONTENT = SPEC.content.limits
MODEL = "claude-sonnet-5"


def body(tools=None, messages=None, **fields) -> dict:
    out = {"model": MODEL, "max_tokens": 64, "messages": messages or [{"role": "user", "content": "hi"}], **fields}
    if tools is not None:
        out["tools"] = tools
    return out


def tool(schema: dict, name: str = "t") -> dict:
    return {"name": name, "description": "A tool.", "input_schema": schema}


def obj(properties: dict, **keywords) -> dict:
    return {"type": "object", "properties": properties, **keywords}


def refused(tools: list, table=TABLE) -> str:
    with pytest.raises(ToolError) as caught:
        plan_tools(tools, None, table)
    return str(caught.value)


def with_limits(**limits) -> ToolsTable:
    return TABLE.model_copy(update={"limits": TABLE.limits.model_copy(update=limits)})


# --- per-node bounds ------------------------------------------------------------------------------

def enum(n: int) -> dict:
    return {"type": "string", "enum": [f"v{i}" for i in range(n)]}


def test_enum_values() -> None:
    limit = LIMITS["enum_values"]
    out = plan_tools([tool(obj({"x": enum(limit)}))], None, TABLE).tools[0]["function"]["parameters"]
    assert len(out["properties"]["x"]["enum"]) == limit
    tools = [tool(obj({})), tool(obj({}), "b"), tool(obj({}), "c"), tool(obj({"x": enum(200_000)}), "d")]
    assert refused(tools) == (f"tools.3.input_schema.properties.x.enum: 200000 values, more than the {limit} "
                              "allowed (tools.yaml limits.enum_values)")


def test_enum_bound_holds_for_referenced_enums() -> None:
    limit = LIMITS["enum_values"]
    schema = {"$defs": {"big": enum(limit + 1)}, "type": "object", "properties": {"x": {"$ref": "#/$defs/big"}}}
    assert "properties.x.enum:" in refused([tool(schema)])  # where the reference was expanded


def test_properties() -> None:
    limit = LIMITS["properties"]
    props = {f"p{i}": {"type": "string"} for i in range(limit)}
    out = sanitize_schema(obj(props), TABLE)
    assert len(out["properties"]) == limit
    message = refused([tool(obj({"inner": obj({**props, "one_more": {}})}))])
    assert message == (f"tools.0.input_schema.properties.inner.properties: {limit + 1} properties, more than the "
                       f"{limit} allowed (tools.yaml limits.properties)")


def test_required() -> None:
    limit = LIMITS["required"]
    names = [f"p{i}" for i in range(limit)]
    out = sanitize_schema(obj({n: {"type": "string"} for n in names}, required=names), TABLE)
    assert out["required"] == names
    message = refused([tool(obj({"a": {"type": "string"}}, required=[f"p{i}" for i in range(50_000)]))])
    assert message == (f"tools.0.input_schema.required: 50000 names, more than the {limit} allowed "
                       "(tools.yaml limits.required)")


@pytest.mark.parametrize("keyword", ["anyOf", "oneOf", "allOf"])
def test_alternatives(keyword: str) -> None:
    limit = LIMITS["alternatives"]
    branches = [{"type": "string", "enum": [f"v{i}"]} for i in range(limit)]
    if keyword == "allOf":
        branches = [{"type": "string", "minLength": i} for i in range(limit)]
    out = sanitize_schema(obj({"x": {keyword: branches}}), TABLE)
    assert out["properties"]["x"]["type"] == "string"
    message = refused([tool(obj({"x": {keyword: branches * 5}}))])
    assert message == (f"tools.0.input_schema.properties.x.{keyword}: {limit * 5} alternatives, more than the "
                       f"{limit} allowed (tools.yaml limits.alternatives)")


def test_tools() -> None:
    limit = LIMITS["tools"]
    tools = [tool(obj({"a": {"type": "string"}}), f"t{i}") for i in range(limit)]
    assert len(plan_tools(tools, None, TABLE).tools) == limit
    assert refused(tools + [tool(obj({}), "extra")]) == (
        f"tools: {limit + 1} tools, more than the {limit} allowed (tools.yaml limits.tools)")


# --- per-request budget of the schema conversion ----------------------------------------------------

def wide(n: int) -> dict:
    """A schema of 1 + n nodes."""
    return obj({f"p{i}": {"type": "string"} for i in range(n)})


def test_schema_nodes_count_every_node_of_every_tool() -> None:
    table = with_limits(schema_nodes=100)
    plan_tools([tool(wide(49)), tool(wide(49), "b")], None, table)  # 2 × (1 + 49) = 100
    message = refused([tool(wide(49)), tool(wide(50), "b")], table)
    assert message.startswith("tools.1.input_schema.properties.p49: ")
    assert "more than the 100 schema nodes allowed (tools.yaml limits.schema_nodes" in message


def test_schema_size_counts_what_is_read() -> None:
    schema = obj({"x": {"type": "string", "description": "d" * 10_000}})
    table = with_limits(schema_size=10_100)
    plan_tools([tool(schema)], None, table)
    message = refused([tool(schema), tool(schema, "b")], table)
    assert message.startswith("tools.1.input_schema")
    assert "more than the 10100 characters of schema allowed (tools.yaml limits.schema_size" in message


@pytest.mark.timeout(30)  # without the node bound it took minutes (2^20 nodes)
def test_anyof_fan_out_is_refused() -> None:
    """Each level's keywords are merged into both alternatives: 2^levels nodes from a schema of 1 KB."""
    schema: dict = {"type": "string"}
    for _ in range(20):
        schema = {"anyOf": [{"title": "a"}, {"title": "b"}], "type": "object", "properties": {"a": schema}}
    message = refused([tool(obj({"x": schema}))])
    assert message.startswith("tools.0.input_schema.properties.x.anyOf.")
    assert "schema nodes allowed (tools.yaml limits.schema_nodes" in message


def test_ref_amplification_is_refused() -> None:
    """A 1 MB description inlined by 200 references would be 200 MB for Gemini."""
    schema = {"type": "object", "$defs": {"d": {"type": "string", "description": "x" * 1_000_000}},
              "properties": {f"p{i}": {"$ref": "#/$defs/d"} for i in range(200)}}
    assert "(tools.yaml limits.schema_size" in refused([tool(schema)])


def test_cached_tools_are_charged_as_if_converted() -> None:
    """The answer must not depend on what the declaration cache holds."""
    table, cache = with_limits(schema_nodes=100), DeclarationCache(8)
    first, second = tool(wide(59)), tool(wide(40), "b")
    plan_tools([first], None, table, cache)
    plan_tools([second], None, table, cache)
    assert len(cache) == 2
    with pytest.raises(ToolError, match="limits.schema_nodes"):
        plan_tools([first, second], None, table, cache)  # 60 + 41 nodes: both cached, still counted
    plan_tools([first], None, table, cache)


def test_claude_code_tools_are_far_under_the_budget() -> None:
    """A tenth of each limit still takes Claude Code's 24 tools (about 65 KB of schemas)."""
    tenth = with_limits(**{k: v // 10 for k, v in LIMITS.items()})
    tools = claude_code_request()["tools"]
    assert len(plan_tools(tools, None, tenth).tools) == len(tools)


# --- messages and content blocks ------------------------------------------------------------------

def turns(n: int) -> list[dict]:
    return [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i}"} for i in range(n)]


def message_of(call) -> str:
    with pytest.raises(AnthropicError) as caught:
        call()
    assert caught.value.status == 400 and caught.value.type == "invalid_request_error"
    return caught.value.message


def test_messages() -> None:
    limit = CONTENT.messages
    assert len(translator.translate_request(body(messages=turns(limit - 1)), SPEC).kwargs["messages"]) == limit - 1
    message = message_of(lambda: translator.translate_count_tokens(
        {"model": MODEL, "messages": turns(limit + 1)}, SPEC))
    assert message == f"messages: {limit + 1} messages, more than the {limit} allowed (content.yaml limits.messages)."


def test_content_blocks_count_tool_result_contents() -> None:
    limit = CONTENT.content_blocks
    text = {"type": "text", "text": "x"}
    calls = [{"type": "tool_use", "id": f"toolu_{i}", "name": "t", "input": {}} for i in range(2)]
    results = [{"type": "tool_result", "tool_use_id": f"toolu_{i}", "content": [text] * (limit // 2 - 3)}
               for i in range(2)]
    messages = [{"role": "user", "content": "go"}, {"role": "assistant", "content": calls},
                {"role": "user", "content": results}]  # 1 + 2 + 2 × (1 + limit / 2 - 3) = limit - 1
    translator.translate_request(body([tool(obj({}))], messages), SPEC)
    results[1]["content"] += [text] * 4
    message = message_of(lambda: translator.translate_request(body([tool(obj({}))], messages), SPEC))
    assert message == (f"messages.2.content.1: more than the {limit} content blocks allowed in one request, "
                       "tool_result contents included (content.yaml limits.content_blocks).")


def test_string_contents_are_blocks_and_limits_can_be_overridden() -> None:
    overrides = {"messages": 10, "content_blocks": 5}
    translator.translate_request(body(messages=turns(5)), SPEC, limits=overrides)
    assert message_of(lambda: translator.translate_request(body(messages=turns(6)), SPEC, limits=overrides)) \
        .startswith("messages.5.content: more than the 5 content blocks")


def test_counts_are_checked_before_validation() -> None:
    """A million messages would take seconds to validate; the count is refused first (the refusal is the
    count's, not the first invalid message's)."""
    junk = [{"role": "robot"}] * 1_000_000
    assert "limits.messages" in message_of(lambda: translator.translate_request(body(messages=junk), SPEC))
    assert "limits.tools" in message_of(lambda: translator.translate_request(body([{}] * 1_000_000), SPEC))


# --- the tables ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "old", "new", "place"), [
    ("tools", "  enum_values: 10000", "  enum_values: lots", "limits.enum_values"),
    ("tools", "  schema_size: 1000000\n", "", "limits"),
    ("content", "  content_blocks: 50000", "  content_blocks: 0", "limits.content_blocks"),
])
def test_the_limits_are_checked_when_the_tables_load(tmp_path: Path, name: str, old: str, new: str,
                                                     place: str) -> None:
    spec_dir = tmp_path / "spec"
    shutil.copytree(DEFAULT_SPEC_DIR, spec_dir)
    path = spec_dir / f"{name}.yaml"
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))
    with pytest.raises(SpecError, match=f"{name}.yaml: at {place}"):
        load_spec(spec_dir)


# --- linear walks, same results -----------------------------------------------------------------------

def test_unhashable_required_names_are_ignored() -> None:
    out = sanitize_schema(obj({"a": {"type": "string"}}, required=[{}, ["a"], "a", 1]), TABLE)
    assert out["required"] == ["a"]  # it was a TypeError (a 500)


@pytest.mark.timeout(30)  # the list scans this guards against took minutes at these bounds
def test_large_inputs_translate_in_linear_time() -> None:
    """At the per-node bounds conversion stays fast: no list scans are left (a guard; what the old scans
    made slow is over the bounds now, see the tests above)."""
    both = {"allOf": [enum(LIMITS["enum_values"]), enum(LIMITS["enum_values"])]}  # intersected, then de-duplicated
    out = sanitize_schema(obj({"x": both, "y": both, "z": both, "w": {"anyOf": [
        {"const": f"c{i}"} for i in range(LIMITS["alternatives"])]}}), TABLE)
    assert len(out["properties"]["z"]["enum"]) == LIMITS["enum_values"]
    assert len(out["properties"]["w"]["enum"]) == LIMITS["alternatives"]
    many = [tool(obj({}), f"t{i}") for i in range(LIMITS["tools"] - 1)] + [tool(obj({}), "t0")]
    assert "repeated: t0" in refused(many)
    plan = plan_tools([tool(obj({}), f"{i}x") for i in range(LIMITS["tools"])], None, TABLE)
    assert all(plan.to_anthropic(plan.to_gemini(f"{i}x")) == f"{i}x" for i in range(LIMITS["tools"]))
