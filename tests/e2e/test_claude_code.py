"""Claude Code (the real CLI, headless ``claude -p``, the release tests/e2e/clients.py installs) through the proxy to the strict fake Gemini."""
from __future__ import annotations

import json
import math
import secrets

import pytest

from tests.e2e.claude_records import assert_ok, first_call_part, function_responses, model_calls
from tests.fake_gemini import prompt_token_count

pytestmark = pytest.mark.e2e

DEFAULT_TEXT = "Hello from the fake Gemini."


def test_plain_prompt(claude, proxy, gemini):
    run = claude(proxy.url, "say hello")
    assert_ok(run)
    assert run.result["result"] == DEFAULT_TEXT
    calls = model_calls(gemini)
    assert len(calls) == 1, [c["path"] for c in calls]
    # No --model: Claude Code asks for its default Opus, which the proxy sends to BIG_MODEL, streamed.
    assert calls[0]["path"] == "/v1beta/models/gemini-3.1-pro-preview:streamGenerateContent"
    assert calls[0]["status"] == 200 and not calls[0]["error"]
    # Claude Code's own accounting shows Gemini's usageMetadata (the fake's deterministic figures).
    usage = run.result["usage"]
    assert usage["input_tokens"] == prompt_token_count(calls[0]["normalized"])
    assert usage["output_tokens"] == math.ceil(len(DEFAULT_TEXT) / 4)


def test_bash_tool_loop(claude, proxy, gemini):
    marker = "mk" + secrets.token_hex(6)

    def answer_with_result(rec):
        responses = function_responses(rec)
        return {"text": "The command printed: " + json.dumps([r["response"] for r in responses])}

    gemini.enqueue({"text": "I will run it.",
                    "tool_calls": [("Bash", {"command": f"echo {marker}", "description": "Print the marker"})]},
                   answer_with_result)
    run = claude(proxy.url, f"run echo {marker}", "--allowedTools", "Bash")
    assert_ok(run)
    calls = model_calls(gemini)
    assert len(calls) == 2, [(c["path"], c["status"], c["error"]) for c in calls]
    follow_up = calls[1]
    assert follow_up["status"] == 200, follow_up["error"]
    responses = function_responses(follow_up)
    assert [r["name"] for r in responses] == ["Bash"]
    assert marker in json.dumps(responses[0]["response"])
    # The Gemini 3 signature issued on the call came back on it.
    assert first_call_part(follow_up)["thoughtSignature"] in gemini.issued_signatures
    assert not follow_up["used_dummy_signature"]
    assert marker in run.result["result"]
    assert not run.result.get("permission_denials")


def test_two_sequential_tool_steps_keep_every_signature(claude, proxy, gemini):
    first, second = "one" + secrets.token_hex(5), "two" + secrets.token_hex(5)
    gemini.enqueue(
        {"thinking": "Step one.", "tool_calls": [("Bash", {"command": f"echo {first}", "description": "Step one"})]},
        lambda rec: {"thinking": "Step two.",
                     "tool_calls": [("Bash", {"command": f"echo {second}", "description": "Step two"})]},
        lambda rec: {"text": "Saw " + " and ".join(json.dumps(r["response"]) for c in rec["normalized"]["contents"]
                                                   for r in (p.get("functionResponse") for p in c["parts"]) if r)})
    run = claude(proxy.url, "run two commands one after the other", "--allowedTools", "Bash")
    assert_ok(run)
    calls = model_calls(gemini)
    assert [c["status"] for c in calls] == [200, 200, 200], [(c["path"], c["status"], c["error"]) for c in calls]
    last = calls[2]["normalized"]["contents"]
    model_turns = [c for c in last if c["role"] == "model"]
    assert len(model_turns) == 2
    for turn in model_turns:  # Gemini 3 checks the first call of every model turn since the user's text
        first_call = next(p for p in turn["parts"] if "functionCall" in p)
        assert first_call["thoughtSignature"] in gemini.issued_signatures
    assert not any(c["used_dummy_signature"] for c in calls)
    assert first in run.result["result"] and second in run.result["result"]


def test_parallel_tool_calls_with_thinking(claude, proxy, gemini, project):
    bash_marker = "bash" + secrets.token_hex(6)
    file_marker = "file" + secrets.token_hex(6)
    notes = project / "notes.txt"
    notes.write_text(f"the note says {file_marker}\n")

    def answer_with_results(rec):
        return {"thinking": "Both tools answered.",
                "text": "Results: " + json.dumps({r["name"]: r["response"] for r in function_responses(rec)})}

    gemini.enqueue({"thinking": "I need to run the command and read the file at once.",
                    "text": "Doing both.",
                    "tool_calls": [("Bash", {"command": f"echo {bash_marker}", "description": "Print the marker"}),
                                   ("Read", {"file_path": str(notes)})]},
                   answer_with_results)
    # Headless Claude Code asks for thinking with display "omitted" unless told otherwise
    # (test_claude_code_newest.py::test_omitted_thinking); here it asks for summaries.
    run = claude(proxy.url, "run the echo and read notes.txt", "--allowedTools", "Bash", "Read",
                 "--thinking-display", "summarized")
    assert_ok(run)
    calls = model_calls(gemini)
    assert [c["status"] for c in calls] == [200, 200], [(c["path"], c["status"], c["error"]) for c in calls]
    first, follow_up = calls
    assert first["model"] == follow_up["model"] == "gemini-3.1-pro-preview"
    # Claude Code asked for thinking (adaptive, summarized); Gemini 3 is asked for its thoughts.
    thinking_config = first["normalized"]["generationConfig"]["thinkingConfig"]
    assert thinking_config.get("includeThoughts") is True, thinking_config
    responses = {r["name"]: json.dumps(r["response"]) for r in function_responses(follow_up)}
    assert set(responses) == {"Bash", "Read"}
    assert bash_marker in responses["Bash"] and file_marker in responses["Read"]
    model_turn = follow_up["normalized"]["contents"][-2]
    assert [p["functionCall"]["name"] for p in model_turn["parts"] if "functionCall" in p] == ["Bash", "Read"]
    assert first_call_part(follow_up)["thoughtSignature"] in gemini.issued_signatures
    assert not follow_up["used_dummy_signature"]
    assert bash_marker in run.result["result"] and file_marker in run.result["result"]
    # Claude Code parsed both thinking blocks, each with a signature, and both tool calls.
    blocks = run.transcript_blocks()
    thinking = [b for b in blocks if b["type"] == "thinking"]
    assert [b["thinking"] for b in thinking] == ["I need to run the command and read the file at once.",
                                                 "Both tools answered."]
    assert all(b.get("signature") for b in thinking), thinking
    assert [(b["name"], b["input"]) for b in blocks if b["type"] == "tool_use"] == [
        ("Bash", {"command": f"echo {bash_marker}", "description": "Print the marker"}),
        ("Read", {"file_path": str(notes)})]


@pytest.mark.parametrize(("flags", "env", "gemini_model"), [
    (["--model", "haiku"], {}, "gemini-3.8-flash"),
    (["--model", "sonnet"], {}, "gemini-3.1-pro-preview"),
    (["--model", "opus"], {}, "gemini-3.1-pro-preview"),
    ([], {"ANTHROPIC_MODEL": "gemini-2.5-flash"}, "gemini-2.5-flash"),
    (["--model", "gemini-2.5-pro"], {}, "gemini-2.5-pro"),
    (["--model", "sonnet"], {"ANTHROPIC_DEFAULT_SONNET_MODEL": "gemini-2.5-flash-lite"}, "gemini-2.5-flash-lite"),
    ([], {"ANTHROPIC_DEFAULT_OPUS_MODEL": "gemini-3-flash-preview"}, "gemini-3-flash-preview"),
    # Haiku asks for max_tokens 32000 and thinking budget 31999: more than gemini-2.0-flash allows or does.
    (["--model", "haiku"], {"ANTHROPIC_DEFAULT_HAIKU_MODEL": "gemini-2.0-flash"}, "gemini-2.0-flash"),
], ids=["haiku", "sonnet", "opus", "ANTHROPIC_MODEL", "model-gemini-name", "DEFAULT_SONNET", "DEFAULT_OPUS",
        "DEFAULT_HAIKU"])
def test_model_selection(claude, proxy, gemini, flags, env, gemini_model):
    run = claude(proxy.url, "say hello", *flags, env=env)
    assert_ok(run)
    assert run.result["result"] == DEFAULT_TEXT
    calls = model_calls(gemini)
    assert [c["path"] for c in calls] == [f"/v1beta/models/{gemini_model}:streamGenerateContent"]


def test_cut_stream_falls_back_to_non_streaming(claude, proxy, gemini):
    gemini.enqueue({"cut_after_chunks": 2, "text": "This answer is cut off half way through.", "text_chunks": 5},
                   {"text": "The whole answer, without streaming."})
    run = claude(proxy.url, "say hello")
    assert_ok(run)
    calls = model_calls(gemini)
    # The proxy reads every answer from Gemini as a stream, the non-streaming retry's too.
    assert [(c["action"], bool(c.get("cut"))) for c in calls] == [
        ("streamGenerateContent", True), ("streamGenerateContent", False)], [(c["path"], c["status"]) for c in calls]
    assert run.result["result"] == "The whole answer, without streaming."


def test_web_search_reports_its_searches_and_pages(claude, proxy, gemini):
    """Claude Code's WebSearch tool asks, in a request of its own, for the web_search server tool; the
    proxy runs it as Gemini's Google Search and answers with web search blocks, from which Claude Code
    lists the pages it hands back to the main loop."""
    page = "https://example.org/" + secrets.token_hex(6)

    def answer(rec):
        body = rec["normalized"]
        if any("googleSearch" in t for t in body.get("tools", [])):
            return {"text": "The capital of France is Paris.",
                    "grounding": {"queries": ["capital of France"], "sources": [[page, "Paris facts"]]}}
        if function_responses(rec):
            return {"text": "Found: " + json.dumps([r["response"] for r in function_responses(rec)])}
        return {"tool_calls": [("WebSearch", {"query": "capital of France"})]}

    gemini.enqueue(answer, answer, answer)
    run = claude(proxy.url, "search the web for the capital of France", "--allowedTools", "WebSearch")
    assert_ok(run)
    calls = model_calls(gemini)
    assert [c["status"] for c in calls] == [200, 200, 200], [(c["path"], c["status"], c["error"]) for c in calls]
    searches = [c for c in calls if any("googleSearch" in t for t in c["normalized"].get("tools", []))]
    assert len(searches) == 1
    result = function_responses(calls[-1])[0]["response"]["content"]
    # Claude Code lists the pages of the web_search_tool_result blocks after the search's text.
    assert "The capital of France is Paris." in result and "Links: " in result, result
    assert json.loads(result.split("Links: ", 1)[1].split("\n", 1)[0]) == [{"title": "Paris facts", "url": page}]
    assert page in run.result["result"]
