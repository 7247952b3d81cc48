"""The pure translator, table-driven: request → LiteLLM kwargs, LiteLLM answer → Message, and the
stream state machine on plain chunks. No server, no LiteLLM."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import translator
from translator import AnthropicError, StreamProtocolError, StreamTranslator, translate_request, translate_response
from tests.sse_grammar import check_stream

SPEC = translator.load_spec()
ROOT = Path(__file__).resolve().parent.parent
BASH = {"name": "Bash", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}


def test_import_translator_pulls_in_no_server_or_litellm():
    code = ("import sys, translator; translator.load_spec(); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'quart', 'hypercorn', 'litellm', 'httpx', 'aiohttp'}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_translator_reads_no_environment_and_does_no_io():
    """Only spec.py reads files (its own tables, with Path.read_text); the developer command in
    __main__.py writes spec/schemas/ from the table models. urllib.parse (splitting URL sources, no I/O)
    is the one part of urllib allowed."""
    source = "\n".join(p.read_text() for p in (ROOT / "translator").glob("*.py"))
    for forbidden in (r"os\.environ", r"getenv", r"\bsocket\b", r"urllib(?!\.parse\b)", r"\brequests\b", r"(?<![\w.])open\(",
                      r"\bglobal\b"):
        assert not re.search(forbidden, source), forbidden


def kwargs(**body):
    base = {"model": "gemini-2.5-flash", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}
    return translate_request({**base, **body}, SPEC).kwargs


@pytest.mark.parametrize(("body", "expected"), [
    ({}, {"model": "gemini/gemini-2.5-flash", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}),
    ({"system": "Be terse."}, {"messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "hi"}]}),
    ({"system": [{"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}}, {"type": "text", "text": "B"}]},
     {"messages": [{"role": "system", "content": "A\n\nB"}, {"role": "user", "content": "hi"}]}),
    ({"stop_sequences": ["END"], "temperature": 0.5, "top_p": 0.9, "top_k": 3},
     {"stop": ["END"], "temperature": 0.5, "top_p": 0.9, "top_k": 3}),
    ({"stream": True}, {"stream": True, "stream_options": {"include_usage": True}}),
    ({"max_tokens": 10**6}, {"max_tokens": 65536}),
    ({"metadata": {"user_id": "x"}, "service_tier": "auto", "context_management": {"edits": []}, "container": "c"}, {}),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "a", "cache_control": {"type": "ephemeral"}},
                                                {"type": "text", "text": "b"}]}]},
     {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]}),
    ({"messages": [{"role": "user", "content": "hi"}, {"role": "user", "content": "again"}]},
     {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "again"}]}]}),
])
def test_request_fields(body, expected):
    result = kwargs(**body)
    for key, value in expected.items():
        assert result[key] == value, key
    assert "metadata" not in result and "service_tier" not in result and "cache_control" not in json.dumps(result)


def test_tool_use_and_results_become_native_tool_calls():
    result = kwargs(tools=[BASH], messages=[
        {"role": "user", "content": "ls"},
        {"role": "assistant", "content": [{"type": "text", "text": "Sure."},
                                          {"type": "tool_use", "id": translator.encode_tool_id("call_1", "SIG", "x"),
                                           "name": "Bash", "input": {"command": "ls"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": translator.encode_tool_id("call_1", "SIG", "x"),
                                      "content": [{"type": "text", "text": "a.txt"}]},
                                     {"type": "text", "text": "now what?"}]}])
    assistant, tool, user = result["messages"][1:]
    assert assistant == {"role": "assistant", "content": "Sure.", "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "Bash", "arguments": '{"command": "ls"}'},
         "provider_specific_fields": {"thought_signature": "SIG"}}]}
    assert tool == {"role": "tool", "tool_call_id": "call_1", "content": '{"content": "a.txt"}'}
    assert user == {"role": "user", "content": "now what?"}
    assert result["tools"][0]["function"]["name"] == "Bash"


@pytest.mark.parametrize(("body", "status", "fragment"), [
    ({"messages": [{"role": "user", "content": [{"type": "video"}]}]}, 400, "Input tag 'video' found using 'type'"),
    ({"messages": [{"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "x"}]}]}, 400,
     "not allowed in a 'assistant' message"),
    ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, 400, "messages.0.content.0.text: Field required"),
    ({"messages": [{"role": "user", "content": "hi"},
                   {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "Bash", "input": {}}]},
                   {"role": "user", "content": "no result"}]}, 400, "without tool_result blocks immediately after: t1"),
    ({"model": "llama-3"}, 404, "llama-3"),
    ({"tool_choice": {"type": "tool", "name": "Nope"}, "tools": [BASH]}, 400, "Nope"),
])
def test_request_errors(body, status, fragment):
    with pytest.raises(AnthropicError) as caught:
        kwargs(**body)
    assert caught.value.status == status and fragment in caught.value.message


def litellm_response(message: dict, finish="stop", native=None, usage=None):
    choice = {"finish_reason": finish, "index": 0, "message": message}
    if native:
        choice["provider_specific_fields"] = {"native_finish_reason": native}
    return {"id": "r1", "choices": [choice], "usage": usage or {"prompt_tokens": 10, "completion_tokens": 4}}


@pytest.mark.parametrize(("response", "content_types", "stop"), [
    (litellm_response({"content": "Hello"}), ["text"], "end_turn"),
    (litellm_response({"content": "Hel"}, "length", "MAX_TOKENS"), ["text"], "max_tokens"),
    (litellm_response({"content": None}, "content_filter"), [], "refusal"),
    (litellm_response({"content": None}, "stop", "MALFORMED_FUNCTION_CALL"), [], "malformed"),
    (litellm_response({"content": None}, "stop"), [], "malformed"),
    (litellm_response({"content": "Run it.", "reasoning_content": "think", "tool_calls": [
        {"id": "call_9", "type": "function", "function": {"name": "Bash", "arguments": '{"command": "ls"}'}}]},
        "tool_calls"), ["thinking", "text", "tool_use"], "tool_use"),
])
def test_responses(response, content_types, stop):
    call = translate_request({"model": "gemini-2.5-flash", "max_tokens": 100, "tools": [BASH],
                              "messages": [{"role": "user", "content": "hi"}]}, SPEC)
    message, outcome = translate_response(response, call, SPEC, "msg_1")
    assert [b["type"] for b in message["content"]] == content_types
    assert outcome.stop_reason == stop
    assert message["usage"] == {"input_tokens": 10, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                                "output_tokens": 4}


def chunk(delta=None, finish=None, usage=None):
    data = {"choices": [{"index": 0, "delta": delta or {}, **({"finish_reason": finish} if finish else {})}]}
    if usage:
        data["usage"] = usage
    return data


def frames(events):
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)


def run_stream(chunks, **body):
    call = translate_request({"model": "gemini-2.5-flash", "max_tokens": 100, "tools": [BASH],
                              "messages": [{"role": "user", "content": "hi"}], **body}, SPEC)
    machine = StreamTranslator(call, SPEC, "msg_1", input_estimate=7)
    events = machine.start()
    for c in chunks:
        events += machine.feed(c)
    events += machine.finish()
    check_stream(frames(events))
    return events


def test_both_paths_give_the_same_message():
    """A non-streamed answer and the stream of the same answer in pieces fold to one Message."""
    sig = "U0lH"
    tool_call = {"id": "call_9", "type": "function", "function": {"name": "Bash", "arguments": '{"command": "ls"}'},
                 "provider_specific_fields": {"thought_signature": sig}}
    usage = {"prompt_tokens": 10, "completion_tokens": 4}
    call = translate_request({"model": "gemini-2.5-flash", "max_tokens": 100, "tools": [BASH],
                              "messages": [{"role": "user", "content": "hi"}]}, SPEC)
    message, outcome = translate_response(litellm_response(
        {"reasoning_content": "think", "tool_calls": [tool_call]}, "tool_calls", usage=usage), call, SPEC, "msg_1")
    streamed = translator.collect(run_stream([
        chunk({"reasoning_content": "thi"}), chunk({"reasoning_content": "nk"}),
        chunk({"tool_calls": [{"index": 0, **tool_call}]}), chunk(finish="tool_calls"), chunk(usage=usage)]))
    assert message == streamed
    assert [b["type"] for b in message["content"]] == ["thinking", "tool_use"] and outcome.stop_reason == "tool_use"
    carrier, tag, signature = message["content"][0]["signature"].split(":")
    assert (carrier, signature) == ("gm1", sig) and tag  # tagged with the model that issued it


def test_a_tool_call_without_an_id_gets_one_in_both_paths():
    """LiteLLM makes up ids for Gemini's calls; an answer without one (a dict from a library user)
    still gets a tool_use with an id, carrying the signature as usual."""
    sig = "U0lH"
    tool_call = {"function": {"name": "Bash", "arguments": '{"command": "ls"}'},
                 "provider_specific_fields": {"thought_signature": sig}}
    call = translate_request({"model": "gemini-2.5-flash", "max_tokens": 100, "tools": [BASH],
                              "messages": [{"role": "user", "content": "hi"}]}, SPEC)
    message, outcome = translate_response(litellm_response({"content": "Run it.", "tool_calls": [tool_call]},
                                                           "tool_calls"), call, SPEC, "msg_1")
    events = run_stream([chunk({"content": "Run it."}), chunk({"tool_calls": [{"index": 0, **tool_call}]}),
                         chunk(finish="tool_calls"), chunk(usage={"prompt_tokens": 10, "completion_tokens": 4})])
    for content in (message["content"], translator.collect(events)["content"]):
        assert [b["type"] for b in content] == ["text", "tool_use"]
        call_id, carried = translator.decode_tool_id(content[1]["id"])
        assert (call_id, carried.split(":")[-1]) == ("msg_1_1", sig)  # the signature, tagged with its model
        assert content[1]["input"] == {"command": "ls"} and content[1]["name"] == "Bash"
    assert outcome.stop_reason == "tool_use" and events[-2]["delta"]["stop_reason"] == "tool_use"


def test_stream_thinking_then_parallel_tools():
    sig = "c2lnLUFB+/=="
    events = run_stream([
        chunk({"reasoning_content": "I need "}), chunk({"reasoning_content": "two tools."}),
        chunk({"tool_calls": [{"index": 0, "id": "call_a__thought__x", "function": {"name": "Bash", "arguments": '{"command": "a"}'},
                               "provider_specific_fields": {"thought_signature": sig}},
                              {"index": 1, "id": "call_b", "function": {"name": "Bash", "arguments": '{"command": "b"}'}}]}),
        chunk(finish="tool_calls"), chunk(usage={"prompt_tokens": 12, "completion_tokens": 30,
                                                 "prompt_tokens_details": {"cached_tokens": 2}})])
    kinds = [(e["type"], e.get("delta", {}).get("type") or e.get("content_block", {}).get("type")) for e in events]
    assert kinds == [
        ("message_start", None), ("content_block_start", "thinking"), ("content_block_delta", "thinking_delta"),
        ("content_block_delta", "thinking_delta"), ("content_block_delta", "signature_delta"),
        ("content_block_stop", None), ("content_block_start", "tool_use"), ("content_block_delta", "input_json_delta"),
        ("content_block_stop", None), ("content_block_start", "tool_use"), ("content_block_delta", "input_json_delta"),
        ("content_block_stop", None), ("message_delta", None), ("message_stop", None)]
    assert events[4]["delta"]["signature"].startswith("gm1:") and events[4]["delta"]["signature"].endswith(":" + sig)
    first_tool = events[6]["content_block"]
    call_id, carried = translator.decode_tool_id(first_tool["id"])
    assert (call_id, carried.split(":")[-1]) == ("call_a", sig)
    assert events[-2]["delta"]["stop_reason"] == "tool_use"
    assert events[-2]["usage"] == {"input_tokens": 10, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 2,
                                   "output_tokens": 30}
    assert events[0]["message"]["usage"]["input_tokens"] == 7


def test_stream_arguments_in_fragments_and_disable_parallel():
    events = run_stream([
        chunk({"tool_calls": [{"index": 0, "id": "call_a", "function": {"name": "Bash", "arguments": '{"comm'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'and": "ls"}'}}]}),
        chunk({"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "Bash", "arguments": "{}"}}]}),
        chunk(finish="tool_calls"), chunk(usage={"prompt_tokens": 1, "completion_tokens": 1})],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True})
    partial = [e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta"]
    assert partial == ['{"comm', 'and": "ls"}']
    assert len([e for e in events if e["type"] == "content_block_start"]) == 1


# A chunk that reads as exactly one event of each type the table knows (End is finish()).
CHUNK_OF = {
    translator.ThinkingDelta: chunk({"reasoning_content": "t"}),
    translator.TextDelta: chunk({"content": "x"}),
    translator.ToolCallStart: chunk({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "Bash", "arguments": "{}"}}]}),
    translator.ToolCallDelta: chunk({"tool_calls": [{"index": 0, "function": {"arguments": " "}}]}),
    translator.Finish: chunk(finish="stop"),
    translator.Usage: {"choices": [], "usage": {"prompt_tokens": 1, "completion_tokens": 1}},
    translator.Grounding: {"vertex_ai_grounding_metadata": [{"webSearchQueries": ["q"]}]},
    translator.UrlContext: {"vertex_ai_url_context_metadata": [{"urlMetadata": []}]},
}


def test_every_transition_keeps_the_grammar():
    """Drive the machine through each (state, event type) pair of its table; each run ends with End."""
    into = {"idle": [], "thinking": [translator.ThinkingDelta], "text": [translator.TextDelta],
            "tool_use": [translator.ToolCallStart]}
    assert {state for state, _ in translator.TRANSITIONS} == set(into)
    for (state, kind), (_, next_state) in translator.TRANSITIONS.items():
        if kind is translator.End:
            assert next_state == "done"
            continue
        if kind is translator.HandOver:  # fed by the service, never read from a chunk (tests/test_fallbacks.py)
            assert next_state == "idle"
            continue
        assert [type(e) for e in translator.read_chunk(CHUNK_OF[kind])] == [kind]
        sequence = [CHUNK_OF[k] for k in into[state]] + [CHUNK_OF[kind]]
        events = run_stream(sequence + [chunk(finish="stop"), chunk(usage={"prompt_tokens": 1, "completion_tokens": 1})])
        assert events[-1]["type"] == "message_stop", (state, kind)


def test_the_reader_turns_chunks_into_events():
    sig = "U0lH"
    assert translator.read_chunk(chunk({"reasoning_content": "hm", "content": "Hi", "tool_calls": [
        {"index": 0, "id": "call_1", "function": {"name": "Bash", "arguments": "{}"},
         "provider_specific_fields": {"thought_signature": sig}},
        {"index": 1, "function": {"name": "Read", "arguments": ""}},      # no id: still a new call
        {"index": 1, "function": {"arguments": '{"p": 1}'}},               # a fragment of it
        {"index": 1, "function": {"arguments": ""}}]},                     # nothing: no event
        finish="tool_calls", usage={"prompt_tokens": 9, "completion_tokens": 2,
                                    "prompt_tokens_details": {"cached_tokens": 4}})) == [
        translator.Usage(9, 4, 2), translator.Finish("tool_calls", None), translator.ThinkingDelta("hm"),
        translator.TextDelta("Hi"), translator.ToolCallStart(0, "call_1", "Bash", "{}", sig),
        translator.ToolCallStart(1, None, "Read", "", None), translator.ToolCallDelta(1, '{"p": 1}')]
    # The service's last chunk: what LiteLLM's parser dropped (service/engines/upstream.py _raw_chunk).
    grounding = [{"webSearchQueries": ["q"]}]
    assert translator.read_chunk({"vertex_ai_grounding_metadata": grounding, "choices": [
        {"index": 0, "delta": None, "provider_specific_fields": {"native_finish_reason": "SAFETY"}}]}) == [
        translator.Finish(None, "SAFETY"), translator.Grounding(tuple(grounding))]
    assert translator.read_chunk({}) == [] and translator.read_chunk(chunk({})) == []
    # Objects that are neither dicts nor pydantic models are read by their attributes.
    plain = SimpleNamespace(choices=[SimpleNamespace(finish_reason="stop", delta=SimpleNamespace(content="Hi"))])
    assert translator.read_chunk(plain) == [translator.Finish("stop", None), translator.TextDelta("Hi")]


def test_driving_the_machine_out_of_order_is_refused():
    call = translate_request({"model": "gemini-2.5-flash", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}, SPEC)
    machine = StreamTranslator(call, SPEC, "msg_1")
    with pytest.raises(StreamProtocolError):
        machine.feed(chunk({"content": "x"}))
    machine.start()
    machine.finish()
    with pytest.raises(StreamProtocolError):
        machine.feed(chunk({"content": "late"}))


def test_argument_pieces_for_a_call_whose_block_closed_are_ignored():
    events = run_stream([
        chunk({"tool_calls": [{"index": 0, "id": "call_a", "function": {"name": "Bash", "arguments": '{"a": 1}'}}]}),
        chunk({"content": "then text"}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"late": true}'}}]}),
        chunk(finish="tool_calls"), chunk(usage={"prompt_tokens": 1, "completion_tokens": 1})])
    assert [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"] == ["tool_use", "text"]


@pytest.mark.parametrize("tool_id", ["toolu_gm" + "9" * 5000 + "_x", "toolu_gm1234567_abc"])
def test_absurd_carrier_ids_are_foreign_ids(tool_id):
    assert translator.decode_tool_id(tool_id) == (tool_id, None)


def test_google_search_grounding_becomes_web_search_blocks():
    call = translate_request({"model": "gemini-2.5-flash", "max_tokens": 100,
                              "messages": [{"role": "user", "content": "hi"}]}, SPEC)

    def search_blocks(grounding, message_id):
        response = {**litellm_response({"content": "x"}), "vertex_ai_grounding_metadata": grounding}
        message, _ = translate_response(response, call, SPEC, message_id)
        assert message["content"][0] == {"type": "text", "text": "x"}
        return message["content"][1:]

    grounding = [{"webSearchQueries": ["q one", "", "q two"],
                  "groundingChunks": [{"web": {"uri": "https://a.example/x", "title": "A"}},
                                      {"web": {"uri": "https://a.example/x", "title": "A again"}},
                                      {"retrievedContext": {"uri": "gs://not-a-web-page"}},
                                      {"web": {"uri": "https://b.example/", "title": "B"}}]}]
    blocks = search_blocks(grounding, "msg_abc")
    assert blocks == [
        {"type": "server_tool_use", "id": "srvtoolu_abc_0", "name": "web_search", "input": {"query": "q one"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_abc_0", "content": [
            {"type": "web_search_result", "url": "https://a.example/x", "title": "A", "encrypted_content": "",
             "page_age": None},
            {"type": "web_search_result", "url": "https://b.example/", "title": "B", "encrypted_content": "",
             "page_age": None}]},
        {"type": "server_tool_use", "id": "srvtoolu_abc_1", "name": "web_search", "input": {"query": "q two"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_abc_1", "content": []},
    ]
    # The same grounding seen twice (a stream can show it on two chunks) counts once.
    assert search_blocks(grounding + grounding, "msg_abc") == blocks
    # Grounding without a search (say, pages Gemini consulted on its own) is no search block.
    assert search_blocks([{"groundingChunks": [{"web": {"uri": "https://a.example/"}}]}], "msg_abc") == []
    assert search_blocks(None, "msg_abc") == [] and search_blocks([], "msg_abc") == []


def test_stream_reports_all_grounding_once_at_the_end():
    """Grounding may come on any chunk, in pieces, even on chunks with nothing else: the stream
    collects it and closes with the search blocks, after the text, as the non-streamed answer has them."""
    queries = {"vertex_ai_grounding_metadata": [{"webSearchQueries": ["q"]}]}
    pages = {"vertex_ai_grounding_metadata": [{"groundingChunks": [{"web": {"uri": "https://a.example/", "title": "A"}}]}]}
    events = run_stream([chunk({"reasoning_content": "hm"}), queries, chunk({"content": "x"}), pages,
                         {**chunk({"content": "y"}), **queries}, chunk(finish="stop"),
                         chunk(usage={"prompt_tokens": 1, "completion_tokens": 1})])
    starts = [e["content_block"] for e in events if e["type"] == "content_block_start"]
    assert [b["type"] for b in starts] == ["thinking", "text", "server_tool_use", "web_search_tool_result"]
    assert starts[3]["content"][0]["url"] == "https://a.example/"
    delta = next(e for e in events if e["type"] == "message_delta")
    assert delta["usage"]["server_tool_use"] == {"web_search_requests": 1, "web_fetch_requests": 0}
    assert delta["delta"]["stop_reason"] == "end_turn"
