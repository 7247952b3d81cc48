"""Gemini fidelity (issue 4): tool loops with thinking and signatures, usage, thinking config,
media, stop reasons, limits, Claude Code's shapes and count_tokens, against the strict fake."""
from __future__ import annotations

import base64
import json
import math

import anthropic
import pytest

from tests.fake_gemini import prompt_token_count

TOOLS = [
    {"name": "Bash", "description": "Run a command.", "input_schema": {
        "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"],
        "additionalProperties": False}},
    {"name": "Read", "description": "Read a file.", "input_schema": {
        "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
        "properties": {"file_path": {"type": "string"}, "limit": {"type": "integer", "exclusiveMinimum": 0}},
        "required": ["file_path"], "additionalProperties": False}},
]
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")).decode()
PDF = base64.b64encode(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n").decode()


@pytest.fixture
def client(proxy):
    return anthropic.Anthropic(base_url=proxy.url, api_key="sk", max_retries=0, timeout=60)


def parts_of(record, index=-1):
    return record["normalized"]["contents"][index]["parts"]


def last_ok(gemini):
    record = gemini.requests[-1]
    assert record["status"] == 200, record["error"]
    return record


def send(client, stream: bool, **body):
    if stream:
        with client.messages.stream(**body) as s:
            return s.get_final_message()
    return client.messages.create(**body)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("model", ["gemini-2.5-flash", "gemini-3.8-flash"])
def test_three_step_tool_loop_with_thinking_and_parallel_calls(client, gemini, model, stream):
    gemini.enqueue(
        {"thinking": "**Plan** Run both at once.", "tool_calls": [("Bash", {"command": "echo one"}),
                                                                  ("Read", {"file_path": "notes.txt"})]},
        {"thinking": "**Next** One more command.", "tool_calls": [("Bash", {"command": "echo two"})]},
        {"thinking": "**Done** Summarise.", "text": "All three steps finished."},
    )
    messages = [{"role": "user", "content": "Do the three steps."}]
    body = dict(model=model, max_tokens=8000, tools=TOOLS, thinking={"type": "adaptive"},
                output_config={"effort": "medium"})
    final = None
    for step in range(3):
        message = send(client, stream, messages=messages, **body)
        record = last_ok(gemini)
        assert not record["used_dummy_signature"]
        config = record["normalized"]["generationConfig"]["thinkingConfig"]
        assert config["includeThoughts"] is True
        assert ("thinkingLevel" in config) == model.startswith("gemini-3")
        thinking = message.content[0]
        assert thinking.type == "thinking" and thinking.thinking.startswith("**") and thinking.signature
        # usage: input excludes nothing here (no cache), output includes the thoughts
        assert message.usage.input_tokens == prompt_token_count(record["normalized"])
        assert message.usage.output_tokens >= math.ceil(len(thinking.thinking) / 4) + 1
        if step == 2:
            final = message
            break
        assert message.stop_reason == "tool_use"
        uses = [b for b in message.content if b.type == "tool_use"]
        assert len(uses) == (2 if step == 0 else 1)
        messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in message.content]})
        # Results come back in the opposite order, as Claude Code sends them in completion order.
        messages.append({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": u.id, "content": f"output of {u.input}"} for u in reversed(uses)]})
    assert final.stop_reason == "end_turn" and final.content[-1].text == "All three steps finished."
    # The last request held both earlier steps; every call carried the signature Gemini issued.
    contents = gemini.requests[-1]["normalized"]["contents"]
    calls = [p for c in contents for p in c["parts"] if "functionCall" in p]
    assert [p["functionCall"]["name"] for p in calls] == ["Bash", "Read", "Bash"]
    signed = [p for p in calls if "thoughtSignature" in p]
    assert signed and all(p["thoughtSignature"] in gemini.issued_signatures for p in signed)
    responses = [p["functionResponse"]["name"] for c in contents for p in c["parts"] if "functionResponse" in p]
    assert responses == ["Bash", "Read", "Bash"]  # put back in call order


def test_signature_also_restored_from_the_thinking_block(client, gemini):
    """A client that rewrites tool ids still round-trips: the thinking block carries the signature."""
    gemini.enqueue({"thinking": "**Hmm**", "tool_calls": [("Bash", {"command": "ls"}, "fc_1")]}, {"text": "ok"})
    first = client.messages.create(model="gemini-3.8-flash", max_tokens=500, tools=TOOLS,
                                   thinking={"type": "adaptive"}, messages=[{"role": "user", "content": "ls"}])
    thinking, use = first.content[0], first.content[1]
    assert thinking.signature.startswith("gm1:") and len(thinking.signature) > 10
    client.messages.create(model="gemini-3.8-flash", max_tokens=500, tools=TOOLS, thinking={"type": "adaptive"},
                           messages=[{"role": "user", "content": "ls"},
                                     {"role": "assistant", "content": [thinking.model_dump(), {
                                         "type": "tool_use", "id": "fc_1", "name": "Bash", "input": use.input}]},
                                     {"role": "user", "content": [
                                         {"type": "tool_result", "tool_use_id": "fc_1", "content": "a.txt"}]}])
    record = last_ok(gemini)
    assert not record["used_dummy_signature"]


def test_history_from_claude_does_not_break_the_request(client, gemini):
    gemini.enqueue({"text": "Continuing on Gemini."})
    message = client.messages.create(
        model="gemini-3.8-flash", max_tokens=500, tools=TOOLS, thinking={"type": "adaptive"},
        messages=[{"role": "user", "content": "list files"},
                  {"role": "assistant", "content": [
                      {"type": "thinking", "thinking": "I will list.", "signature": "EqQBCgIYAhIMclaudeSignature"},
                      {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix/LafPsn4a"},
                      {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "Bash",
                       "input": {"command": "ls"}}]},
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
                                                "content": "a.txt"}]}])
    assert message.content[-1].text == "Continuing on Gemini."
    record = last_ok(gemini)
    # No signature was ever issued for this call, so the documented escape hatch is used.
    assert record["used_dummy_signature"]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_cached_tokens_are_cache_reads_not_input(client, gemini, stream):
    gemini.enqueue({"text": "cached answer", "usage": {"promptTokenCount": 2000, "cachedContentTokenCount": 1500,
                                                       "candidatesTokenCount": 6, "thoughtsTokenCount": 20}})
    message = send(client, stream, model="gemini-2.5-flash", max_tokens=100,
                   messages=[{"role": "user", "content": "hi"}])
    assert message.usage.input_tokens == 500
    assert message.usage.cache_read_input_tokens == 1500
    assert message.usage.cache_creation_input_tokens == 0
    assert message.usage.output_tokens == 26


@pytest.mark.parametrize(("model", "thinking", "effort", "expected"), [
    ("gemini-3.8-flash", {"type": "adaptive", "display": "omitted"}, "high",
     {"thinkingLevel": "high", "includeThoughts": False}),
    ("gemini-3.8-flash", {"type": "disabled"}, None, {"thinkingLevel": "low", "includeThoughts": False}),
    ("gemini-2.5-flash", {"type": "enabled", "budget_tokens": 1024}, None,
     {"thinkingBudget": 1024, "includeThoughts": True}),
    ("gemini-2.5-pro", {"type": "adaptive"}, "max", {"thinkingBudget": 32768, "includeThoughts": True}),
])
def test_thinking_reaches_gemini_as_the_model_needs(client, gemini, model, thinking, effort, expected):
    body = dict(model=model, max_tokens=30000, thinking=thinking, messages=[{"role": "user", "content": "hi"}])
    if effort:
        body["output_config"] = {"effort": effort}
    client.messages.create(**body)
    assert last_ok(gemini)["normalized"]["generationConfig"]["thinkingConfig"] == expected


def test_a_budget_the_model_cannot_take_is_moved_to_one_it_can(client, gemini):
    client.messages.create(model="gemini-2.5-flash-lite", max_tokens=300,
                           thinking={"type": "enabled", "budget_tokens": 1024},
                           messages=[{"role": "user", "content": "hi"}])
    budget = last_ok(gemini)["normalized"]["generationConfig"]["thinkingConfig"]["thinkingBudget"]
    assert budget == 0 or 512 <= budget <= 24576


def test_images_documents_and_tool_results_with_images(client, gemini):
    gemini.enqueue({"tool_calls": [("Read", {"file_path": "shot.png"})]}, {"text": "seen"})
    first = client.messages.create(model="gemini-3.8-flash", max_tokens=500, tools=TOOLS, messages=[
        {"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}},
            {"type": "document", "title": "Notes", "source": {"type": "text", "media_type": "text/plain",
                                                              "data": "plain notes"}},
            {"type": "text", "text": "Look at these."}]}])
    parts = parts_of(last_ok(gemini))
    mimes = [p["inlineData"]["mimeType"] for p in parts if "inlineData" in p]
    assert mimes == ["image/png", "application/pdf"]
    assert any(p.get("text") == "Notes\nplain notes" for p in parts)
    use = first.content[0]
    client.messages.create(model="gemini-3.8-flash", max_tokens=500, tools=TOOLS, messages=[
        {"role": "user", "content": "read"},
        {"role": "assistant", "content": [use.model_dump(exclude_none=True)]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "is_error": True, "content": [
            {"type": "text", "text": "cannot decode"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]}]}])
    record = last_ok(gemini)
    response_part = parts_of(record)[0]["functionResponse"]
    assert response_part["response"] == {"error": "cannot decode"}
    blob = json.dumps(parts_of(record))
    assert PNG in blob


@pytest.mark.parametrize(("source", "fragment"), [
    ({"type": "base64", "media_type": "image/gif", "data": PNG}, "image/gif"),
    # LiteLLM would download an http:// URL itself: only https:// is passed on (as Gemini fileData).
    ({"type": "url", "url": "http://169.254.169.254/latest/meta-data"}, "must be a URL starting with https://"),
    ({"type": "url", "url": "https://example.com/cat.gif"}, "'image/gif' (told by the URL's extension)"),
    ({"type": "base64", "media_type": "image/png", "data": "not base64!!"}, "not valid base64"),
    ({"type": "file", "file_id": "file_123"}, "File 'file_123' not found"),
])
def test_images_gemini_cannot_take_are_clear_400s(client, gemini, source, fragment):
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.create(model="gemini-3.8-flash", max_tokens=50, messages=[
            {"role": "user", "content": [{"type": "image", "source": source}, {"type": "text", "text": "?"}]}])
    assert fragment in caught.value.body["error"]["message"]
    assert not gemini.requests


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize(("answer", "stop_reason"), [
    ({"text": "cut", "finish_reason": "MAX_TOKENS"}, "max_tokens"),
    ({"finish_reason": "SAFETY"}, "refusal"),
    ({"prompt_blocked": "PROHIBITED_CONTENT"}, "refusal"),
    ({"text": "done"}, "end_turn"),
    # Gemini sends calls whole; LiteLLM's streams report tool_calls whatever Gemini said.
    ({"tool_calls": [("Bash", {"command": "ls"})], "finish_reason": "MAX_TOKENS"}, "tool_use"),
    ({"tool_calls": [("Bash", {"command": "ls"})], "finish_reason": "TOO_MANY_TOOL_CALLS"}, "tool_use"),
])
def test_stop_reasons(client, gemini, stream, answer, stop_reason):
    gemini.enqueue(answer)
    message = send(client, stream, model="gemini-2.5-flash", max_tokens=100, tools=TOOLS,
                   messages=[{"role": "user", "content": "hi"}])
    assert message.stop_reason == stop_reason
    if stop_reason == "refusal":
        assert message.stop_details.type == "refusal"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_malformed_function_call_is_retried_once(client, gemini, stream):
    gemini.enqueue({"finish_reason": "MALFORMED_FUNCTION_CALL"}, {"text": "second try worked"})
    message = send(client, stream, model="gemini-2.5-flash", max_tokens=100, tools=TOOLS,
                   messages=[{"role": "user", "content": "hi"}])
    assert message.content[0].text == "second try worked"
    assert len([r for r in gemini.requests if r["action"]]) == 2


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_thinking_then_malformed_is_not_a_quiet_end_turn(client, gemini, stream):
    gemini.enqueue({"thinking": "**Plan** call a tool", "finish_reason": "MALFORMED_FUNCTION_CALL"},
                   {"thinking": "**Plan** again", "finish_reason": "MALFORMED_FUNCTION_CALL"})
    with pytest.raises(anthropic.APIStatusError) as caught:
        send(client, stream, model="gemini-2.5-flash", max_tokens=100, tools=TOOLS, thinking={"type": "adaptive"},
             messages=[{"role": "user", "content": "hi"}])
    # Non-streaming: retried, then a 500. Streaming: the thinking block was already on its way,
    # so the stream ends with an error event (which Claude Code retries).
    assert caught.value.body["error"]["type"] == "api_error"
    assert len([r for r in gemini.requests if r["action"]]) == (1 if stream else 2)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_malformed_twice_is_a_clear_error_not_an_empty_turn(client, gemini, stream):
    gemini.enqueue({"finish_reason": "MALFORMED_FUNCTION_CALL"}, {"finish_reason": "MALFORMED_FUNCTION_CALL"})
    with pytest.raises(anthropic.InternalServerError) as caught:
        send(client, stream, model="gemini-2.5-flash", max_tokens=100, tools=TOOLS,
             messages=[{"role": "user", "content": "hi"}])
    # Gemini's own reason, which LiteLLM's streams drop, is kept by the proxy's stream reader.
    assert "MALFORMED_FUNCTION_CALL" in caught.value.body["error"]["message"]


def test_max_tokens_clamped_and_sampling_dropped_where_refused(client, gemini):
    # This SDK version has no sampling arguments any more; other clients still send them.
    client.messages.create(model="gemini-3.8-flash", max_tokens=200000,
                           extra_body={"temperature": 0.2, "top_p": 0.5, "top_k": 5},
                           messages=[{"role": "user", "content": "hi"}])
    config = last_ok(gemini)["normalized"]["generationConfig"]
    assert config["maxOutputTokens"] == 65536
    assert "topP" not in config and "topK" not in config and config.get("temperature", 1.0) == 1.0
    client.messages.create(model="gemini-2.5-flash", max_tokens=100, extra_body={"temperature": 0.2, "top_k": 5},
                           messages=[{"role": "user", "content": "hi"}])
    config = last_ok(gemini)["normalized"]["generationConfig"]
    assert config["temperature"] == 0.2 and config["topK"] == 5


def test_max_tokens_zero_answers_with_usage_and_no_content(client, gemini):
    message = client.messages.create(model="gemini-2.5-flash", max_tokens=0, messages=[{"role": "user", "content": "hi"}])
    assert message.content == [] and message.stop_reason == "max_tokens" and message.usage.input_tokens > 0


def test_disable_parallel_tool_use_keeps_the_first_call(client, gemini):
    gemini.enqueue({"tool_calls": [("Bash", {"command": "a"}), ("Bash", {"command": "b"})]})
    message = client.messages.create(model="gemini-2.5-flash", max_tokens=100, tools=TOOLS,
                                     tool_choice={"type": "auto", "disable_parallel_tool_use": True},
                                     messages=[{"role": "user", "content": "hi"}])
    assert [b.input for b in message.content if b.type == "tool_use"] == [{"command": "a"}]


@pytest.mark.parametrize(("choice", "mode"), [
    ({"type": "any"}, "ANY"), ({"type": "none"}, "NONE"), ({"type": "auto"}, "AUTO"),
    ({"type": "tool", "name": "Read"}, "ANY"),
])
def test_tool_choice(client, gemini, choice, mode):
    client.messages.create(model="gemini-2.5-flash", max_tokens=100, tools=TOOLS, tool_choice=choice,
                           messages=[{"role": "user", "content": "hi"}])
    config = last_ok(gemini)["normalized"].get("toolConfig", {}).get("functionCallingConfig", {"mode": "AUTO"})
    assert config["mode"] == mode
    if choice["type"] == "tool":
        assert config["allowedFunctionNames"] == ["Read"]


def test_claude_code_shapes(client, gemini):
    client.messages.create(
        model="claude-opus-4-8", max_tokens=1000, tools=[],
        system=[{"type": "text", "text": "x-anthropic-billing-header: cc_version=9.9.9.abc; cc_entrypoint=cli;"},
                {"type": "text", "text": "You are a coding agent.", "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "hello", "cache_control": {"type": "ephemeral"}}]},
                  {"role": "system", "content": "Agents available: none."},
                  {"role": "assistant", "content": "Hi."},
                  {"role": "user", "content": "again"}],
        metadata={"user_id": "{\"session_id\": \"abc\"}"},
        extra_body={"context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
                    "output_config": {"effort": "high"}})
    body = last_ok(gemini)["normalized"]
    system = json.dumps(body["systemInstruction"])
    assert "billing-header" not in system and "You are a coding agent." in system
    first_user = [p["text"] for p in body["contents"][0]["parts"]]
    assert first_user == ["hello", "<system>\nAgents available: none.\n</system>"]
    assert "tools" not in body and "cachedContent" not in body
    assert "cache_control" not in json.dumps(body)


def test_web_search_alone_becomes_google_search(client, gemini):
    client.messages.create(model="gemini-2.5-flash", max_tokens=100,
                           tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
                           messages=[{"role": "user", "content": "news?"}])
    tools = last_ok(gemini)["normalized"]["tools"]
    assert tools == [{"googleSearch": {}}]


def test_count_tokens_is_geminis_count_of_the_translated_request(client, gemini):
    body = dict(model="gemini-2.5-flash", tools=TOOLS, system="Be brief.",
                messages=[{"role": "user", "content": "count me"}])
    counted = client.messages.count_tokens(**body).input_tokens
    count_record = last_ok(gemini)
    assert count_record["action"] == "countTokens"
    message = client.messages.create(max_tokens=10, **body)
    assert counted == message.usage.input_tokens


def test_count_tokens_falls_back_to_an_estimate(client, gemini):
    gemini.enqueue({"action": "countTokens", "error": {"code": 500, "message": "boom"}})
    counted = client.messages.count_tokens(model="gemini-2.5-flash", messages=[{"role": "user", "content": "count me"}])
    assert 0 < counted.input_tokens < 50
