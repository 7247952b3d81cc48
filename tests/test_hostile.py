"""Hardening: hostile and malformed requests, fuzzing, secrets, authentication, body size.

The corpus is data (tests/hostile_corpus.py). Every answer must come in bounded time, be a 2xx
for legitimate input, and otherwise an Anthropic-shaped 4xx whose message names what is wrong.
"""
from __future__ import annotations

import copy
import json
import logging
import re
import socket
import threading
import time
from typing import Any, Iterable

import h11
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import translator
from tests.hostile_corpus import CASES, COUNT, HELLO, MESSAGES, MODEL, Case, req, tool

TIMEOUT = 20.0
GEMINI_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.:-]{0,127}$")
MODEL_ACTIONS = ("generateContent", "streamGenerateContent", "countTokens")
ERROR_TYPES = {"invalid_request_error", "authentication_error", "permission_error", "not_found_error",
               "request_too_large", "rate_limit_error", "api_error", "timeout_error", "overloaded_error",
               "billing_error"}


# --- helpers ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def client(proxy) -> Iterable[httpx.Client]:
    with httpx.Client(base_url=proxy.url, timeout=TIMEOUT) as c:
        yield c


def send(client: httpx.Client, path: str, content: bytes, headers: dict | None = None,
         method: str = "POST") -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    try:
        response = client.request(method, path, content=content,
                                  headers={"content-type": "application/json", **(headers or {})})
    except httpx.TimeoutException:
        pytest.fail(f"{method} {path}: no answer within {TIMEOUT} s (hang)")
    except httpx.TransportError as exc:
        pytest.fail(f"{method} {path}: connection error {type(exc).__name__}: {exc}")
    return response, time.perf_counter() - started


def error_of(response: httpx.Response) -> dict:
    """The Anthropic error body, after checking its exact shape and the request-id header."""
    assert response.headers.get("content-type", "").startswith("application/json"), \
        f"error content-type {response.headers.get('content-type')!r}: {response.text[:300]}"
    try:
        body = response.json()
    except ValueError:
        pytest.fail(f"error body is not JSON: {response.text[:300]!r}")
    assert isinstance(body, dict) and set(body) == {"type", "error", "request_id"}, f"not Anthropic-shaped: {body}"
    assert body["type"] == "error"
    assert isinstance(body["error"], dict) and set(body["error"]) == {"type", "message"}, body
    assert body["error"]["type"] in ERROR_TYPES, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"].strip(), body
    assert isinstance(body["request_id"], str) and body["request_id"].startswith("req_"), body
    assert response.headers.get("request-id") == body["request_id"], \
        f"request-id header {response.headers.get('request-id')!r} != body {body['request_id']!r}"
    return body["error"]


def sse_events(text: str) -> list[tuple[str, dict]]:
    events = []
    for frame in text.replace("\r\n", "\n").split("\n\n"):
        lines = [line for line in frame.split("\n") if line]
        if not lines:
            continue
        name = next((line[7:] for line in lines if line.startswith("event: ")), None)
        data = "".join(line[6:] for line in lines if line.startswith("data: "))
        events.append((name, json.loads(data) if data else {}))
    return events


def check_success(response: httpx.Response, path: str, stream: bool) -> None:
    assert response.headers.get("request-id", "").startswith("req_")
    if path.startswith(COUNT):
        body = response.json()
        assert set(body) == {"input_tokens"} and isinstance(body["input_tokens"], int) and body["input_tokens"] > 0
        return
    if stream:
        assert response.headers["content-type"].startswith("text/event-stream")
        events = sse_events(response.text)
        names = [n for n, _ in events]
        assert "error" not in names, f"error event in a 200 stream: {response.text[-500:]}"
        assert names[0] == "message_start" and names[-1] == "message_stop", names
        text = "".join(d["delta"].get("text", "") for n, d in events if n == "content_block_delta")
        stop = [d["delta"]["stop_reason"] for n, d in events if n == "message_delta"]
        assert text == HELLO or stop == ["max_tokens"], (text, stop)
        return
    body = response.json()
    assert body["type"] == "message" and body["role"] == "assistant", body
    assert body["content"] == [{"type": "text", "text": HELLO}] or body["stop_reason"] == "max_tokens", body
    assert body["id"].startswith("msg_")


def model_calls(fake) -> list[dict]:
    return [r for r in fake.requests if r.get("action") in MODEL_ACTIONS]


def check_answer(case: Case, response: httpx.Response, fake) -> None:
    """The assertions every corpus case shares, given its answer."""
    assert response.status_code in case.statuses, \
        f"{case.name}: expected {case.statuses}, got {response.status_code}: {response.text[:400]}"
    if response.status_code == 200:
        body = case.body if isinstance(case.body, dict) else {}
        check_success(response, case.path, stream=body.get("stream") is True)
        calls = model_calls(fake)
        assert all(r["status"] == 200 for r in calls), [(r["status"], r["error"]) for r in calls]
        if not case.path.startswith(COUNT):  # count_tokens may fall back to a local estimate
            assert calls, f"{case.name}: a 200 without any call to Gemini"
    else:
        error = error_of(response)
        types = case.error_type if isinstance(case.error_type, tuple) else (case.error_type,)
        if case.error_type is not None:
            assert error["type"] in types, f"{case.name}: error type {error['type']!r}, expected {types}"
        assert 400 <= response.status_code < 500, f"{case.name}: {response.status_code} {error}"
        fragments = case.fragment if isinstance(case.fragment, tuple) else (case.fragment,)
        if case.fragment is not None:
            assert any(f.lower() in error["message"].lower() for f in fragments), \
                f"{case.name}: message {error['message']!r} names none of {fragments}"
    if case.upstream is False:
        assert model_calls(fake) == [], f"{case.name}: refused input reached Gemini"
    if case.upstream == "tool_names_valid":
        sent_names = [d["name"] for r in model_calls(fake) for t in r["normalized"].get("tools", [])
                      for d in t.get("functionDeclarations", [])]
        client_names = [t["name"] for t in case.body["tools"]]
        assert sent_names and all(GEMINI_NAME.match(n) for n in sent_names), sent_names
        assert not set(client_names) & set(sent_names), f"Gemini saw the client's invalid names: {sent_names}"


# --- 1. the corpus ------------------------------------------------------------------------------------

def test_corpus_is_large_enough():
    assert len(CASES) >= 70
    assert sum(c.path == COUNT for c in CASES) >= 5


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_corpus(case: Case, client, gemini):
    response, seconds = send(client, case.path, case.payload(), case.headers)
    assert seconds < TIMEOUT
    check_answer(case, response, gemini)


def test_leading_digit_tool_name_round_trips(client, gemini):
    """Gemini sees an alias it accepts; its call comes back under the client's name."""
    gemini.enqueue(lambda rec: {"tool_calls": [(rec["normalized"]["tools"][0]["functionDeclarations"][0]["name"],
                                                {"city": "Paris"})]})
    body = req(tools=[tool("1password_lookup")], tool_choice={"type": "tool", "name": "1password_lookup"})
    response, _ = send(client, MESSAGES, json.dumps(body).encode())
    assert response.status_code == 200, response.text
    message = response.json()
    assert message["stop_reason"] == "tool_use"
    assert [b["name"] for b in message["content"] if b["type"] == "tool_use"] == ["1password_lookup"]
    declared = model_calls(gemini)[-1]["normalized"]["tools"][0]["functionDeclarations"][0]["name"]
    assert GEMINI_NAME.match(declared) and declared != "1password_lookup"


def test_ref_fan_out_is_bounded(proxy, client, gemini):
    """A 2 KB schema whose $refs double at each of 15 levels must not become megabytes for Gemini, and must
    not stall the server (the translation runs on the event loop) while it is being converted."""
    levels = 15
    defs = {f"d{i}": {"type": "object", "properties": {"l": {"$ref": f"#/$defs/d{i + 1}"},
                                                       "r": {"$ref": f"#/$defs/d{i + 1}"}}} for i in range(levels)}
    defs[f"d{levels}"] = {"type": "string"}
    body = json.dumps(req(tools=[tool(schema={"$defs": defs, "$ref": "#/$defs/d0"})])).encode()
    result: dict[str, Any] = {}

    def slow() -> None:
        with httpx.Client(base_url=proxy.url, timeout=TIMEOUT) as other:
            try:
                result["response"] = other.post(MESSAGES, content=body)
            except httpx.HTTPError as exc:
                result["error"] = exc

    worker = threading.Thread(target=slow)
    worker.start()
    worst = 0.0
    while worker.is_alive():  # probe /health for as long as the request is in flight
        started = time.perf_counter()
        client.get("/health")
        worst = max(worst, time.perf_counter() - started)
    worker.join()
    assert "error" not in result, f"no answer: {result.get('error')!r}"
    response = result["response"]
    problems = []
    if response.status_code == 400:
        error_of(response)
    elif response.status_code == 200:
        sent = max(len(json.dumps(r["body"])) for r in model_calls(gemini))
        if sent >= 1_000_000:
            problems.append(f"a {len(body)}-byte request became a {sent}-byte Gemini request")
    else:
        problems.append(f"status {response.status_code}: {response.text[:300]}")
    if worst >= 1.0:
        problems.append(f"/health took {worst:.2f} s while the schema was converted (event loop blocked)")
    assert not problems, "; ".join(problems)


def test_refused_requests_keep_the_connection_usable(make_proxy):
    """A 401 answered before the body is read must not break the next request on a keep-alive connection
    (clients pool connections; the next request is sent as soon as the 401 arrives)."""
    server = make_proxy(PROXY_API_KEY="proxy-secret-0123456789")
    body = json.dumps(req()).encode()
    broken = []
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        for i in range(200):
            try:
                r = c.post(MESSAGES, content=body, headers={"x-api-key": "wrong", "content-type": "application/json"})
                assert r.status_code == 401
            except httpx.TransportError as exc:
                broken.append(f"#{i}: {type(exc).__name__}: {exc}")
    assert not broken, f"{len(broken)}/200 requests on a reused connection failed, e.g. {broken[:3]}"


# --- 2. fuzzing -----------------------------------------------------------------------------------------
# Valid conversations (tool rounds paired, thinking before tool calls, tools declared), then 0-3 mutations
# at random places: a value replaced by anything, a key or element removed, a junk key added, a value turned
# into its string form. A quarter of the examples stay valid and must get a 200.

scalars = (st.none() | st.booleans() | st.integers(-(2**40), 2**40)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
junk = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=5)
texts = st.text(max_size=24).map(lambda t: "w" + t)  # never empty or blank (Anthropic refuses those)
prop_names = st.text(alphabet="abcdefxyz_$-", min_size=1, max_size=6)
leaf_schemas = st.sampled_from([
    {"type": "string"}, {"type": "integer", "minimum": 0}, {"type": "boolean"}, {"type": "string", "enum": ["a", ""]},
    {"type": "number", "exclusiveMinimum": 0}, {"type": ["string", "null"]}, {"const": "fixed"}, {},
    {"$ref": "#/$defs/item"}, {"type": "string", "format": "uri"}, {"oneOf": [{"type": "string"}, {"type": "integer"}]},
    {"type": "array", "items": {"type": "string"}, "minItems": 1}, {"type": "null"}, {"not": {"type": "string"}}])
schemas = st.recursive(leaf_schemas, lambda inner: (
    st.fixed_dictionaries({"type": st.just("object"), "properties": st.dictionaries(prop_names, inner, max_size=3)},
                          optional={"additionalProperties": st.booleans(),
                                    "required": st.lists(prop_names, max_size=2)})
    | st.fixed_dictionaries({"type": st.just("array"), "items": inner})
    | st.fixed_dictionaries({"anyOf": st.lists(inner, min_size=1, max_size=3)})
    | st.fixed_dictionaries({"allOf": st.lists(inner, min_size=1, max_size=2)})), max_leaves=6)
root_schemas = st.builds(lambda props, req: {"$schema": "https://json-schema.org/draft/2020-12/schema",
                                             "type": "object", "properties": props, "required": req,
                                             "$defs": {"item": {"type": "object", "properties": {"next": {
                                                 "$ref": "#/$defs/item"}}}}},
                         st.dictionaries(prop_names, schemas, max_size=3), st.lists(prop_names, max_size=2))
tool_names = st.sampled_from(["get_weather", "Bash", "1tool", "read-file", "_x", "a" * 64, "T"])
PNG_DATA = "iVBORw0KGgoAAAANSUHEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg=="
result_blocks = st.one_of(
    st.builds(lambda t: {"type": "text", "text": t}, texts),
    st.builds(lambda t: {"type": "text", "text": t, "cache_control": {"type": "ephemeral"}}, texts),
    st.just({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_DATA}}),
    st.builds(lambda t: {"type": "document", "title": t, "source": {"type": "text", "media_type": "text/plain",
                                                                     "data": t}}, texts),
    st.builds(lambda t: {"type": "search_result", "source": "https://example.com", "title": t,
                         "content": [{"type": "text", "text": t}]}, texts))
user_blocks = result_blocks | st.builds(lambda t: {"type": "mid_conv_system", "content": [{"type": "text", "text": t}]},
                                        texts)


@st.composite
def valid_bodies(draw) -> dict:
    names = draw(st.lists(tool_names, unique=True, max_size=3))
    tools = [{"name": n, "description": draw(texts), "input_schema": draw(root_schemas)} for n in names]
    if draw(st.booleans()):
        tools.append(draw(st.sampled_from([{"type": "bash_20250124", "name": "bash"},
                                           {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
                                           {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"}])))
    callable_names = names + [t["name"] for t in tools if t.get("type", "").startswith(("bash", "text_editor"))]
    messages: list[dict] = []
    for turn in range(draw(st.integers(1, 3))):
        content = draw(texts | st.lists(user_blocks, min_size=1, max_size=3))
        if messages and messages[-1]["role"] == "user":  # no reply in between: add to that user turn
            as_blocks = [_as_blocks(messages[-1]["content"]), _as_blocks(content)]
            messages[-1]["content"] = as_blocks[0] + as_blocks[1]
        else:
            messages.append({"role": "user", "content": content})
        if draw(st.booleans()) and callable_names:
            calls = draw(st.lists(st.sampled_from(callable_names), min_size=1, max_size=2))
            ids = [f"toolu_{turn}_{i}" for i in range(len(calls))]
            blocks: list[dict] = []
            if draw(st.booleans()):
                blocks.append({"type": "thinking", "thinking": draw(texts), "signature": draw(st.text(max_size=20))})
            blocks += [{"type": "tool_use", "id": i, "name": n, "input": draw(st.dictionaries(prop_names, junk,
                                                                                             max_size=3))}
                       for i, n in zip(ids, calls)]
            messages.append({"role": "assistant", "content": blocks})
            messages.append({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": i, "is_error": draw(st.booleans()),
                 "content": draw(texts | st.lists(result_blocks, min_size=1, max_size=2))}
                for i in draw(st.permutations(ids))]})
        elif draw(st.booleans()):
            messages.append({"role": "assistant", "content": draw(texts)})
    if draw(st.booleans()) and messages[-1]["role"] == "user":
        messages.append({"role": draw(st.sampled_from(["assistant", "system"])), "content": draw(texts)})
    max_tokens = draw(st.integers(0, 100_000))
    body: dict[str, Any] = {"model": draw(st.sampled_from([MODEL, "claude-haiku-4-5", "claude-opus-4-8",
                                                           "gemini-2.5-flash", "gemini-3.5-flash"])),
                            "max_tokens": max_tokens, "messages": messages}
    optional = {
        "system": texts | st.lists(st.builds(lambda t: {"type": "text", "text": t}, texts), max_size=2),
        "tools": st.just(tools),
        "tool_choice": st.sampled_from([{"type": "auto"}, {"type": "any"}, {"type": "none"}]
                                       + [{"type": "tool", "name": n} for n in names]),
        "thinking": st.sampled_from([{"type": "adaptive"}, {"type": "disabled"},
                                     {"type": "adaptive", "display": "omitted"}])
        | st.builds(lambda b: {"type": "enabled", "budget_tokens": b}, st.integers(1024, max(1024, max_tokens))),
        "temperature": st.floats(0, 1), "top_p": st.floats(0, 1), "top_k": st.integers(0, 500),
        "stop_sequences": st.lists(texts, max_size=4), "metadata": st.builds(lambda t: {"user_id": t}, texts),
        "output_config": st.builds(lambda e: {"effort": e}, st.sampled_from(["low", "medium", "high", "xhigh", "max"])),
        "context_management": st.just({"edits": [{"type": "clear_tool_uses_20250919"}]}),
    }
    for key in draw(st.lists(st.sampled_from(sorted(optional)), unique=True, max_size=6)):
        body[key] = draw(optional[key])
    return body


def _as_blocks(content: str | list) -> list:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _places(value: Any, path: tuple = ()) -> list[tuple]:
    """Every (path) to a value inside ``value``, the root included."""
    places = [path]
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        places += _places(child, path + (key,))
    return places


@st.composite
def hostile_bodies(draw) -> dict:
    body = copy.deepcopy(draw(valid_bodies()))
    for _ in range(draw(st.sampled_from([0, 1, 1, 2, 3]))):
        path = draw(st.sampled_from(_places(body)[1:]))
        parent = body
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        action = draw(st.sampled_from(["replace", "replace", "delete", "add", "stringify", "empty"]))
        if action == "replace":
            parent[key] = draw(junk | st.sampled_from(["", "hologram", "tool_use", "tool_result", "thinking",
                                                        "image", "user", "assistant", "system", "enabled", -1,
                                                        2**70, 1.5]))
        elif action == "delete":
            del parent[key]
        elif action == "add" and isinstance(parent[key], dict):
            parent[key][draw(st.sampled_from(["type", "text", "id", "name", "input", "source", "content",
                                              "tool_use_id", "role", "extra"]))] = draw(junk)
        elif action == "stringify":
            parent[key] = json.dumps(parent[key])
        elif action == "empty" and isinstance(parent[key], (dict, list, str)):
            parent[key] = type(parent[key])()
    return body


FUZZ = dict(deadline=None, derandomize=True, database=None, suppress_health_check=list(HealthCheck))


@settings(max_examples=200, **FUZZ)
@given(body=hostile_bodies(), stream=st.booleans(), count=st.integers(0, 9))
def test_fuzz_proxy(proxy, fake, body, stream, count):
    fake.reset()
    body = {**body, "stream": stream}
    path = COUNT if count == 0 else MESSAGES  # one in ten goes to count_tokens
    with httpx.Client(base_url=proxy.url, timeout=TIMEOUT) as c:
        response, _ = send(c, path, json.dumps(body).encode())
    assert response.status_code < 500, f"{response.status_code} for {json.dumps(body)[:2000]}\n{response.text[:500]}"
    if response.status_code == 200:
        if path == MESSAGES and stream:
            names = [n for n, _ in sse_events(response.text)]
            assert "error" not in names and names[-1] == "message_stop", (names, json.dumps(body)[:2000])
    else:
        error_of(response)


@settings(max_examples=1000, **FUZZ)
@given(body=hostile_bodies() | junk)
def test_fuzz_translator(body):
    spec = _spec()
    try:
        translator.translate_request(body, spec)
    except translator.AnthropicError as error:
        assert 400 <= error.status < 500, error
        assert error.type in ERROR_TYPES and error.message


_SPEC: list = []


def _spec():
    if not _SPEC:
        _SPEC.append(translator.load_spec())
    return _SPEC[0]


# Size and shape attacks: one part of a request made as large as a bound of the tables (tools.yaml and
# content.yaml limits) times a factor: under, at, just over or far over it. Schema parts are placed at the
# root, nested, behind two $refs, in an anyOf alternative or in items. Every one must be a 200 or a 400
# (one naming a limit when a count is over its bound), in bounded time: never a 500 or a hang.
FACTORS = (0.5, 0.99, 1.0, 1.01, 1.5, 3.0)
SCHEMA_SHAPES = {
    "enum_values": lambda n: {"type": "string", "enum": [f"v{i}" for i in range(n)]},
    "properties": lambda n: {"type": "object", "properties": {f"p{i}": {"type": "string"} for i in range(n)}},
    "required": lambda n: {"type": "object", "properties": {"p0": {}}, "required": [f"p{i}" for i in range(n)]},
    "anyOf": lambda n: {"anyOf": [{"const": f"c{i}"} for i in range(n)]},
    "oneOf": lambda n: {"oneOf": [{"type": "object", "properties": {f"k{i}": {"type": "integer"}}} for i in range(n)]},
    "allOf": lambda n: {"allOf": [{"type": "string", "minLength": i} for i in range(n)]},
}
PLACES = {
    "root": lambda node: {"type": "object", "properties": {"x": node}},
    "nested": lambda node: {"type": "object", "properties": {"a": {"type": "object", "properties": {"x": node}}}},
    "two_refs": lambda node: {"type": "object", "$defs": {"d": node},
                              "properties": {"x": {"$ref": "#/$defs/d"}, "y": {"$ref": "#/$defs/d"}}},
    "alternative": lambda node: {"type": "object", "properties": {"x": {"anyOf": [{"type": "null"}, node]}}},
    "items": lambda node: {"type": "object", "properties": {"x": {"type": "array", "items": node}}},
}
TEXT = {"type": "text", "text": "x"}


def _fan_out(levels: int) -> dict:
    schema: dict = {"type": "string"}
    for _ in range(levels):
        schema = {"anyOf": [{"title": "a"}, {"title": "b"}], "type": "object", "properties": {"a": schema}}
    return {"type": "object", "properties": {"x": schema}}


def _answered(n: int, content: Any) -> list[dict]:
    calls = [{"type": "tool_use", "id": f"toolu_{i}", "name": "t", "input": {}} for i in range(n)]
    return [{"role": "user", "content": "go"}, {"role": "assistant", "content": calls},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"toolu_{i}", "content": content}
                                         for i in range(n)]}]


@st.composite
def inflated_bodies(draw) -> tuple[dict, bool]:
    """A request with one part inflated, and whether a count in it is over its per-item bound."""
    limits = {**dict(_spec().tools.limits), **dict(_spec().content.limits)}
    factor = draw(st.sampled_from(FACTORS))
    t = {"name": "t", "input_schema": {"type": "object"}}
    body: dict[str, Any] = {"model": MODEL, "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}],
                            "tools": [t]}
    shape = draw(st.sampled_from([*SCHEMA_SHAPES, "tools", "wide_tools", "fan_out", "messages", "content_blocks",
                                  "tool_result_blocks"]))
    bound = {"anyOf": "alternatives", "oneOf": "alternatives", "allOf": "alternatives", "wide_tools": "tools",
             "fan_out": "tools", "tool_result_blocks": "content_blocks"}.get(shape, shape)
    n = max(1, int(limits[bound] * factor))
    if shape in SCHEMA_SHAPES:
        t["input_schema"] = draw(st.sampled_from(list(PLACES.values())))(SCHEMA_SHAPES[shape](n))
    elif shape == "tools":
        body["tools"] = [{**t, "name": f"t{i}"} for i in range(n)]
    elif shape == "wide_tools":  # the request's schema_nodes budget, spread over tools of 50 properties each
        n = max(1, int(limits["schema_nodes"] / 51 * factor))
        body["tools"] = [{"name": f"t{i}", "input_schema": SCHEMA_SHAPES["properties"](50)} for i in range(n)]
    elif shape == "fan_out":
        n = draw(st.integers(1, 22))
        t["input_schema"] = _fan_out(n)
    elif shape == "messages":
        body["messages"] = [{"role": ("user", "assistant")[i % 2], "content": "x"} for i in range(n - 1 + n % 2)]
    elif shape == "content_blocks":
        body["messages"] = [{"role": "user", "content": [TEXT] * n}]
    else:
        body["messages"] = _answered(2, [TEXT] * max(1, n // 2 - 2))
    over = factor > 1 and shape not in ("wide_tools", "fan_out")
    return body, over


@settings(max_examples=60, **FUZZ)
@given(case=inflated_bodies())
def test_fuzz_sizes_translator(case):
    body, over = case
    started = time.perf_counter()
    try:
        translator.translate_request(body, _spec())
        assert not over, "a count over its bound was translated"
    except translator.AnthropicError as error:
        assert error.status == 400 and error.type == "invalid_request_error", error
        assert "limits." in error.message or not over, error.message
    assert time.perf_counter() - started < 5, f"{time.perf_counter() - started:.1f} s"


@settings(max_examples=15, **FUZZ)
@given(case=inflated_bodies(), stream=st.booleans())
def test_fuzz_sizes_proxy(proxy, fake, case, stream):
    fake.reset()
    body, over = case
    with httpx.Client(base_url=proxy.url, timeout=TIMEOUT) as c:
        response, _ = send(c, MESSAGES, json.dumps({**body, "stream": stream}).encode())
    assert response.status_code in (200, 400), f"{response.status_code}: {response.text[:500]}"
    if response.status_code == 400:
        assert "limits." in error_of(response)["message"] or not over
    else:
        assert not over


# --- 3. secrets -------------------------------------------------------------------------------------------

GEMINI_KEY = "AIzaFAKE-gemini-key-7c1e9b2d4f6a8c0e5b3d"
PROXY_KEY = "sk-proxy-FAKE-3b5d7f9a1c2e4a6b8d0f"
SECRET_MARKS = (GEMINI_KEY, PROXY_KEY, "7c1e9b2d4f6a8c0e5b3d", "3b5d7f9a1c2e4a6b8d0f")


def _leaks(text: str) -> list[str]:
    return [mark for mark in SECRET_MARKS if mark in text]


def test_secrets_never_leak(make_proxy, gemini, caplog, capfd):
    watched = [logging.getLogger(n) for n in ("proxy", "proxy.access", "proxy.upstream", "LiteLLM", "httpx")]
    levels = [lg.level for lg in watched]
    for lg in watched:
        lg.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    answers: list[str] = []

    def record(response: httpx.Response) -> httpx.Response:
        answers.append(f"{response.status_code} {dict(response.headers)} {response.text}")
        return response

    try:
        server = make_proxy(GEMINI_API_KEY=GEMINI_KEY, PROXY_API_KEY=PROXY_KEY, LOG_LEVEL="DEBUG",
                            REQUEST_TIMEOUT_SECONDS="1", RETRY_MAX_WAIT_SECONDS="0.2")
        unreachable = make_proxy(GEMINI_API_KEY=GEMINI_KEY, PROXY_API_KEY=PROXY_KEY, LOG_LEVEL="DEBUG",
                                 GEMINI_API_BASE="http://127.0.0.1:9", UPSTREAM_RETRIES="0")
        ok = {"x-api-key": PROXY_KEY}
        good = json.dumps(req()).encode()
        streamed = json.dumps(req(stream=True)).encode()
        counted = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}).encode()
        with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
            post = lambda content, headers=ok, path=MESSAGES: record(  # noqa: E731
                c.post(path, content=content, headers={"content-type": "application/json", **headers}))
            assert post(good).status_code == 200
            assert post(streamed).status_code == 200
            assert post(counted, path=COUNT).status_code == 200
            for code in (400, 429, 500, 503):
                gemini.enqueue({"error": {"code": code, "message": f"scripted failure {code}"}})
                post(good)  # 429/503 (and perhaps 500) are retried: the answer may be a 200
                gemini.enqueue({"error": {"code": code, "message": f"scripted failure {code}"}})
                post(streamed)
            for code in (400, 403, 429):
                gemini.enqueue({"error": {"code": code, "message": f"API key not valid: bad key {GEMINI_KEY}"}})
                key_error = post(good)  # a 429 is retried and may end as a 200
                assert (code == 429 or key_error.status_code >= 400) and not _leaks(key_error.text), key_error.text
                gemini.enqueue({"error": {"code": code, "message": f"bad key {GEMINI_KEY}"}})
                assert not _leaks(post(streamed).text)
            gemini.enqueue({"action": "countTokens", "error": {"code": 400, "message": f"bad key {GEMINI_KEY}"}})
            post(counted, path=COUNT)
            gemini.enqueue({"text": "one two three four five six seven", "text_chunks": 5, "cut_after_chunks": 2})
            post(streamed)
            gemini.enqueue({"text": "late", "delay_s": 2})
            post(good)  # REQUEST_TIMEOUT_SECONDS=1
            assert post(b"{not json").status_code == 400
            assert post(json.dumps(req(model=5)).encode()).status_code == 400
            close = {"connection": "close"}  # see test_refused_requests_keep_the_connection_usable
            assert post(good, headers=close).status_code == 401
            assert post(good, headers={**close, "x-api-key": PROXY_KEY[:-1]}).status_code == 401
            assert post(good, headers={**close, "authorization": PROXY_KEY}).status_code == 401
            assert post(good, headers={**close, "x-api-key": GEMINI_KEY}).status_code == 401
            record(c.get("/v1/models", headers={"authorization": f"Bearer {PROXY_KEY}"}))
        with httpx.Client(base_url=unreachable.url, timeout=TIMEOUT) as c:
            for content in (good, streamed):
                record(c.post(MESSAGES, content=content, headers={**ok, "content-type": "application/json"}))
            record(c.post(COUNT, content=counted, headers={**ok, "content-type": "application/json"}))
    finally:
        for lg, level in zip(watched, levels):
            lg.removeHandler(caplog.handler)
            lg.setLevel(level)
    out, err = capfd.readouterr()
    logged = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert len(answers) >= 30
    leaks = {"responses": [a[:300] for a in answers if _leaks(a)],
             "log records": [ln for ln in logged.splitlines() if _leaks(ln)][:5],
             "stdout/stderr": [ln for ln in (out + err).splitlines() if _leaks(ln)][:5]}
    assert not any(leaks.values()), f"secret leaked: {leaks}"
    # The Gemini key did reach the fake (so the test drove real upstream calls).
    assert any(GEMINI_KEY in json.dumps([r.get("headers"), r.get("query")], default=str) for r in gemini.requests)


# --- 4. authentication -------------------------------------------------------------------------------------

def test_authentication(make_proxy, gemini):
    key = "proxy-secret-0123456789"
    server = make_proxy(PROXY_API_KEY=key)
    body = json.dumps(req()).encode()
    counted = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}).encode()
    endpoints = [("POST", MESSAGES, body, 200), ("POST", MESSAGES + "?beta=true", body, 200),
                 ("POST", COUNT, counted, 200), ("GET", "/v1/models", b"", 200),
                 ("GET", "/v1/models/x", b"", 404), ("HEAD", "/", b"", 200)]
    refused = {"none": {}, "wrong x-api-key": {"x-api-key": "nope"}, "wrong bearer": {"authorization": "Bearer nope"},
               "empty x-api-key": {"x-api-key": ""}, "bearer without scheme": {"authorization": key},
               "basic scheme": {"authorization": f"Basic {key}"}, "key with suffix": {"x-api-key": key + "x"},
               "key prefix": {"x-api-key": key[:-1]}, "x-api-key with Bearer": {"x-api-key": f"Bearer {key}"},
               "key in another header": {"api-key": key}, "key in query": {}}
    accepted = {"x-api-key": {"x-api-key": key}, "bearer": {"authorization": f"Bearer {key}"},
                "bearer lower-case": {"authorization": f"bearer {key}"},
                # Claude Code may send both headers; one right key is enough.
                "stale x-api-key, right bearer": {"x-api-key": "stale", "authorization": f"Bearer {key}"}}
    problems = []

    def call(c: httpx.Client, method: str, url: str, content: bytes, headers: dict,
             label: str) -> httpx.Response | None:
        try:
            # One connection per request: reuse after an early 401 is tested on its own (below).
            base = {"connection": "close", **({"content-type": "application/json"} if content else {})}
            return c.request(method, url, content=content or None, headers={**base, **headers})
        except httpx.TransportError as exc:
            problems.append(f"{method} {url} [{label}]: {type(exc).__name__}: {exc}")
            return None

    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        assert c.get("/health").status_code == 200
        for method, path, content, success in endpoints:
            for label, headers in refused.items():
                url = path + (("&" if "?" in path else "?") + f"api_key={key}" if label == "key in query" else "")
                r = call(c, method, url, content, headers, label)
                if r is None:
                    continue
                if r.status_code != 401:
                    problems.append(f"{method} {path} [{label}]: {r.status_code}")
                elif method != "HEAD":
                    error = error_of(r)
                    if error["type"] != "authentication_error":
                        problems.append(f"{method} {path} [{label}]: type {error['type']}")
            for label, headers in accepted.items():
                r = call(c, method, path, content, headers, label)
                if r is not None and r.status_code != success:
                    problems.append(f"{method} {path} [{label}]: {r.status_code}, expected {success}")
    assert not problems, "\n".join(problems)


# --- 5. body size --------------------------------------------------------------------------------------------

class RawConnection:
    """One HTTP/1.1 connection driven by hand with h11, to see what httpx hides: whether the server
    keeps the connection after an answer, and bodies that arrive in pieces or never."""

    def __init__(self, url: str) -> None:
        address = httpx.URL(url)
        self.sock = socket.create_connection((address.host, address.port), timeout=TIMEOUT)
        self.http = h11.Connection(h11.CLIENT)

    def request(self, path: str, parts: list[bytes], length: int | None = None) -> None:
        """Send a POST; with `length` the body is declared, without it it goes chunked."""
        framing = [("content-length", str(length))] if length is not None else [("transfer-encoding", "chunked")]
        self._send(h11.Request(method="POST", target=path,
                               headers=[("host", "proxy"), ("content-type", "application/json"), *framing]))
        for part in parts:
            self._send(h11.Data(data=part))
        if length is None or length == sum(map(len, parts)):
            self._send(h11.EndOfMessage())

    def response(self) -> tuple[int, dict]:
        status, body = 0, b""
        while True:
            try:
                event = self.http.next_event()
            except h11.RemoteProtocolError:  # the socket closed in the middle of the exchange
                event = h11.ConnectionClosed()
            if event is h11.NEED_DATA:
                self.http.receive_data(self.sock.recv(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                return status, json.loads(body)
            elif isinstance(event, h11.ConnectionClosed):
                pytest.fail("the proxy closed the connection without an answer")

    def reusable(self) -> bool:
        """True when both sides may go on with another request on this connection."""
        try:
            self.http.start_next_cycle()
        except h11.LocalProtocolError:
            return False
        return True

    def _send(self, event: Any) -> None:
        self.sock.sendall(self.http.send(event) or b"")

    def close(self) -> None:
        self.sock.close()


def test_body_size_limit(make_proxy, gemini):
    server = make_proxy(MAX_BODY_BYTES="2000")
    small = json.dumps(req(messages=[{"role": "user", "content": "x" * 1500}])).encode()
    big = json.dumps(req(messages=[{"role": "user", "content": "x" * 3000}])).encode()
    assert len(small) < 2000 < len(big) < 3200
    connection = RawConnection(server.url)
    try:
        for path, parts, length in ((MESSAGES, [big], len(big)),  # declared too large
                                    (COUNT, [big], len(big)),
                                    # chunked, so only reading it shows the size; sent in pieces
                                    (MESSAGES, [big[:1000], big[1000:2000], big[2000:]], None)):
            connection.request(path, parts, length)
            status, body = connection.response()
            assert status == 413, (path, status, body)
            assert body["error"]["type"] == "request_too_large" and "2000" in body["error"]["message"]
            # The over-long body was read, not left unread: the connection serves the next request.
            assert connection.reusable(), f"{path}: the connection was closed after the 413"
        connection.request(MESSAGES, [small], len(small))
        assert connection.response()[0] == 200
    finally:
        connection.close()
    assert [r["status"] for r in model_calls(gemini)] == [200]  # only the small body reached Gemini


@pytest.mark.parametrize("path, status", [("/v1/nothing", 404), ("/health", 405)])
def test_unread_bodies_are_read_before_an_early_answer(proxy, path, status):
    """Answers that never needed the body (unknown path, wrong method) still read it first."""
    body = json.dumps(req(messages=[{"role": "user", "content": "x" * 5_000_000}])).encode()
    connection = RawConnection(proxy.url)
    try:
        for n in range(3):  # h11 notices a close only on the next exchange: the last one shows it
            connection.request(path, [body[:1000], body[1000:]], None)
            assert connection.response()[0] == status, n
            assert connection.reusable(), f"{path}: the connection was closed after the {status}"
    finally:
        connection.close()


def test_body_far_over_the_limit_is_refused_without_reading_it(make_proxy, gemini):
    """Past twice the limit the proxy answers at once (the connection then closes). A client that
    waits with ``Expect: 100-continue`` still sends the body: Hypercorn says "continue" by itself."""
    server = make_proxy(MAX_BODY_BYTES="2000")
    connection = RawConnection(server.url)
    try:
        connection.request(MESSAGES, [], 10**9)  # only the headers: the answer must not wait for 1 GB
        status, body = connection.response()
    finally:
        connection.close()
    assert status == 413 and body["error"]["type"] == "request_too_large"
    assert model_calls(gemini) == []


def test_body_that_never_arrives_times_out(make_proxy, gemini):
    server = make_proxy(BODY_TIMEOUT_SECONDS="0.5")
    connection = RawConnection(server.url)
    try:
        connection.request(MESSAGES, [b'{"model": '], 100)  # 10 of the 100 bytes promised
        started = time.perf_counter()
        status, body = connection.response()
    finally:
        connection.close()
    assert status == 408 and body["error"]["type"] == "timeout_error", (status, body)
    assert "0.5 seconds" in body["error"]["message"]
    assert time.perf_counter() - started < TIMEOUT / 2
    assert model_calls(gemini) == []


# --- after everything: still serving ----------------------------------------------------------------------------

def test_zz_still_serving_after_the_corpus(client, gemini):
    for body, stream in ((req(), False), (req(stream=True), True)):
        response, _ = send(client, MESSAGES, json.dumps(body).encode())
        assert response.status_code == 200, response.text
        check_success(response, MESSAGES, stream)
    response, _ = send(client, COUNT, json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
                       .encode())
    assert response.status_code == 200 and response.json()["input_tokens"] > 0
    assert client.get("/health").json() == {"status": "ok"}
