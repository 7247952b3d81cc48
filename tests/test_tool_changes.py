"""Mid-conversation tool changes and system messages, in the pure translator (no server, no LiteLLM).

tool_addition / tool_removal in role:"system" messages change the function declarations Gemini is
offered; clear_at and a system message's output_config shape the turn. Shapes are the SDK's
(anthropic 2.17 BetaSystemMessageParam) and Claude Code 2.1.332's (its bundled code builds
``{"role": "system", "content": [{"type": "tool_addition", "tool": {"type": "tool_definition",
"definition": ...}}]}`` and ``{"role": "system", "content": [], "output_config": ...}``).
"""
from __future__ import annotations

import json

import pytest

import translator
from translator import AnthropicError, translate_count_tokens, translate_request

SPEC = translator.load_spec()
MODEL = "gemini-3.8-flash"


def tool(name: str, **extra) -> dict:
    return {"name": name, "description": f"the {name} tool",
            "input_schema": {"type": "object", "properties": {"x": {"type": "string"}}}, **extra}


def system(*blocks, **fields) -> dict:
    return {"role": "system", "content": list(blocks), **fields}


def add(name: str) -> dict:
    return {"type": "tool_addition", "tool": {"type": "tool_reference", "name": name}}


def define(definition: dict) -> dict:
    return {"type": "tool_addition", "tool": {"type": "tool_definition", "definition": definition}}


def remove(name: str) -> dict:
    return {"type": "tool_removal", "tool": {"type": "tool_reference", "name": name}}


def call(messages, tools=None, **body):
    request = {"model": MODEL, "max_tokens": 100, "messages": messages, **body}
    if tools is not None:
        request["tools"] = tools
    return translate_request(request, SPEC)


def offered(upstream) -> list[str]:
    return [t["function"]["name"] for t in upstream.kwargs.get("tools") or ()]


def refused(messages, tools=None, **body) -> str:
    with pytest.raises(AnthropicError) as caught:
        call(messages, tools, **body)
    assert caught.value.status == 400 and caught.value.type == "invalid_request_error"
    return caught.value.message


USER = {"role": "user", "content": "go"}


# --- what Gemini is offered ------------------------------------------------------------------------

def test_no_changes_offers_the_request_tools_deferred_ones_included():
    upstream = call([USER], [tool("Bash"), tool("late", defer_loading=True)])
    assert offered(upstream) == ["Bash", "late"]


def test_removal_then_addition_by_reference_in_order():
    tools = [tool("Bash"), tool("Read")]
    assert offered(call([USER, system(remove("Read"))], tools)) == ["Bash"]
    assert offered(call([USER, system(remove("Read")), system(add("Read"))], tools)) == ["Bash", "Read"]
    assert offered(call([system(add("Read")), USER, system(remove("Read"))], tools)) == ["Bash"]


def test_inline_definition_is_declared_with_its_schema():
    upstream = call([USER, system(define(tool("mcp__late__echo")))], [tool("Bash")])
    declared = {t["function"]["name"]: t["function"] for t in upstream.kwargs["tools"]}
    assert list(declared) == ["Bash", "mcp__late__echo"]
    assert declared["mcp__late__echo"]["parameters"]["properties"] == {"x": {"type": "string"}}
    assert declared["mcp__late__echo"]["description"] == "the mcp__late__echo tool"


def test_inline_definition_without_any_request_tools():
    assert offered(call([USER, system(define(tool("echo")))])) == ["echo"]


def test_removing_every_tool_sends_no_tools_and_no_tool_choice():
    tools = [tool("Bash"), tool("Read")]
    upstream = call([USER, system(remove("Bash"), remove("Read"))], tools, tool_choice={"type": "auto"})
    assert "tools" not in upstream.kwargs and "tool_choice" not in upstream.kwargs


def test_history_calls_of_a_removed_tool_stay_paired():
    """A removed tool's past functionCall / functionResponse pair is still sent, under its Gemini name
    (an alias here: '1st' is not a name Gemini accepts), while the tool is no longer declared."""
    messages = [USER,
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "1st", "input": {"x": "a"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "done"}]},
                system(remove("1st")),
                {"role": "user", "content": "next"}]
    upstream = call(messages, [tool("1st"), tool("Bash")])
    assert offered(upstream) == ["Bash"]
    sent = upstream.kwargs["messages"]
    assert sent[1]["tool_calls"][0]["function"]["name"] == "t_1st"
    assert sent[2] == {"role": "tool", "tool_call_id": "toolu_1", "content": json.dumps({"content": "done"})}


def test_a_tool_choice_naming_a_removed_tool_is_refused():
    message = refused([USER, system(remove("Read"))], [tool("Bash"), tool("Read")],
                      tool_choice={"type": "tool", "name": "Read"})
    assert "tool_choice.name" in message and "Read" in message


def test_count_tokens_counts_the_changed_tools():
    body = {"model": MODEL, "messages": [USER, system(define(tool("echo")), remove("Bash"))], "tools": [tool("Bash")]}
    assert [t["function"]["name"] for t in translate_count_tokens(body, SPEC).kwargs["tools"]] == ["echo"]


def test_prefixed_names_keep_distinct_gemini_names():
    """Names that Gemini refuses get the alias prefix; a definition already named like an alias does
    not collide with it, and calls map back to the client's names."""
    upstream = call([USER, system(define(tool("t_2nd")), define(tool("2nd")))], [tool("Bash")])
    names = offered(upstream)
    assert names[:2] == ["Bash", "t_2nd"] and names[2].startswith("t_2nd_") and len(set(names)) == 3
    assert upstream.tools.to_anthropic(names[2]) == "2nd" and upstream.tools.to_anthropic("t_2nd") == "t_2nd"


def test_identical_redefinition_and_redefinition_after_removal():
    first, second = tool("echo"), {**tool("echo"), "description": "v2"}
    assert offered(call([USER, system(define(first)), system(define(first))])) == ["echo"]
    upstream = call([USER, system(define(first)), system(remove("echo")), system(define(second))])
    assert upstream.kwargs["tools"][0]["function"]["description"] == "v2"


# --- Anthropic's 400s, in the words Claude Code matches ---------------------------------------------

def test_unknown_reference_names_tool_addition_and_the_reference():
    message = refused([USER, system(add("nope"))], [tool("Bash")])
    assert message.startswith("messages.1.content.0.tool.name: tool_addition references 'nope'")
    assert "references" in message  # Claude Code: "unknown_tool_reference"
    assert "tool_removal references 'gone'" in refused([USER, system(remove("gone"))], [tool("Bash")])


@pytest.mark.parametrize("reference", [
    {"type": "mcp_tool_reference", "server_name": "s", "name": "echo"},
    {"type": "mcp_toolset_reference", "server_name": "s"},
])
def test_mcp_references_are_refused(reference):
    message = refused([USER, system({"type": "tool_addition", "tool": reference})], [tool("Bash")])
    assert reference["type"] in message and "tool_addition" in message and "not available on this platform" in message


def test_name_clash_with_a_declared_tool():
    message = refused([USER, system(define({**tool("Bash"), "description": "another"}))], [tool("Bash")])
    assert "is already used by a" in message and "tool_addition" in message and ".tool.definition.name" in message


def test_inline_definition_errors_are_told_where_the_definition_sits():
    broken = {"name": "echo", "input_schema": {"type": "string"}}
    message = refused([USER, system(define(broken))], [tool("Bash")])
    assert message.startswith("messages.1.content.0.tool.definition.input_schema.type")
    assert "must match" in refused([USER, system(define(tool("no spaces allowed")))])


def test_tool_changes_only_in_system_messages():
    message = refused([{"role": "user", "content": [add("Bash")]}], [tool("Bash")])
    assert "'tool_addition' block is not allowed in a 'user' message" in message


def test_ten_thousand_additions_get_a_clear_400():
    message = refused([USER, system(*[add("Bash")] * 10_000)], [tool("Bash")])
    assert "limits.tool_changes" in message and str(SPEC.tools.limits.tool_changes) in message


def test_inline_definitions_count_against_the_tools_limit():
    many = [define(tool(f"t{i}")) for i in range(SPEC.tools.limits.tools + 1)]
    assert "limits.tools" in refused([USER, system(*many)])


# --- system messages ---------------------------------------------------------------------------------

def user_texts(upstream) -> str:
    return json.dumps(upstream.kwargs["messages"])


def test_clear_at_shows_the_message_only_for_the_user_turn_it_follows():
    note = system({"type": "text", "text": "REMINDER"}, clear_at="next_user_message")
    answer = {"role": "assistant", "content": "ok"}
    assert "REMINDER" in user_texts(call([USER, note]))
    assert "REMINDER" in user_texts(call([USER, note, answer, system({"type": "text", "text": "other"})]))
    later = call([USER, note, answer, {"role": "user", "content": "next"}])
    assert "REMINDER" not in user_texts(later)
    kept = system({"type": "text", "text": "KEPT"}, clear_at="never")
    assert "KEPT" in user_texts(call([USER, kept, answer, {"role": "user", "content": "next"}]))


@pytest.mark.parametrize(("messages", "level"), [
    # the system message precedes the turn being generated: its effort wins over the top-level high
    ([USER, system(output_config={"effort": "low"})], "low"),
    ([system(output_config={"effort": "low"}), USER], "low"),
    # ... through the turn's tool calls
    ([USER, system(output_config={"effort": "medium"}),
      {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}}]},
      {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]}], "medium"),
    # it applied to an earlier turn: the top-level effort is back
    ([USER, system(output_config={"effort": "low"}), {"role": "assistant", "content": "a"},
      {"role": "user", "content": "again"}], "high"),
    # an empty output_config on a message with content leaves the top-level one
    ([USER, system({"type": "text", "text": "note"}, output_config={})], "high"),
])
def test_system_message_effort_applies_to_the_turn_it_precedes(messages, level):
    upstream = call(messages, [tool("Bash")], thinking={"type": "adaptive"}, output_config={"effort": "high"})
    assert upstream.kwargs["thinkingConfig"]["thinkingLevel"] == level


def test_system_message_effort_moves_a_thinking_budget_too():
    low = call([USER, system(output_config={"effort": "low"})], model="gemini-2.5-pro",
               thinking={"type": "adaptive"}, output_config={"effort": "high"})
    high = call([USER], model="gemini-2.5-pro", thinking={"type": "adaptive"}, output_config={"effort": "high"})
    assert low.kwargs["thinkingConfig"]["thinkingBudget"] < high.kwargs["thinkingConfig"]["thinkingBudget"]


@pytest.mark.parametrize(("message", "fragment"), [
    (system(), "messages.1: a system message needs content or output_config fields"),
    (system(output_config={}), "messages.1: a system message needs content or output_config fields"),
    (system({"type": "text", "text": "x"}, output_config={"format": {"type": "json_schema", "schema": {}}}),
     "messages.1.output_config.format: Extra inputs are not permitted"),
    ({"role": "user", "content": "x", "clear_at": "next_user_message"},
     'messages.1.clear_at: only permitted on role: "system" messages'),
    ({"role": "assistant", "content": "x", "output_config": {"effort": "low"}},
     'messages.1.output_config: only permitted on role: "system" messages'),
    (system({"type": "text", "text": "x"}, clear_at="tomorrow"), "messages.1.clear_at"),
])
def test_system_message_field_errors(message, fragment):
    assert fragment in refused([USER, message])
