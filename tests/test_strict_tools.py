"""`strict: true` tools through the real Anthropic Python SDK, the proxy and the strict fake Gemini: the
function-calling mode Gemini gets, and what happens to a call that still breaks a strict schema."""
from __future__ import annotations

import anthropic
import httpx
import pytest

from tests.sse_grammar import check_stream
from tests.test_fidelity import send

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
          "required": ["city"], "additionalProperties": False}
WEATHER = {"name": "get_weather", "description": "The forecast.", "input_schema": SCHEMA, "strict": True}
PLAIN = {"name": "get_time", "description": "The time.", "input_schema": {"type": "object", "properties": {}}}
HI = [{"role": "user", "content": "Weather in Paris?"}]
GOOD = ("get_weather", {"city": "Paris", "days": 2})
BAD = ("get_weather", {"town": "Paris", "days": 0})


@pytest.fixture
def client(proxy):
    return anthropic.Anthropic(base_url=proxy.url, api_key="sk", max_retries=0, timeout=60)


def calling_config(gemini, index=-1) -> dict:
    record = gemini.requests[index]
    assert record["status"] == 200, record["error"]
    return record["normalized"]["toolConfig"]["functionCallingConfig"]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize("tool_choice", [None, {"type": "auto"}], ids=["no_choice", "auto"])
def test_strict_tools_with_auto_get_gemini_validated_mode(client, gemini, stream, tool_choice):
    gemini.enqueue({"tool_calls": [GOOD]})
    choice = {"tool_choice": tool_choice} if tool_choice else {}
    message = send(client, stream, model="gemini-3.8-flash", max_tokens=300, messages=HI, tools=[WEATHER, PLAIN],
                   **choice)
    assert calling_config(gemini) == {"mode": "VALIDATED"}
    assert message.stop_reason == "tool_use" and message.content[0].input == {"city": "Paris", "days": 2}


@pytest.mark.parametrize("tool_choice,expected", [
    ({"type": "any"}, {"mode": "ANY"}),
    ({"type": "tool", "name": "get_weather"}, {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}),
    ({"type": "none"}, {"mode": "NONE"}),
])
def test_strict_tools_with_any_tool_or_none_keep_their_modes(client, gemini, tool_choice, expected):
    client.messages.create(model="gemini-2.5-flash", max_tokens=300, messages=HI, tools=[WEATHER],
                           tool_choice=tool_choice)
    assert calling_config(gemini) == expected


def test_tools_without_strict_keep_auto(client, gemini):
    client.messages.create(model="gemini-3.8-flash", max_tokens=300, messages=HI, tools=[{**WEATHER, "strict": False}],
                           tool_choice={"type": "auto"})
    assert calling_config(gemini) == {"mode": "AUTO"}


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_a_call_breaking_a_strict_schema_is_retried(client, gemini, stream):
    gemini.enqueue({"tool_calls": [BAD]}, {"tool_calls": [GOOD]})
    message = send(client, stream, model="gemini-3.8-flash", max_tokens=300, messages=HI, tools=[WEATHER])
    assert len(gemini.requests) == 2
    assert [(b.type, b.input) for b in message.content] == [("tool_use", {"city": "Paris", "days": 2})]


def test_a_call_breaking_a_strict_schema_twice_is_an_error_naming_it(client, gemini):
    gemini.enqueue({"tool_calls": [BAD]}, {"tool_calls": [BAD]})
    with pytest.raises(anthropic.InternalServerError) as caught:
        client.messages.create(model="gemini-3.8-flash", max_tokens=300, messages=HI, tools=[WEATHER])
    error = caught.value.body["error"]
    assert error["type"] == "api_error" and len(gemini.requests) == 2
    assert "a call of the strict tool 'get_weather' breaks its input_schema at $" in error["message"]
    assert "'city' is a required property" in error["message"]


def test_a_broken_call_after_text_already_streamed_ends_with_an_error_event(proxy, gemini):
    gemini.enqueue({"text": "Let me look that up.", "tool_calls": [BAD]})
    body = {"model": "gemini-3.8-flash", "max_tokens": 300, "messages": HI, "tools": [WEATHER], "stream": True}
    response = httpx.post(proxy.url + "/v1/messages", json=body, timeout=60,
                          headers={"x-api-key": "sk", "anthropic-version": "2023-06-01"})
    events = check_stream(response.content, expect_error=True)
    assert [e["type"] for e in events if e["type"] == "content_block_start"] == ["content_block_start"]
    error = events[-1]
    assert error["type"] == "error" and "strict tool 'get_weather'" in error["error"]["message"]


def test_a_call_of_a_tool_that_is_not_strict_is_passed_on_as_it_came(client, gemini):
    gemini.enqueue({"tool_calls": [BAD]})
    message = client.messages.create(model="gemini-3.8-flash", max_tokens=300, messages=HI,
                                     tools=[{**WEATHER, "strict": False}])
    assert message.content[0].input == {"town": "Paris", "days": 0} and len(gemini.requests) == 1


def test_strict_must_be_a_boolean(proxy, gemini):
    body = {"model": "gemini-3.8-flash", "max_tokens": 300, "messages": HI, "tools": [{**WEATHER, "strict": "yes"}]}
    response = httpx.post(proxy.url + "/v1/messages", json=body, timeout=60, headers={"x-api-key": "sk"})
    assert response.status_code == 400 and "tools.0.strict: must be a boolean" in response.json()["error"]["message"]
    assert gemini.requests == []
