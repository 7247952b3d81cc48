"""What the newest Claude Code sends, through the proxy to the strict fake Gemini: tool search with
deferred tools, thinking with ``display: "omitted"``, ``/compact``, the session-title request
(structured output) and a sub-agent. Each test checks what reached Gemini, not only the exit code."""
from __future__ import annotations

import json
import secrets

import pytest

from tests.e2e.claude_records import (assert_ok, compactions, declared, every_function_response, first_call_part,
                                      function_responses, last_text, model_calls, statuses)

pytestmark = pytest.mark.e2e


def test_tool_search_then_a_deferred_tool(claude, proxy, gemini):
    """Claude Code declares only its core tools and lists the others by name; ToolSearch loads one
    (a ``tool_reference`` in its result, the tool then sent with ``defer_loading``), and the model calls it."""
    marker = "cron" + secrets.token_hex(5)

    def call_cron_list(rec):
        return {"tool_calls": [("CronList", {})]}

    def report(rec):
        return {"text": f"{marker}: " + json.dumps([r["response"] for r in function_responses(rec)])}

    gemini.enqueue({"tool_calls": [("ToolSearch", {"query": "select:CronList"})]}, call_cron_list, report)
    run = claude(proxy.url, "list the cron jobs", "--allowedTools", "ToolSearch", "CronList")
    assert_ok(run)
    calls = model_calls(gemini)
    assert [c["status"] for c in calls] == [200, 200, 200], statuses(calls)
    search, after_search, after_call = calls
    assert "ToolSearch" in declared(search) and "CronList" not in declared(search)
    assert "CronList" in last_text(search)  # named in the deferred-tools list Claude Code sends
    # The search's result (a tool_reference block) reached Gemini as the tool's name, and the tool is declared now.
    assert [(r["name"], r["response"]) for r in every_function_response(after_search)] == [
        ("ToolSearch", {"content": "CronList"})]
    assert "CronList" in declared(after_search)
    responses = function_responses(after_call)
    assert [r["name"] for r in responses] == ["CronList"]
    assert first_call_part(after_call)["functionCall"]["name"] == "CronList"
    assert first_call_part(after_call)["thoughtSignature"] in gemini.issued_signatures
    assert not any(c["used_dummy_signature"] for c in calls)
    assert run.result["result"].startswith(marker) and "No scheduled jobs" in run.result["result"]


def _thinking_tool_loop(gemini, marker: str) -> None:
    """A tool call, then an answer, each with thoughts Gemini counted but did not show (as with includeThoughts off)."""
    gemini.enqueue({"text": "Running it.", "usage": {"thoughtsTokenCount": 120},
                    "tool_calls": [("Bash", {"command": f"echo {marker}", "description": "Print the marker"})]},
                   lambda rec: {"text": "Printed: " + json.dumps([r["response"] for r in function_responses(rec)]),
                                "usage": {"thoughtsTokenCount": 40}})


def test_omitted_thinking(claude, proxy, gemini):
    """Headless Claude Code asks for ``thinking: {"type": "adaptive", "display": "omitted"}`` with effort
    medium: Gemini is asked to think at that level without sending thoughts, and the tool loop keeps
    the signature Gemini put on the call."""
    marker = "omit" + secrets.token_hex(5)
    _thinking_tool_loop(gemini, marker)
    run = claude(proxy.url, f"run echo {marker}", "--allowedTools", "Bash")
    assert_ok(run)
    calls = model_calls(gemini)
    assert [c["status"] for c in calls] == [200, 200], statuses(calls)
    for call in calls:
        assert call["normalized"]["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "medium",
                                                                            "includeThoughts": False}
    assert first_call_part(calls[1])["thoughtSignature"] in gemini.issued_signatures
    assert not calls[1]["used_dummy_signature"]
    assert not [b for b in run.transcript_blocks() if b["type"] == "thinking" and b.get("thinking")]
    assert marker in run.result["result"]
    # Thoughts are output tokens: Gemini's thoughtsTokenCount is inside output_tokens.
    assert run.result["usage"]["output_tokens"] > 120 + 40


def test_thinking_tokens_are_reported(claude, proxy, gemini):
    _thinking_tool_loop(gemini, "tokens" + secrets.token_hex(5))
    run = claude(proxy.url, "run the echo", "--allowedTools", "Bash")
    assert_ok(run)
    (usage,) = run.result["modelUsage"].values()
    assert usage["thinkingTokens"] == 120 + 40


SUMMARY_ASK = "<summary>"  # Claude Code's compaction prompt asks for the summary inside <summary></summary>


def test_compact(claude, proxy, gemini):
    """``/compact`` sends the conversation with the summary instructions as the last user turn; the
    summary Gemini writes is what the next prompt of the session starts from."""
    first, summary = "first" + secrets.token_hex(5), "summary" + secrets.token_hex(5)
    gemini.enqueue({"text": f"Hello, {first}."},
                   {"text": f"<analysis>A greeting.</analysis>\n<summary>1. Primary Request: {summary}</summary>"},
                   {"text": "Carrying on."})
    assert_ok(claude(proxy.url, "say hello"))
    compact = claude(proxy.url, "/compact", "--continue")
    assert compact.returncode == 0 and compact.result.get("is_error") is False, compact.describe()
    after = claude(proxy.url, "what next?", "--continue")
    assert_ok(after)
    calls = model_calls(gemini)
    assert [c["status"] for c in calls] == [200, 200, 200], statuses(calls)
    hello, compaction, next_turn = (c["normalized"] for c in calls)
    # The compaction request: the whole conversation, then the instructions (text only, no tool forced).
    assert [c["role"] for c in compaction["contents"]] == ["user", "model", "user"]
    assert compaction["contents"][1]["parts"] == [{"text": f"Hello, {first}."}]
    assert SUMMARY_ASK in last_text(calls[1]) and "toolConfig" not in compaction
    # One compaction request: Claude Code took the summary (it re-asks when it finds no <summary>).
    assert [m["trigger"] for m in compactions(compact.home)] == ["manual"]
    # The next turn starts from the summary, without the conversation it replaced.
    text = json.dumps(next_turn["contents"])
    assert summary in text and first not in text
    assert after.result["result"] == "Carrying on."


def _title_answer(rec: dict) -> dict:
    """JSON when Gemini is asked for JSON with a schema (as it answers then), else prose."""
    config = rec["normalized"]["generationConfig"]
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    if config.get("responseMimeType") == "application/json" and schema:
        return {"text": json.dumps({"title": "Login button on mobile"})}
    return {"text": "Login button on mobile"}


def test_session_title(claude_control, proxy, gemini):
    """The session-title request (what the TUI and the Agent SDK's generateSessionTitle send): no tools, no
    thinking, ``output_config.format`` a JSON schema with a ``title`` string; Claude Code parses the answer."""
    gemini.enqueue(_title_answer)
    (answer,) = claude_control(proxy.url, {"subtype": "generate_session_title",
                                           "description": "the login button does nothing on mobile", "persist": False})
    calls = model_calls(gemini)
    assert [c["status"] for c in calls] == [200], statuses(calls)
    body = calls[0]["normalized"]
    assert "the login button does nothing on mobile" in json.dumps(body["contents"]) and not declared(calls[0])
    config = body["generationConfig"]
    assert config.get("responseMimeType") == "application/json", config
    schema = config.get("responseJsonSchema") or config.get("responseSchema")
    assert schema["properties"]["title"]["type"].lower() == "string" and schema.get("required") == ["title"]
    assert answer == {"subtype": "success", "request_id": "req1", "response": {"title": "Login button on mobile"}}


def test_sub_agent(claude, proxy, gemini):
    """The Agent tool runs a sub-agent with its own system prompt and tools (here Explore, on haiku, so
    on SMALL_MODEL); its report comes back to the main loop as the Agent call's result."""
    task, report = "task" + secrets.token_hex(5), "report" + secrets.token_hex(5)

    def answer(rec):
        if "Agent" not in declared(rec):  # the sub-agent: it has no Agent tool
            return {"text": f"Found 3 files. {report}"}
        if function_responses(rec):
            return {"text": "The agent said: " + json.dumps([r["response"] for r in function_responses(rec)])}
        return {"tool_calls": [("Agent", {"description": "Count files", "prompt": f"Count the files. {task}",
                                          "subagent_type": "Explore", "model": "haiku", "run_in_background": False})]}

    gemini.enqueue(answer, answer, answer)
    run = claude(proxy.url, "count the files with an agent", "--allowedTools", "Agent")
    assert_ok(run)
    calls = model_calls(gemini)
    assert [c["status"] for c in calls] == [200, 200, 200], statuses(calls)
    main, sub, follow_up = calls
    assert (main["model"], sub["model"], follow_up["model"]) == (
        "gemini-3.1-pro-preview", "gemini-3.8-flash", "gemini-3.1-pro-preview")
    assert f"Count the files. {task}" in json.dumps(sub["normalized"]["contents"][0])
    assert "Agent" not in declared(sub) and "Read" in declared(sub)
    sub_system = json.dumps(sub["normalized"]["systemInstruction"])
    assert sub_system != json.dumps(main["normalized"]["systemInstruction"])
    (result,) = function_responses(follow_up)
    assert result["name"] == "Agent" and report in json.dumps(result["response"])
    assert first_call_part(follow_up)["thoughtSignature"] in gemini.issued_signatures
    assert report in run.result["result"]
    assert run.result["subagent_stats"]["spawned"] == 1
