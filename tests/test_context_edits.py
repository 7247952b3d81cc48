"""context_management edits, pure: each edit against spec/context_management.yaml, compaction of the
history, hostile edits refused with a 400 naming the field, and the report's events."""
from __future__ import annotations

import json
import pytest

import translator
from tests.conftest import claude_code_fixtures
from translator import edits

SPEC = translator.load_spec()
TABLE = SPEC.context


def tool_round(n: int, output: str = "x" * 400, name: str = "Bash", thinking: bool = False) -> list[dict]:
    call = [{"type": "thinking", "thinking": f"think {n}", "signature": "sig"}] if thinking else []
    return [{"role": "assistant", "content": [*call, {"type": "tool_use", "id": f"toolu_{n}", "name": name,
                                                       "input": {"command": f"echo {n}"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"toolu_{n}", "content": output}]}]


def session(rounds: int, **kwargs) -> list[dict]:
    messages = [{"role": "user", "content": "start"}]
    for n in range(rounds):
        messages += tool_round(n, **kwargs)
    return messages


def body(messages: list[dict], *edits: dict) -> dict:
    return {"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": messages,
            "context_management": {"edits": list(edits)}}


def results(messages: list[dict]) -> list:
    return [b["content"] for m in messages if m["role"] == "user" and isinstance(m["content"], list)
            for b in m["content"] if b["type"] == "tool_result"]


def test_every_edit_type_has_a_rule():
    assert set(TABLE.edits) == set(edits.APPLY) | {"compact_20260112"}


# --- clear_tool_uses_20250919 ----------------------------------------------------------------------

def test_clear_tool_uses_keeps_the_latest_and_reports():
    request = body(session(6), {"type": "clear_tool_uses_20250919", "trigger": {"type": "input_tokens", "value": 100},
                                "keep": {"type": "tool_uses", "value": 2}})
    plan = translator.plan_edits(request, TABLE)
    assert results(plan.body["messages"]) == [TABLE.placeholder] * 4 + ["x" * 400] * 2
    [applied] = plan.report.applied_edits
    assert applied["type"] == "clear_tool_uses_20250919" and applied["cleared_tool_uses"] == 4
    assert applied["cleared_input_tokens"] == plan.original_tokens - plan.tokens > 4 * 90
    assert request["messages"] == session(6), "the client's request is not changed"


def test_clear_tool_uses_defaults_need_100k_tokens():
    small = translator.plan_edits(body(session(6), {"type": "clear_tool_uses_20250919"}), TABLE)
    assert small.report.applied_edits == () and small.report.context_management() == {"applied_edits": []}
    big = translator.plan_edits(body(session(6, output="y" * 100_000), {"type": "clear_tool_uses_20250919"}), TABLE)
    assert results(big.body["messages"]) == [TABLE.placeholder] * 3 + ["y" * 100_000] * 3  # keep: 3


def test_clear_tool_uses_trigger_in_tool_uses():
    edit = {"type": "clear_tool_uses_20250919", "trigger": {"type": "tool_uses", "value": 5},
            "keep": {"type": "tool_uses", "value": 1}}
    assert translator.plan_edits(body(session(5), edit), TABLE).report.applied_edits == ()
    assert translator.plan_edits(body(session(6), edit), TABLE).report.applied_edits[0]["cleared_tool_uses"] == 5


def test_exclude_tools_and_clear_tool_inputs():
    messages = [{"role": "user", "content": "go"}, *tool_round(0, name="Read"), *tool_round(1), *tool_round(2),
                *tool_round(3)]
    edit = {"type": "clear_tool_uses_20250919", "trigger": {"type": "input_tokens", "value": 10},
            "keep": {"type": "tool_uses", "value": 1}, "exclude_tools": ["Read"], "clear_tool_inputs": True}
    plan = translator.plan_edits(body(messages, edit), TABLE)
    assert results(plan.body["messages"]) == ["x" * 400, TABLE.placeholder, TABLE.placeholder, "x" * 400]
    inputs = [b["input"] for m in plan.body["messages"] if m["role"] == "assistant" for b in m["content"]]
    assert inputs == [{"command": "echo 0"}, {}, {}, {"command": "echo 3"}]
    only_bash = translator.plan_edits(body(messages, {**edit, "exclude_tools": [], "clear_tool_inputs": ["Read"]}),
                                      TABLE)
    inputs = [b["input"] for m in only_bash.body["messages"] if m["role"] == "assistant" for b in m["content"]]
    assert inputs == [{}, {"command": "echo 1"}, {"command": "echo 2"}, {"command": "echo 3"}]


def test_clear_at_least_or_nothing():
    edit = {"type": "clear_tool_uses_20250919", "trigger": {"type": "input_tokens", "value": 10},
            "keep": {"type": "tool_uses", "value": 2}}
    enough = translator.plan_edits(body(session(4), {**edit, "clear_at_least": {"type": "input_tokens",
                                                                                "value": 150}}), TABLE)
    assert enough.report.applied_edits[0]["cleared_tool_uses"] == 2
    short = translator.plan_edits(body(session(4), {**edit, "clear_at_least": {"type": "input_tokens",
                                                                               "value": 10_000}}), TABLE)
    assert short.report.applied_edits == () and short.body["messages"] == session(4)


# --- clear_thinking_20251015 -----------------------------------------------------------------------

def thinking_turns(turns: int) -> list[dict]:
    messages: list[dict] = []
    for n in range(turns):
        messages += [{"role": "user", "content": f"question {n}"}, *tool_round(n, thinking=True)[:2],
                     {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "s"},
                                                       {"type": "text", "text": f"answer {n}"}]}]
    return messages


def thinking_count(messages: list[dict]) -> int:
    return sum(b["type"] == "thinking" for m in messages if isinstance(m["content"], list) for b in m["content"])


@pytest.mark.parametrize(("keep", "kept_turns"), [(None, 1), ({"type": "thinking_turns", "value": 2}, 2),
                                                  ("all", 4), ({"type": "all"}, 4)])
def test_clear_thinking_keeps_the_latest_turns(keep, kept_turns):
    edit = {"type": "clear_thinking_20251015", **({"keep": keep} if keep else {})}
    plan = translator.plan_edits(body(thinking_turns(4), edit), TABLE)
    assert thinking_count(plan.body["messages"]) == 2 * kept_turns  # a tool-use loop is one turn
    if kept_turns == 4:
        assert plan.report.applied_edits == ()
    else:
        [applied] = plan.report.applied_edits
        assert applied["cleared_thinking_turns"] == 4 - kept_turns and applied["cleared_input_tokens"] > 0


def test_claude_code_sends_keep_all_which_changes_nothing():
    paths = claude_code_fixtures("04-tool-parallel-thinking-followup-request.json")
    if not paths:
        pytest.skip("no Claude Code fixtures")
    request = json.loads(paths[0].read_text())
    request = request.get("body", request)
    assert request["context_management"] == {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}
    plan = translator.plan_edits(request, TABLE)
    assert plan.body["messages"] == request["messages"] and plan.report.context_management() == {"applied_edits": []}


def test_both_edits_in_order():
    edits = ({"type": "clear_thinking_20251015"},
             {"type": "clear_tool_uses_20250919", "trigger": {"type": "input_tokens", "value": 10}})
    plan = translator.plan_edits(body(thinking_turns(4), *edits), TABLE)
    assert [e["type"] for e in plan.report.applied_edits] == ["clear_thinking_20251015", "clear_tool_uses_20250919"]


# --- compaction -------------------------------------------------------------------------------------

def test_a_compaction_block_replaces_what_came_before():
    messages = [*session(3), {"role": "assistant", "content": [{"type": "compaction", "content": "SUMMARY"},
                                                               {"type": "text", "text": "next"}]},
                {"role": "user", "content": "more"}]
    plan = translator.plan_edits({"model": "m", "max_tokens": 5, "messages": messages}, TABLE)
    assert plan.body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": TABLE.summary_prefix + "SUMMARY"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "next"}]}, {"role": "user", "content": "more"}]
    assert plan.report.reported is False


def history(messages: list[dict]) -> list[dict]:
    return translator.plan_edits({"model": "m", "max_tokens": 5, "messages": messages}, TABLE).body["messages"]


def test_compaction_with_nothing_before_and_null_content():
    alone = [{"role": "assistant", "content": [{"type": "compaction", "content": "S"}]}]
    assert history(alone) == [
        {"role": "user", "content": [{"type": "text", "text": TABLE.summary_prefix + "S"}]}]
    failed = [{"role": "user", "content": "a"}, {"role": "assistant", "content": [{"type": "compaction",
                                                                                   "content": None}]},
              {"role": "user", "content": "b"}]
    assert history(failed) == [failed[0], failed[2]]
    with pytest.raises(translator.AnthropicError, match=r"messages\.0\.content\.0\.content: Empty string"):
        history([{"role": "assistant", "content": [{"type": "compaction", "content": ""}]}])


def test_compact_trigger_and_summary_request():
    edit = {"type": "compact_20260112", "trigger": {"type": "input_tokens", "value": 50_000},
            "instructions": "Keep file names."}
    below = translator.plan_edits(body(session(3), edit), TABLE)
    assert below.compact is None
    above = translator.plan_edits({**body(session(3, output="z" * 250_000), edit), "tools": [{"name": "Bash"}],
                                   "stream": True}, TABLE)
    assert above.compact is not None
    request = translator.summary_request(above.body, above.compact, TABLE)
    assert request["messages"][-1] == {"role": "user", "content": [{"type": "text", "text": "Keep file names."}]}
    assert request["tool_choice"] == {"type": "none"} and "stream" not in request
    assert "context_management" not in request
    default = translator.summary_request(above.body, edits.Edit("compact_20260112", "", {}), TABLE)
    assert default["messages"][-1]["content"][0]["text"] == TABLE.summary_prompt


def test_summary_text_and_compacted_body():
    answer = {"content": [{"type": "text", "text": "<analysis>x</analysis>\n<summary>\nDone A.\n</summary>"}]}
    assert translator.summary_text(answer) == "Done A."
    assert translator.summary_text({"content": [{"type": "text", "text": "  "}]}) is None
    block = translator.compaction_block("Done A.")
    compacted = translator.compacted_body(body(session(2)), block, TABLE)
    assert compacted["messages"] == [{"role": "user", "content": [{"type": "text",
                                                                   "text": TABLE.summary_prefix + "Done A."}]}]


# --- hostile edits ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("edits", "message"), [
    ([{"type": "clear_everything"}], r"edits\.0\.type: Input tag \"clear_everything\" found using 'type'"),
    ([{}], r"edits\.0\.type: Input tag null"),
    ([{"type": ["clear_tool_uses_20250919"]}], r"edits\.0\.type: Input tag \[\"clear_tool_uses_20250919\"\]"),
    (["clear"], r"edits\.0: Input should be a valid dictionary"),
    ([{"type": "clear_tool_uses_20250919", "trigger": {"type": "turns", "value": 3}}],
     r"edits\.0\.trigger\.type: Input tag \"turns\""),
    ([{"type": "clear_tool_uses_20250919", "trigger": {"type": "input_tokens", "value": "many"}}],
     r"edits\.0\.trigger\.value: Input should be a valid integer"),
    ([{"type": "clear_tool_uses_20250919", "trigger": {"type": "input_tokens", "value": 1.5}}],
     r"edits\.0\.trigger\.value: Input should be a valid integer"),
    ([{"type": "clear_tool_uses_20250919", "trigger": {"type": "tool_uses", "value": 3},
       "keep": {"type": "tool_uses", "value": 5}}], r"edits\.0\.keep: keep \(5 tool_uses\) must be less than"),
    ([{"type": "clear_tool_uses_20250919", "keep": {"type": "input_tokens", "value": 5}}], r"edits\.0\.keep\.type"),
    ([{"type": "clear_tool_uses_20250919", "exclude_tools": "Bash"}], r"edits\.0\.exclude_tools: Input should be"),
    ([{"type": "clear_tool_uses_20250919", "clear_tool_inputs": "yes"}], r"edits\.0\.clear_tool_inputs"),
    ([{"type": "clear_tool_uses_20250919", "surprise": 1}], r"edits\.0\.surprise: Extra inputs are not permitted"),
    ([{"type": "clear_thinking_20251015", "keep": {"type": "thinking_turns", "value": 0}}],
     r"edits\.0\.keep\.value: Input should be greater than or equal to 1"),
    ([{"type": "clear_thinking_20251015", "keep": "some"}], r"edits\.0\.keep: Input should be a valid dictionary"),
    ([{"type": "compact_20260112", "trigger": {"type": "input_tokens", "value": 1000}}],
     r"edits\.0\.trigger\.value: Input should be greater than or equal to 50000"),
    ([{"type": "compact_20260112", "pause_after_compaction": "yes"}], r"edits\.0\.pause_after_compaction"),
    ([{"type": "compact_20260112", "instructions": ""}], r"edits\.0\.instructions"),
    ([{"type": "clear_tool_uses_20250919"}, {"type": "clear_thinking_20251015"}],
     r"edits\.1: clear_thinking_20251015 must be the first edit"),
    ([{"type": "clear_tool_uses_20250919"}, {"type": "clear_tool_uses_20250919"}], r"edits\.1: each edit type"),
])
def test_hostile_edits_get_a_400_naming_the_field(edits, message):
    with pytest.raises(translator.AnthropicError, match="context_management." + message) as caught:
        translator.plan_edits(body(session(1), *edits), TABLE)
    assert caught.value.status == 400 and caught.value.type == "invalid_request_error"


@pytest.mark.parametrize(("context", "message"), [
    ("edits", r"context_management: Input should be a valid dictionary"),
    ({"edits": {}}, r"context_management\.edits: Input should be a valid list"),
    ({"edits": [], "more": 1}, r"context_management\.more: Extra inputs are not permitted"),
])
def test_hostile_context_management(context, message):
    with pytest.raises(translator.AnthropicError, match=message):
        translator.plan_edits({"messages": [], "context_management": context}, TABLE)


def test_null_and_empty_edits_change_nothing():
    for context in (None, {"edits": None}, {"edits": []}):
        plan = translator.plan_edits({**body(session(2)), "context_management": context}, TABLE)
        assert plan.body["messages"] == session(2) and plan.report.applied_edits == ()


# --- the report in answers --------------------------------------------------------------------------

def test_report_in_the_stream_and_the_message():
    report = translator.EditReport(reported=True, applied_edits=({"type": "clear_thinking_20251015",
                                                                  "cleared_thinking_turns": 1,
                                                                  "cleared_input_tokens": 7},),
                                   lead_blocks=({"type": "compaction", "content": "S"},),
                                   compaction_usage={"type": "compaction", "input_tokens": 9, "output_tokens": 2})
    events = report.paused_events("msg_1", "claude-x", TABLE.pause_stop_reason)
    message = translator.collect(events)
    assert message["content"] == [{"type": "compaction", "content": "S"}]
    assert message["stop_reason"] == "compaction"
    assert message["context_management"] == {"applied_edits": [dict(report.applied_edits[0])]}
    assert [i["type"] for i in message["usage"]["iterations"]] == ["compaction", "message"]


def test_booked_usage_adds_the_compaction_call():
    answer = {"input_tokens": 100, "output_tokens": 10, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 5}
    report = translator.EditReport(compaction_usage={"type": "compaction", "input_tokens": 60000, "output_tokens": 40,
                                                     "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0})
    assert translator.billed_usage(answer, report) == {**answer, "input_tokens": 60100, "output_tokens": 50}
    assert translator.billed_usage(answer, translator.EditReport()) is answer
    assert translator.billed_usage(None, report) is None
