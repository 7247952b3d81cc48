"""Structured outputs (output_config.format, the older output_format) through the real Anthropic Python
SDK, the proxy and the strict fake Gemini, which answers JSON that fits the response schema it gets."""
from __future__ import annotations

import json
from typing import Literal, Optional

import anthropic
import httpx
import jsonschema
import pytest
from pydantic import BaseModel, Field

from tests.conftest import FIXTURES
from tests.sse_grammar import check_stream

TITLE = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"],
         "additionalProperties": False}
BASH = {"name": "Bash", "description": "Run a command.",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}
HI = [{"role": "user", "content": "What is the weather in Paris?"}]


class Weather(BaseModel):
    city: str
    temperature_c: int = Field(ge=-90, le=60)
    conditions: Literal["sunny", "rain"]
    note: Optional[str] = None


@pytest.fixture
def client(proxy):
    return anthropic.Anthropic(base_url=proxy.url, api_key="sk", max_retries=0, timeout=60)


def generation_config(gemini) -> dict:
    record = gemini.requests[-1]
    assert record["status"] == 200, record["error"]
    return record["normalized"]["generationConfig"]


def post(proxy, body: dict, **headers: str) -> httpx.Response:
    return httpx.post(proxy.url + "/v1/messages", json=body, timeout=60,
                      headers={"x-api-key": "sk", "anthropic-version": "2023-06-01", **headers})


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_parse_with_a_pydantic_model(client, gemini, stream):
    body = dict(model="gemini-3.8-flash", max_tokens=500, messages=HI, output_format=Weather)
    if stream:
        with client.messages.stream(**body) as s:
            message = s.get_final_message()
    else:
        message = client.messages.parse(**body)
    assert message.parsed_output == Weather(city="", temperature_c=0, conditions="sunny")
    config = generation_config(gemini)
    assert config["responseMimeType"] == "application/json" and "responseSchema" not in config
    schema = config["responseJsonSchema"]
    assert schema["required"] == ["city", "temperature_c", "conditions"]
    assert schema["properties"]["note"]["type"] == ["string", "null"]
    assert schema["properties"]["conditions"] == {"type": "string", "enum": ["sunny", "rain"], "title": "Conditions"}
    assert [b.type for b in message.content] == ["text"] and message.stop_reason == "end_turn"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_output_config_format_as_a_dict(client, gemini, stream):
    fmt = {"type": "json_schema", "schema": TITLE}
    if stream:
        with client.messages.stream(model="gemini-3.8-flash", max_tokens=200, messages=HI,
                                    output_config={"format": fmt}) as s:
            message = s.get_final_message()
    else:
        message = client.messages.create(model="gemini-3.8-flash", max_tokens=200, messages=HI,
                                         output_config={"format": fmt, "effort": "low"})
    assert json.loads(message.content[0].text) == {"title": ""}
    assert generation_config(gemini)["responseJsonSchema"] == TITLE  # nothing Gemini cannot take: sent as it is


def test_the_older_output_format_field_with_the_beta_header(proxy, gemini):
    response = post(proxy, {"model": "gemini-3.8-flash", "max_tokens": 100, "messages": HI,
                            "output_format": {"type": "json_schema", "schema": TITLE}},
                    **{"anthropic-beta": "structured-outputs-2025-11-13"})
    assert response.status_code == 200, response.text
    assert json.loads(response.json()["content"][0]["text"]) == {"title": ""}
    assert generation_config(gemini)["responseJsonSchema"] == TITLE


def test_claude_code_title_request_is_answered_with_json(proxy, gemini):
    body = json.loads((FIXTURES / "13-interactive-title-request.json").read_text())
    assert body["output_config"]["format"]["schema"]["properties"] == {"title": {"type": "string"}}
    gemini.enqueue({"text": '{"title": "Add two and two"}'})
    with httpx.stream("POST", proxy.url + "/v1/messages?beta=true", json=body, timeout=60,
                      headers={"x-api-key": "sk", "anthropic-version": "2023-06-01"}) as response:
        raw = response.read()
    assert response.status_code == 200, raw
    events = check_stream(raw)
    text = "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta")
    assert json.loads(text) == {"title": "Add two and two"}
    config = generation_config(gemini)
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == body["output_config"]["format"]["schema"]


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_structured_output_with_tools_on_gemini_3(client, gemini, stream):
    gemini.enqueue({"tool_calls": [("Bash", {"command": "curl wttr.in/Paris"})]})
    body = dict(model="gemini-3.8-flash", max_tokens=500, tools=[BASH], output_format=Weather)
    send = (lambda **b: client.messages.stream(**b).__enter__().get_final_message()) if stream else \
        client.messages.parse
    first = send(messages=HI, **body)
    assert first.stop_reason == "tool_use" and first.parsed_output is None
    request = gemini.requests[-1]["normalized"]
    assert request["tools"][0]["functionDeclarations"][0]["name"] == "Bash"
    assert request["generationConfig"]["responseMimeType"] == "application/json"
    use = first.content[0]
    second = send(messages=[*HI, {"role": "assistant", "content": [use.model_dump(exclude_none=True)]},
                            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                                          "content": "Paris: sunny, 21 C"}]}], **body)
    assert second.parsed_output == Weather(city="", temperature_c=0, conditions="sunny")


def test_structured_output_with_tools_on_gemini_2_is_refused_before_gemini(client, gemini):
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.messages.parse(model="gemini-2.5-flash", max_tokens=100, messages=HI, tools=[BASH],
                              output_format=Weather)
    message = caught.value.body["error"]["message"]
    assert message.startswith("output_config.format: gemini-2.5-flash cannot give structured output") \
        and "Gemini 3" in message
    assert gemini.requests == []


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_structured_output_with_thinking(client, gemini, stream):
    gemini.enqueue({"thinking": "**Naming** A short title.", "text": '{"title": "Paris weather"}'})
    body = dict(model="gemini-2.5-flash", max_tokens=2000, messages=HI,
                thinking={"type": "enabled", "budget_tokens": 1024},
                output_config={"format": {"type": "json_schema", "schema": TITLE}})
    if stream:
        with client.messages.stream(**body) as s:
            message = s.get_final_message()
    else:
        message = client.messages.create(**body)
    assert [b.type for b in message.content] == ["thinking", "text"]
    assert json.loads(message.content[1].text) == {"title": "Paris weather"}
    config = generation_config(gemini)
    assert config["thinkingConfig"] == {"thinkingBudget": 1024, "includeThoughts": True}
    assert config["responseJsonSchema"] == TITLE


# A schema with what Gemini's responseJsonSchema does not honour: $ref with a sibling, const, oneOf, allOf, a
# constraint it ignores (told in the description); and a property named "strict", which LiteLLM's
# response_format would delete. The fake's answer (the smallest value fitting what it got) fits the client's.
CLIENT_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "strict": {"type": "boolean"},
        "kind": {"const": "report"},
        "place": {"$ref": "#/$defs/place", "description": "Where."},
        "value": {"oneOf": [{"type": "integer", "minimum": 1}, {"type": "null"}]},
        "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
        "both": {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
                           {"properties": {"b": {"type": "string"}}}]},
    },
    "required": ["strict", "kind", "place", "value", "tags", "both"],
    "$defs": {"place": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
}
SENT_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "strict": {"type": "boolean"},
        "kind": {"type": "string", "enum": ["report"]},
        "place": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                  "description": "Where."},
        "value": {"type": ["integer", "null"], "minimum": 1},
        "tags": {"type": "array", "items": {"type": "string"}, "description": "(constraint: uniqueItems: true)"},
        "both": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
                 "required": ["a"]},
    },
    "required": ["strict", "kind", "place", "value", "tags", "both"],
}


@pytest.mark.parametrize("model", ["gemini-3.8-flash", "gemini-flash-latest", "gemini-2.5-pro"])
def test_the_schema_is_rewritten_where_gemini_cannot_take_a_keyword(client, gemini, model):
    message = client.messages.create(model=model, max_tokens=300, messages=HI,
                                     output_config={"format": {"type": "json_schema", "schema": CLIENT_SCHEMA}})
    config = generation_config(gemini)
    assert config["responseJsonSchema"] == SENT_SCHEMA and "responseSchema" not in config
    jsonschema.Draft202012Validator(CLIENT_SCHEMA).validate(json.loads(message.content[0].text))


def keys(value) -> set:
    """Every key of every object in a JSON value."""
    if isinstance(value, dict):
        return set(value).union(*(keys(v) for v in value.values()))
    return set().union(*(keys(v) for v in value)) if isinstance(value, list) else set()


def nested(depth: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "object", "properties": {"a": schema}, "required": ["a"]}
    return schema


@pytest.mark.parametrize("schema", [
    nested(200),
    {"type": 5, "properties": [1, 2], "required": "a", "enum": [{}], "minimum": "5", "items": True},
    {"$ref": "#/$defs/a", "$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"allOf": [{"$ref": "#/$defs/a"}]}}},
    {"type": "object", "properties": {"next": {"$ref": "#"}}, "required": ["next"]},
], ids=["200_deep", "junk_keywords", "ref_cycle", "recursive_required"])
def test_any_schema_within_the_bounds_becomes_one_gemini_takes(proxy, gemini, schema):
    response = post(proxy, {"model": "gemini-3.8-flash", "max_tokens": 100, "messages": HI,
                            "output_config": {"format": {"type": "json_schema", "schema": schema}}})
    assert response.status_code == 200, response.text
    json.loads(response.json()["content"][0]["text"])
    assert "$ref" not in keys(generation_config(gemini)["responseJsonSchema"])  # inlined, the cycles cut


@pytest.mark.parametrize("fields,fragment", [
    ({"output_config": {"format": {"type": "json", "schema": TITLE}}}, "output_config.format.type: Input should be"),
    ({"output_config": {"format": {"type": "json_schema"}}}, "output_config.format.schema: Field required"),
    ({"output_config": {"format": {"type": "json_schema", "schema": "object"}}},
     "output_config.format.schema: Input should be a valid dictionary"),
    ({"output_config": {"format": "json"}}, "output_config.format: Input should be a valid dictionary"),
    ({"output_format": {"type": "json_schema", "schema": TITLE},
      "output_config": {"format": {"type": "json_schema", "schema": TITLE}}}, "output_format: give the format once"),
    ({"output_format": {"type": "xml", "schema": TITLE}}, "output_format.type"),
])
def test_an_invalid_format_is_a_400_naming_it(proxy, gemini, fields, fragment):
    response = post(proxy, {"model": "gemini-3.8-flash", "max_tokens": 100, "messages": HI, **fields})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and fragment in error["message"], error
    assert gemini.requests == []
