"""The same answer from LiteLLM, non-streamed (a real ``ModelResponse``) and streamed (real chunks),
translates to the same Message: ``translate_response`` and ``StreamTranslator`` + ``collect`` are one
pipeline. Against the fake Gemini; LiteLLM is not mocked."""
from __future__ import annotations

import os

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import litellm  # noqa: E402
import pytest  # noqa: E402

import translator  # noqa: E402
from tests.fake_gemini import FakeGemini  # noqa: E402

litellm.suppress_debug_info = True
pytestmark = pytest.mark.asyncio(loop_scope="session")
SPEC = translator.load_spec()
BASH = {"name": "Bash", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}


@pytest.fixture(scope="module")
def fake():
    with FakeGemini().start() as f:
        yield f


def without_tool_ids(message: dict) -> dict:
    """The Message with each tool_use id as the call id it carries (LiteLLM makes a new one per call,
    and the fake signs each answer anew), checked to carry a signature on Gemini 3."""
    content = []
    for block in message["content"]:
        if block["type"] == "tool_use":
            call_id, signature = translator.decode_tool_id(block["id"])
            assert call_id.startswith("call_") and (signature is not None) == message["model"].startswith("gemini-3")
            block = {**block, "id": "call"}
        content.append(block)
    return {**message, "content": content}


@pytest.mark.parametrize(("model", "answer", "fields", "blocks", "stop"), [
    ("gemini-3.8-flash", {"thinking": "Let me think.", "text": "Running it.", "tool_calls": [("Bash", {"command": "ls"})]},
     {"tools": [BASH]}, ["thinking", "text", "tool_use"], "tool_use"),
    ("gemini-2.5-flash", {"text": "Found it.", "grounding": {"queries": ["q1"], "sources": [["https://a.example/", "A"]]}},
     {"tools": [{"type": "web_search_20250305", "name": "web_search"}]},
     ["text", "server_tool_use", "web_search_tool_result"], "end_turn"),
    ("gemini-2.5-flash", {"text": "Hel", "finish_reason": "MAX_TOKENS"}, {}, ["text"], "max_tokens"),
])
async def test_a_response_and_its_stream_give_one_message(fake, model, answer, fields, blocks, stop):
    call = translator.translate_request({"model": model, "max_tokens": 1000,
                                         "messages": [{"role": "user", "content": "hi"}], **fields}, SPEC)
    kwargs = {k: v for k, v in call.kwargs.items() if k not in ("stream", "stream_options")}
    fake.enqueue(answer, answer)
    response = await litellm.acompletion(**kwargs, api_base=fake.base_url, api_key="test-key")
    message, outcome = translator.translate_response(response, call, SPEC, "msg_1")
    stream = await litellm.acompletion(**kwargs, api_base=fake.base_url, api_key="test-key", stream=True,
                                       stream_options={"include_usage": True})
    machine = translator.StreamTranslator(call, SPEC, "msg_1")
    events = machine.start()
    async for chunk in stream:
        events += machine.feed(chunk)
    events += machine.finish()
    assert without_tool_ids(message) == without_tool_ids(translator.collect(events))
    assert [b["type"] for b in message["content"]] == blocks
    assert outcome.stop_reason == machine.outcome.stop_reason == message["stop_reason"] == stop
    assert message["usage"]["output_tokens"] > 0
