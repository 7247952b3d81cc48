"""The Anthropic Python SDK's streaming helpers, count_tokens, models.list and error classes, through the proxy.

tests/test_messages.py covers non-streaming ``messages.create``; here every answer is streamed
(``messages.stream``), and each raw stream the SDK read is also checked against the SSE grammar.
"""
from __future__ import annotations

import math

import anthropic
import httpx2
import pytest

from tests.fake_gemini import prompt_token_count
from tests.sse_grammar import check_stream

pytestmark = pytest.mark.e2e  # `-m "not e2e"` leaves the real clients out, this SDK with them

BASH = {"name": "Bash", "description": "Run a shell command.",
        "input_schema": {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                         "properties": {"command": {"type": "string"},
                                        "timeout": {"type": "number", "exclusiveMinimum": 0}},
                         "required": ["command"], "additionalProperties": False}}
READ = {"name": "Read", "description": "Read a file.",
        "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"},
                                                          "limit": {"type": "integer"}},
                         "required": ["file_path"]}}
HELLO = [{"role": "user", "content": "Say hello."}]


class TeeTransport(httpx2.HTTPTransport):
    """(anthropic 2.x is built on httpx2.) Keeps a copy of every response body the SDK reads, as it arrives on the wire."""

    def __init__(self) -> None:
        super().__init__()
        self.bodies: list[bytearray] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = super().handle_request(request)
        buffer = bytearray()
        self.bodies.append(buffer)
        inner = response.stream

        class Tee(httpx2.SyncByteStream):
            def __iter__(self):
                for chunk in inner:
                    buffer.extend(chunk)
                    yield chunk

            def close(self) -> None:
                inner.close()

        response.stream = Tee()
        return response


@pytest.fixture
def wire() -> TeeTransport:
    return TeeTransport()


def make_client(url: str, wire: TeeTransport | None = None, api_key: str = "sk-test") -> anthropic.Anthropic:
    http_client = httpx2.Client(transport=wire) if wire else None
    return anthropic.Anthropic(base_url=url, api_key=api_key, max_retries=0, http_client=http_client)


@pytest.fixture
def client(proxy, wire) -> anthropic.Anthropic:
    return make_client(proxy.url, wire)


def checked_stream(wire: TeeTransport) -> list[dict]:
    assert len(wire.bodies) == 1, f"{len(wire.bodies)} responses"
    return check_stream(bytes(wire.bodies[0]))


def test_stream_text(client, gemini, wire):
    text = "Streaming works, piece by piece, through the proxy."
    gemini.enqueue({"text": text, "text_chunks": 4})
    with client.messages.stream(model="claude-haiku-4-5", max_tokens=200, messages=HELLO) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == text
    assert len(pieces) >= 2, pieces  # it really streamed
    assert final.model == "claude-haiku-4-5"
    assert final.role == "assistant" and final.stop_reason == "end_turn" and final.stop_sequence is None
    assert [(b.type, b.text) for b in final.content] == [("text", text)]
    # Gemini's usageMetadata, as the fake computes it (see tests/fake_gemini.py).
    assert final.usage.input_tokens == prompt_token_count(gemini.requests[-1]["normalized"])
    assert final.usage.output_tokens == math.ceil(len(text) / 4)
    assert gemini.requests[-1]["path"] == "/v1beta/models/gemini-3.8-flash:streamGenerateContent"
    events = checked_stream(wire)
    assert sum(1 for e in events if e["type"] == "content_block_delta") == len(pieces)


def test_stream_tool_use_and_follow_up(client, gemini, wire):
    gemini.enqueue({"text": "Running both.", "tool_calls": [
        ("Bash", {"command": "ls -la /tmp", "timeout": 30}),
        ("Read", {"file_path": "/etc/hostname", "limit": 5})]})
    request = dict(model="claude-sonnet-5", max_tokens=1000, tools=[BASH, READ],
                   messages=[{"role": "user", "content": "list /tmp and read /etc/hostname"}])
    with client.messages.stream(**request) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert [b.type for b in final.content] == ["text", "tool_use", "tool_use"]
    assert final.content[0].text == "Running both."
    bash, read = final.content[1], final.content[2]
    assert (bash.name, bash.input) == ("Bash", {"command": "ls -la /tmp", "timeout": 30})
    assert (read.name, read.input) == ("Read", {"file_path": "/etc/hostname", "limit": 5})
    assert bash.id and read.id and bash.id != read.id
    events = checked_stream(wire)
    assert any(e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta" for e in events)

    # The follow-up, results in completion order (as Claude Code sends them), is accepted by Gemini 3.
    gemini.enqueue({"text": "Done."})
    request["messages"] = request["messages"] + [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in final.content]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": read.id, "content": "myhost\n"},
            {"type": "tool_result", "tool_use_id": bash.id, "content": "total 0\n", "is_error": False}]}]
    with client.messages.stream(**request) as stream:
        second = stream.get_final_message()
    assert second.stop_reason == "end_turn" and second.content[0].text == "Done."
    record = gemini.requests[-1]
    assert record["status"] == 200, record["error"]
    assert not record["used_dummy_signature"]
    calls = [p for p in record["normalized"]["contents"][-2]["parts"] if "functionCall" in p]
    assert calls[0]["thoughtSignature"] in gemini.issued_signatures
    responses = {p["functionResponse"]["name"]: p["functionResponse"]["response"]
                 for p in record["normalized"]["contents"][-1]["parts"]}
    assert responses == {"Bash": {"content": "total 0\n"}, "Read": {"content": "myhost\n"}}


def test_stream_thinking(client, gemini, wire):
    gemini.enqueue({"thinking": "First, consider the question carefully.", "text": "The answer is 4."})
    request = dict(model="claude-opus-4-8", max_tokens=4000, thinking={"type": "enabled", "budget_tokens": 2048},
                   messages=[{"role": "user", "content": "What is 2+2?"}])
    with client.messages.stream(**request) as stream:
        thinking_text = "".join(e.thinking for e in stream if e.type == "thinking")
        final = stream.get_final_message()
    assert thinking_text == "First, consider the question carefully."
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[0].thinking == "First, consider the question carefully."
    assert isinstance(final.content[0].signature, str) and final.content[0].signature
    assert final.content[1].text == "The answer is 4."
    assert final.stop_reason == "end_turn"
    sent = gemini.requests[-1]["normalized"]["generationConfig"]["thinkingConfig"]
    assert sent == {"includeThoughts": True, "thinkingLevel": "low"}  # budget 2048 -> low (spec/models.yaml)
    checked_stream(wire)

    # The thinking block goes back in the history of the next turn and is accepted.
    gemini.enqueue({"text": "Still 4."})
    request["messages"] = request["messages"] + [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in final.content]},
        {"role": "user", "content": "Sure?"}]
    with client.messages.stream(**request) as stream:
        assert stream.get_final_text() == "Still 4."
    assert gemini.requests[-1]["status"] == 200, gemini.requests[-1]["error"]


def test_count_tokens(client, gemini):
    request = dict(model="claude-sonnet-5", system="You are terse.", tools=[BASH, READ],
                   messages=[{"role": "user", "content": "list /tmp"}])
    counted = client.messages.count_tokens(**request)
    record = gemini.requests[-1]
    assert record["path"] == "/v1beta/models/gemini-3.1-pro-preview:countTokens" and record["status"] == 200
    assert counted.input_tokens == prompt_token_count(record["normalized"]["generateContentRequest"])
    # The count is what the same request then costs: Gemini's promptTokenCount on generateContent.
    with client.messages.stream(max_tokens=100, **request) as stream:
        used = stream.get_final_message().usage.input_tokens
    assert used == prompt_token_count(gemini.requests[-1]["normalized"])
    assert counted.input_tokens == used
    # Gemini's figure is passed through as it is.
    gemini.enqueue({"action": "countTokens", "total_tokens": 4321})
    assert client.messages.count_tokens(**request).input_tokens == 4321
    smaller = client.messages.count_tokens(model="claude-sonnet-5", messages=HELLO)
    assert 0 < smaller.input_tokens < counted.input_tokens
    with pytest.raises(anthropic.NotFoundError):
        client.messages.count_tokens(model="gpt-4o", messages=HELLO)


def test_models_list(client):
    models = list(client.models.list(limit=5))  # the SDK pages through after_id
    ids = [m.id for m in models]
    assert len(ids) == len(set(ids)) > 5
    assert {"claude-haiku", "claude-sonnet", "claude-opus", "gemini-3.8-flash", "gemini-2.5-flash"} <= set(ids)
    assert all(m.type == "model" and m.display_name for m in models)
    one = client.models.retrieve("gemini-2.5-flash")
    assert one.id == "gemini-2.5-flash"
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("gpt-4o")


def stream_hello(client: anthropic.Anthropic, model: str = "claude-haiku-4-5", **extra) -> None:
    with client.messages.stream(model=model, max_tokens=100, messages=HELLO, **extra) as stream:
        stream.get_final_message()


def test_400_bad_request(client, gemini):
    with pytest.raises(anthropic.BadRequestError) as caught:
        stream_hello(client, extra_body={"temperature": 1.5})  # Anthropic's range is 0..1
    assert caught.value.status_code == 400
    assert "temperature" in caught.value.body["error"]["message"]
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert not gemini.requests


def test_401_wrong_proxy_key(make_proxy, gemini):
    guarded = make_proxy(PROXY_API_KEY="secret-proxy-key")
    with pytest.raises(anthropic.AuthenticationError) as caught:
        stream_hello(make_client(guarded.url, api_key="wrong-key"))
    assert caught.value.status_code == 401
    assert caught.value.body["error"]["type"] == "authentication_error"
    assert not gemini.requests
    stream_hello(make_client(guarded.url, api_key="secret-proxy-key"))  # the right key passes
    assert len(gemini.requests) == 1


def test_404_unknown_model(client, gemini):
    with pytest.raises(anthropic.NotFoundError) as caught:
        stream_hello(client, model="gpt-4o")
    assert caught.value.status_code == 404
    assert "gpt-4o" in caught.value.body["error"]["message"]
    assert not gemini.requests


def test_429_rate_limited(make_proxy, gemini):
    proxy = make_proxy(UPSTREAM_RETRIES="0")
    gemini.enqueue({"error": {"code": 429, "message": "Quota exceeded for this minute.", "retry_delay": "7s"}})
    with pytest.raises(anthropic.RateLimitError) as caught:
        stream_hello(make_client(proxy.url))
    assert caught.value.status_code == 429
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    assert caught.value.response.headers["retry-after"] == "7"
    assert len(gemini.requests) == 1


def test_529_overloaded(make_proxy, gemini):
    proxy = make_proxy(UPSTREAM_RETRIES="0")
    gemini.enqueue({"error": {"code": 503, "message": "The model is overloaded. Please try again later."}})
    with pytest.raises(anthropic.InternalServerError) as caught:
        stream_hello(make_client(proxy.url))
    assert isinstance(caught.value, anthropic.OverloadedError)
    assert caught.value.status_code == 529
    assert caught.value.body["error"]["type"] == "overloaded_error"
