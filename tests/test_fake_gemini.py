"""Tests of tests/fake_gemini.py, driven through LiteLLM (the real client path) and raw httpx."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import time

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

import httpx  # noqa: E402
import litellm  # noqa: E402
import pytest  # noqa: E402

from tests.fake_gemini import DEFAULT_TEXT, DUMMY_SIGNATURE, FakeGemini  # noqa: E402

litellm.suppress_debug_info = True
pytestmark = pytest.mark.asyncio(loop_scope="session")

G25 = "gemini/gemini-2.5-pro"
G38 = "gemini/gemini-3.8-flash"
KEY = {"x-goog-api-key": "test-key"}
BASH_TOOL = {"type": "function", "function": {
    "name": "Bash", "description": "Run a shell command.",
    "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}}
PNG_1PX = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")


def canon_tokens(obj) -> int:
    """The documented promptTokenCount formula, written independently of the fake."""
    return math.ceil(len(json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)) / 4)


@pytest.fixture(scope="module")
def fake():
    with FakeGemini().start() as f:
        yield f


@pytest.fixture(autouse=True)
def _reset(fake):
    fake.reset()
    yield


@pytest.fixture
async def http(fake):
    async with httpx.AsyncClient(base_url=fake.root_url, timeout=5) as c:
        yield c


async def acomp(fake, model=G25, **kw):
    kw.setdefault("messages", [{"role": "user", "content": "hi"}])
    return await litellm.acompletion(model=model, api_base=fake.base_url, api_key="test-key", **kw)


async def collect(stream):
    return [c async for c in stream]


def body(contents, **extra):
    return {"contents": contents, **extra}


USER_HI = {"role": "user", "parts": [{"text": "hi"}]}


# --------------------------------------------------------------------------------------------- text + usage
async def test_text_non_stream_exact_usage(fake):
    resp = await acomp(fake, messages=[{"role": "system", "content": "You are terse."},
                                       {"role": "user", "content": "Say hello."}])
    expected_prompt = canon_tokens({"contents": [{"role": "user", "parts": [{"text": "Say hello."}]}],
                                    "systemInstruction": {"parts": [{"text": "You are terse."}]}})
    assert expected_prompt == 30
    assert resp.choices[0].message.content == DEFAULT_TEXT
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage.prompt_tokens == 30
    assert resp.usage.completion_tokens == math.ceil(len(DEFAULT_TEXT) / 4) == 7
    assert resp.usage.total_tokens == 37
    rec = fake.requests[-1]
    assert (rec["action"], rec["status"], rec["error"], rec["query"]) == ("generateContent", 200, None, "")
    assert rec["headers"]["x-goog-api-key"] == "test-key"
    assert "system_instruction" in rec["body"] and "systemInstruction" in rec["normalized"]


async def test_text_stream_usage_thinking_and_cache(fake):
    fake.enqueue({"thinking": "Let me think about it.", "text": "abcdefghijklmnopqrst", "text_chunks": 4,
                  "usage": {"cachedContentTokenCount": 3}})
    chunks = await collect(await acomp(fake, stream=True, stream_options={"include_usage": True}))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert pieces == ["abcde", "fghij", "klmno", "pqrst"]
    reasoning = "".join(getattr(c.choices[0].delta, "reasoning_content", None) or "" for c in chunks if c.choices)
    assert reasoning == "Let me think about it."
    usage = chunks[-1].usage
    prompt = canon_tokens({"contents": [USER_HI]})
    assert prompt == 14
    assert usage.prompt_tokens == 14
    assert usage.completion_tokens == 5 + 6  # ceil(20/4) + ceil(22/4) thoughts
    assert usage.completion_tokens_details.reasoning_tokens == 6
    assert usage.prompt_tokens_details.cached_tokens == 3
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]


async def test_raw_stream_shape(fake, http):
    async with http.stream("POST", "/v1beta/models/gemini-3.8-flash:streamGenerateContent?alt=sse",
                           headers=KEY, json=body([USER_HI])) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        raw = (await r.aread()).decode()
    frames = raw.split("\r\n\r\n")
    assert frames[-1] == ""
    chunks = [json.loads(f.removeprefix("data: ")) for f in frames[:-1]]
    texts = [c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks]
    assert texts == ["Hello fr", "om the f", "ake Gemi", "ni."]
    assert [("finishReason" in c["candidates"][0], "usageMetadata" in c) for c in chunks] == \
        [(False, False)] * 3 + [(True, True)]
    assert len({c["responseId"] for c in chunks}) == 1 and all(c["modelVersion"] == "gemini-3.8-flash" for c in chunks)
    # Gemini 3: signature on the last part of a text answer only
    assert [("thoughtSignature" in c["candidates"][0]["content"]["parts"][0]) for c in chunks] == [False] * 3 + [True]
    assert chunks[-1]["candidates"][0]["content"]["parts"][0]["thoughtSignature"] in fake.issued_signatures
    assert chunks[-1]["usageMetadata"] == {"promptTokenCount": 14, "candidatesTokenCount": 7, "totalTokenCount": 21}


async def test_grounding_only_when_the_request_searches(fake, http):
    grounding = {"queries": ["q"], "sources": [["https://a.example/", "A"]]}
    url = "/v1beta/models/gemini-3.8-flash:streamGenerateContent?alt=sse"
    fake.enqueue({"text": "Grounded.", "grounding": grounding}, {"text": "Not asked.", "grounding": grounding})
    found = []
    for tools in ([{"googleSearch": {}}], None):
        request = body([USER_HI]) | ({"tools": tools} if tools else {})
        async with http.stream("POST", url, headers=KEY, json=request) as r:
            chunks = [json.loads(f.removeprefix("data: ")) for f in (await r.aread()).decode().split("\r\n\r\n")[:-1]]
        found.append([c["candidates"][0].get("groundingMetadata") for c in chunks])
    assert found[0][:-1] == [None] * (len(found[0]) - 1)  # with the last chunk, as Gemini sends it
    assert found[0][-1] == {"webSearchQueries": ["q"], "searchEntryPoint": {"renderedContent": "<div>search suggestions</div>"},
                            "groundingChunks": [{"web": {"uri": "https://a.example/", "title": "A"}}],
                            "groundingSupports": [{"segment": {"startIndex": 0, "endIndex": 9, "text": "Grounded."},
                                                   "groundingChunkIndices": [0]}]}
    assert set(map(str, found[1])) == {"None"}


# --------------------------------------------------------------------------------------------- tools + signatures
async def test_tool_round_trip_gemini3_signatures(fake, http):
    fake.enqueue({"thinking": "I should list files.", "tool_calls": [("Bash", {"command": "ls"})]})
    msgs = [{"role": "user", "content": "list the files"}]
    resp = await acomp(fake, G38, messages=msgs, tools=[BASH_TOOL])
    msg = resp.choices[0].message
    assert resp.choices[0].finish_reason == "tool_calls"
    tc = msg.tool_calls[0]
    assert (tc.function.name, json.loads(tc.function.arguments)) == ("Bash", {"command": "ls"})
    sig = tc.provider_specific_fields["thought_signature"]
    assert sig in fake.issued_signatures and any(ch in sig for ch in "+/=")
    # LiteLLM up to 1.106 sent its gemini-3 default temperature 1.0; 1.110 leaves Gemini's default alone.
    assert "generationConfig" not in fake.requests[-1]["body"]

    # 1. follow-up as LiteLLM returned it: the signature goes back and is accepted; callable spec echoes the result
    fake.enqueue(lambda rec: {"text": "echo " + json.dumps(
        rec["normalized"]["contents"][-1]["parts"][0]["functionResponse"]["response"])})
    follow = msgs + [msg.model_dump(), {"role": "tool", "tool_call_id": tc.id, "content": "a.txt b.txt"}]
    resp2 = await acomp(fake, G38, messages=follow, tools=[BASH_TOOL])
    assert resp2.choices[0].message.content == 'echo {"content": "a.txt b.txt"}'
    rec = fake.requests[-1]
    assert (rec["status"], rec["used_dummy_signature"]) == (200, False)
    model_turn = rec["normalized"]["contents"][1]
    fc_part = next(p for p in model_turn["parts"] if "functionCall" in p)
    assert fc_part["thoughtSignature"] == sig

    # 2. signature removed: LiteLLM inserts the dummy, which the fake accepts but flags
    bare = {"role": "assistant", "content": None, "tool_calls": [
        {"id": "toolu_1", "type": "function", "function": {"name": "Bash", "arguments": '{"command": "ls"}'}}]}
    await acomp(fake, G38, messages=msgs + [bare, {"role": "tool", "tool_call_id": "toolu_1", "content": "x"}],
                tools=[BASH_TOOL])
    rec = fake.requests[-1]
    assert (rec["status"], rec["used_dummy_signature"]) == (200, True)
    sent = rec["normalized"]["contents"][1]["parts"][0]
    assert sent["thoughtSignature"] == DUMMY_SIGNATURE and sent["functionCall"]["id"] == "toolu_1"

    # 3. raw body without any signature -> 400 naming the call; forged / other-model signatures -> corrupted
    raw = rec["body"]
    del raw["contents"][1]["parts"][0]["thoughtSignature"]
    url = "/v1beta/models/gemini-3.8-flash:generateContent"
    r = await http.post(url, headers=KEY, json=raw)
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["status"] == "INVALID_ARGUMENT" and err["code"] == 400
    assert err["message"].startswith("Function call is missing a thought_signature in functionCall parts.")
    assert "`default_api:Bash`" in err["message"] and "position 2" in err["message"]
    assert fake.requests[-1]["error"] == err["message"]
    raw["contents"][1]["parts"][0]["thoughtSignature"] = base64.b64encode(b"forged" * 20).decode()
    r = await http.post(url, headers=KEY, json=raw)
    assert (r.status_code, r.json()["error"]["message"]) == (400, "Corrupted thought signature.")
    raw["contents"][1]["parts"][0]["thoughtSignature"] = sig  # issued for gemini-3.8-flash ...
    r = await http.post("/v1beta/models/gemini-3.7-flash:generateContent", headers=KEY, json=raw)
    assert (r.status_code, r.json()["error"]["message"]) == (400, "Corrupted thought signature.")
    r = await http.post(url, headers=KEY, json=raw)  # ... and valid there
    assert r.status_code == 200
    # older turns are not checked: add a new real user turn after the tool result
    del raw["contents"][1]["parts"][0]["thoughtSignature"]
    raw["contents"].append({"role": "model", "parts": [{"text": "done"}]})
    raw["contents"].append({"role": "user", "parts": [{"text": "thanks"}]})
    r = await http.post(url, headers=KEY, json=raw)
    assert r.status_code == 200


async def test_parallel_calls_signature_on_first_only(fake, http):
    fake.enqueue({"tool_calls": [("Bash", {"command": "ls"}), ("Bash", {"command": "pwd"})]})
    resp = await acomp(fake, G38, tools=[BASH_TOOL])
    tcs = resp.choices[0].message.tool_calls
    assert len(tcs) == 2
    assert tcs[0].provider_specific_fields["thought_signature"] in fake.issued_signatures
    assert not (getattr(tcs[1], "provider_specific_fields", None) or {}).get("thought_signature")
    fake.enqueue({"tool_calls": [("Bash", {"command": "ls"}), ("Bash", {"command": "pwd"})]})
    r = await http.post("/v1beta/models/gemini-3.8-flash:generateContent", headers=KEY, json=body([USER_HI]))
    parts = r.json()["candidates"][0]["content"]["parts"]
    assert ["thoughtSignature" in p for p in parts] == [True, False]
    # Gemini 2.5 also signs the first call (never checks), but no text signature
    fake.enqueue({"tool_calls": [("Bash", {"command": "ls"})]}, {"text": "t"})
    r = await http.post("/v1beta/models/gemini-2.5-pro:generateContent", headers=KEY, json=body([USER_HI]))
    assert "thoughtSignature" in r.json()["candidates"][0]["content"]["parts"][0]
    r = await http.post("/v1beta/models/gemini-2.5-pro:generateContent", headers=KEY, json=body([USER_HI]))
    assert "thoughtSignature" not in r.json()["candidates"][0]["content"]["parts"][0]


# --------------------------------------------------------------------------------------------- strictness (raw)
def _decl_body(params, n_before=0):
    decls = [{"name": f"t{i}", "parameters": {"type": "object"}} for i in range(n_before)]
    decls.append({"name": "Bash", "parameters": params})
    return body([USER_HI], tools=[{"function_declarations": decls}])


@pytest.mark.parametrize("kw,val", [("additionalProperties", False), ("const", "x"), ("$schema", "s"),
                                    ("oneOf", [{"type": "string"}]), ("exclusiveMinimum", 0),
                                    ("propertyNames", {"pattern": "^a"})])
async def test_schema_keyword_rejected(fake, http, kw, val):
    params = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "object", kw: val}}}
    r = await http.post("/v1beta/models/gemini-2.5-pro:generateContent", headers=KEY, json=_decl_body(params, 3))
    assert r.status_code == 400
    msg = r.json()["error"]["message"]
    assert msg == (f'Invalid JSON payload received. Unknown name "{kw}" at '
                   "'tools[0].function_declarations[3].parameters.properties[1].value': Cannot find field.")


@pytest.mark.parametrize("params,needle", [
    ({"type": ["string", "null"]}, "Proto field is not repeating, cannot start list."),
    ({"type": "object", "properties": {"a": {"type": "array"}}}, "items: missing field"),
    ({"type": "object", "properties": {"a": {"type": "string", "enum": [1, 2]}}}, "enum[0]"),
    ({"type": "object", "properties": {"a": {"type": "string", "format": "uri"}}}, "format 'uri'"),
    ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]}, "property is not defined"),
    ({"type": "object", "properties": {"": {"type": "string"}}}, "property name must not be empty"),
])
async def test_schema_rules(fake, http, params, needle):
    r = await http.post("/v1beta/models/gemini-2.5-pro:generateContent", headers=KEY, json=_decl_body(params))
    assert r.status_code == 400 and needle in r.json()["error"]["message"]


async def test_schema_accepts_litellm_cleaned_and_json_schema(fake, http):
    nasty = {"$schema": "x", "type": "object", "additionalProperties": False, "properties": {
        "a": {"type": ["string", "null"]}, "b": {"oneOf": [{"type": "string"}]}, "c": {"const": 3},
        "d": {"type": "string", "format": "email"}}, "required": ["a"]}
    tool = {"type": "function", "function": {"name": "weird.tool:v1-x", "parameters": nasty}}
    await acomp(fake, tools=[tool])
    assert fake.requests[-1]["status"] == 200
    raw = body([USER_HI], tools=[{"functionDeclarations": [{"name": "x", "parametersJsonSchema": nasty}]},
                                 {"googleSearch": {}}])
    r = await http.post("/v1beta/models/gemini-2.5-pro:generateContent", headers=KEY, json=raw)
    assert r.status_code == 200


async def test_pairing_and_content_rules(fake, http):
    url = "/v1beta/models/gemini-2.5-pro:generateContent"
    call = {"role": "model", "parts": [{"functionCall": {"name": "Bash", "args": {}}},
                                       {"functionCall": {"name": "Read", "args": {}}}]}
    resp1 = {"role": "user", "parts": [{"functionResponse": {"name": "Bash", "response": {"x": 1}}}]}
    cases = [
        (body([USER_HI, call, resp1]), "number of function response parts is equal to the number of function call"),
        (body([USER_HI, call, {"role": "user", "parts": [{"text": "no"}]}]), "number of function response parts"),
        (body([USER_HI, resp1]), "function response turn comes immediately after a function call turn"),
        (body([USER_HI, {"role": "model", "parts": [{"functionCall": {"name": "Bash"}}]},
               {"role": "user", "parts": [{"functionResponse": {"name": "Read", "response": {}}}]}]),
         "match the function call parts"),
        (body([USER_HI, {"role": "model", "parts": [{"functionCall": {"name": "Bash"}}]},
               {"role": "user", "parts": [{"functionResponse": {"name": "Bash", "response": "str"}}]}]),
         "must be an object"),
        (body([USER_HI, {"role": "model", "parts": []}]), "contents.parts must not be empty"),
        (body([]), "contents is not specified"),
        (body([USER_HI], system_instruction={"parts": []}), "contents.parts must not be empty"),
        (body([{"role": "user", "parts": [{"text": "a", "inline_data": {"mime_type": "image/png", "data": PNG_1PX}}]}]),
         "oneof field 'data' is already set"),
        (body([{"role": "user", "parts": [{"inline_data": {"data": PNG_1PX}}]}]), "mime_type must not be empty"),
        (body([{"role": "user", "parts": [{"inline_data": {"mime_type": "image/png", "data": "@@not b64"}}]}]),
         "Base64 decoding failed"),
        (body([{"role": "assistant", "parts": [{"text": "a"}]}]), "valid role"),
        (body([USER_HI], frobnicate=1), 'Unknown name "frobnicate": Cannot find field.'),
        (body([USER_HI, {"role": "model", "parts": [{"functionCall": {"id": "c1", "name": "Bash"}}]},
               {"role": "user", "parts": [{"functionResponse": {"name": "Bash", "response": {}}}]}]),
         'Unknown name "id"'),
        (body([USER_HI], generationConfig={"stopSequences": list("abcdef")}), "at most 5"),
        (body([USER_HI], generation_config={"thinking_config": {"thinkingLevel": "LOW"}}), "Thinking level"),
        (body([USER_HI], generationConfig={"maxTokens": 5}), 'Unknown name "maxTokens" at \'generation_config\''),
    ]
    for payload, needle in cases:
        r = await http.post(url, headers=KEY, json=payload)
        assert r.status_code == 400, (payload, r.text)
        err = r.json()["error"]
        assert err["status"] == "INVALID_ARGUMENT" and needle in err["message"], (needle, err["message"])
    assert len(fake.requests) == len(cases) and all(rec["error"] for rec in fake.requests)
    # the same shapes in mixed snake/camel case are accepted; function role too
    ok = body([USER_HI, {"role": "model", "parts": [{"function_call": {"name": "Bash", "args": {"a": 1}}}]},
               {"role": "function", "parts": [{"functionResponse": {"name": "Bash", "response": {"b": 2}}}]}],
              systemInstruction={"parts": [{"text": "s"}]},
              generation_config={"maxOutputTokens": 10, "top_p": 0.5, "thinkingConfig": {"thinking_budget": 128}})
    r = await http.post(url, headers=KEY, json=ok)
    assert r.status_code == 200, r.text
    # rejections come before any streamed byte: a plain JSON 400 even for streamGenerateContent
    r = await http.post("/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse", headers=KEY, json=body([]))
    assert (r.status_code, r.headers["content-type"].split(";")[0]) == (400, "application/json")
    assert r.json()["error"]["message"] == "* GenerateContentRequest.contents: contents is not specified"


async def test_gif_and_max_tokens_rejected_through_litellm(fake):
    gif = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/gif;base64,R0lGODlhAQABAAAAACw="}}]}]
    with pytest.raises(litellm.BadRequestError, match="Unsupported MIME type: image/gif"):
        await acomp(fake, messages=gif)
    png = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64," + PNG_1PX}}]}]
    await acomp(fake, messages=png)  # LiteLLM adds a {"text": " "} part; accepted
    assert fake.requests[-1]["status"] == 200
    with pytest.raises(litellm.BadRequestError) as ei:
        await acomp(fake, max_tokens=70000)
    assert ("it has a maxOutputTokens value of 70000 but the supported range is from 1 (inclusive) to 65537 "
            "(exclusive)") in str(ei.value)
    r = await acomp(fake, "gemini/gemini-2.0-flash", max_tokens=8192)
    assert r.choices[0].message.content == DEFAULT_TEXT
    with pytest.raises(litellm.BadRequestError, match="to 8193 \\(exclusive\\)"):
        await acomp(fake, "gemini/gemini-2.0-flash", max_tokens=8193)


async def test_thinking_and_sampling_rules_38_flash(fake, http):
    # LiteLLM maps reasoning_effort="minimal" to "low" for 3.8 flash, so it never hits the rule itself
    await acomp(fake, G38, reasoning_effort="minimal")
    assert fake.requests[-1]["body"]["generationConfig"]["thinkingConfig"]["thinkingLevel"] == "low"
    url = "/v1beta/models/gemini-3.8-flash:generateContent"
    cases = [({"thinkingConfig": {"thinkingLevel": "MINIMAL"}}, "thinking level MINIMAL is not supported by this model"),
             ({"thinkingConfig": {"thinkingLevel": "LOW", "thinkingBudget": 100}}, "only one of thinking budget"),
             ({"temperature": 0.5}, "`temperature`"), ({"top_p": 0.9}, "`top_p`"), ({"topK": 3}, "`top_k`")]
    for gc, needle in cases:
        r = await http.post(url, headers=KEY, json=body([USER_HI], generationConfig=gc))
        assert r.status_code == 400 and needle in r.json()["error"]["message"], (gc, r.text)
    r = await http.post(url, headers=KEY, json=body([USER_HI], generationConfig={"temperature": 1.0}))
    assert r.status_code == 200
    r = await http.post("/v1beta/models/gemini-3-flash-preview:generateContent", headers=KEY,
                        json=body([USER_HI], generationConfig={"temperature": 0.3, "thinkingConfig": {
                            "thinkingLevel": "minimal"}}))
    assert r.status_code == 200


async def test_auth_404_and_context_limit(fake, http):
    url = "/v1beta/models/gemini-2.5-pro:generateContent"
    r = await http.post(url, json=body([USER_HI]))
    assert (r.status_code, r.json()["error"]["status"]) == (403, "PERMISSION_DENIED")
    assert r.json()["error"]["message"].startswith("Method doesn't allow unregistered callers")
    r = await http.post(url, headers={"x-goog-api-key": "invalid-key"}, json=body([USER_HI]))
    assert (r.status_code, r.json()["error"]["message"]) == (400, "API key not valid. Please pass a valid API key.")
    r = await http.get("/v1beta/models/gemini-2.5-pro:cachedContents", headers=KEY)
    assert (r.status_code, r.json()["error"]["status"]) == (404, "NOT_FOUND")
    assert fake.requests[-1]["path"] == "/v1beta/models/gemini-2.5-pro:cachedContents"
    fake.enqueue({"input_limit": 10, "text": "never"})
    with pytest.raises(litellm.ContextWindowExceededError,  # LiteLLM recognises the message
                       match=r"The input token count \(14\) exceeds the maximum number of tokens allowed \(10\)\."):
        await acomp(fake)
    assert (await acomp(fake)).choices[0].message.content == DEFAULT_TEXT  # that spec was consumed


# --------------------------------------------------------------------------------------------- errors, finish reasons
async def test_429_with_retry_delay(fake):
    fake.enqueue({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Quota exceeded.",
                            "retry_delay": "7s"}})
    with pytest.raises(litellm.RateLimitError) as ei:
        await acomp(fake)
    assert ei.value.status_code == 429
    assert '"retryDelay": "7s"' in str(ei.value) and "Quota exceeded." in str(ei.value)
    fake.enqueue({"error": {"code": 429, "retry_delay": "7s"}})
    with pytest.raises(Exception) as ei:  # stream: raised at the first __anext__, wrapped by LiteLLM
        await collect(await acomp(fake, stream=True))
    assert getattr(ei.value, "status_code", None) == 429
    assert fake.requests[-1]["status"] == 429 and fake.requests[-1]["action"] == "streamGenerateContent"


async def test_safety_and_prompt_blocked(fake, http):
    fake.enqueue({"finish_reason": "SAFETY", "text": "ignored"})
    resp = await acomp(fake)
    assert resp.choices[0].finish_reason == "content_filter" and resp.choices[0].message.content is None
    fake.enqueue({"finish_reason": "SAFETY"})
    cand = (await http.post("/v1beta/models/gemini-2.5-pro:generateContent", headers=KEY,
                            json=body([USER_HI]))).json()["candidates"][0]
    assert "content" not in cand and cand["finishReason"] == "SAFETY" and cand["safetyRatings"]
    fake.enqueue({"prompt_blocked": "SAFETY"})
    chunks = await collect(await acomp(fake, stream=True))
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == \
        ["content_filter"]
    fake.enqueue({"finish_reason": "MAX_TOKENS", "text": "partial"})
    resp = await acomp(fake)
    assert (resp.choices[0].finish_reason, resp.choices[0].message.content) == ("length", "partial")


# --------------------------------------------------------------------------------------------- faults + disconnects
async def test_cut_after_chunks(fake):
    fake.enqueue({"text": "abcdefghijklmnop", "text_chunks": 4, "cut_after_chunks": 2})
    got = []
    with pytest.raises(Exception, match="Response payload is not completed"):
        async for c in await acomp(fake, stream=True):
            if c.choices and c.choices[0].delta.content:
                got.append(c.choices[0].delta.content)
    assert got == ["abcd", "efgh"]
    rec = fake.requests[-1]
    assert (rec["status"], rec["cut"], rec["error"], rec["disconnected"]) == (200, True, None, False)


async def test_malformed_chunk_silently_truncates_litellm_stream(fake):
    fake.enqueue({"text": "abcdefghijklmnop", "text_chunks": 4, "malformed_chunk_after": 2})
    chunks = await collect(await acomp(fake, stream=True))
    assert [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content] == ["abcd", "efgh"]
    # LiteLLM swallows the bad line and everything after it, then synthesises a normal "stop" (no error!)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert fake.requests[-1]["status"] == 200 and not fake.requests[-1]["disconnected"]


async def test_hang_client_disconnect_detected(fake):
    fake.enqueue({"hang": True})
    task = asyncio.create_task(acomp(fake))
    assert await fake.wait_for_async(lambda r: len(r) == 1 and r[0]["action"] == "generateContent")
    cancelled_at = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await fake.wait_for_async(lambda r: r[0]["disconnected"], timeout=1.0)
    rec = fake.requests[0]
    assert rec["finished_at"] - cancelled_at < 1.0 and rec["status"] is None


async def test_mid_stream_disconnect_detected(fake, http):
    fake.enqueue({"text": "abcdefghijklmnop", "text_chunks": 4, "chunk_delay_s": 5})
    async with http.stream("POST", "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse", headers=KEY,
                           json=body([USER_HI])) as r:
        first = await r.aiter_raw().__anext__()
        assert b'"abcd"' in first
    closed_at = time.monotonic()  # leaving the block closes the connection
    assert await fake.wait_for_async(lambda reqs: reqs[0]["disconnected"], timeout=1.0)
    assert fake.requests[0]["status"] == 200 and fake.requests[0]["finished_at"] - closed_at < 1.0


async def test_delay_and_queue_order(fake):
    fake.enqueue({"text": "one", "delay_s": 0.05}, {"text": "two"})
    t0 = time.monotonic()
    assert (await acomp(fake)).choices[0].message.content == "one"
    assert time.monotonic() - t0 >= 0.05
    assert (await acomp(fake)).choices[0].message.content == "two"
    assert (await acomp(fake)).choices[0].message.content == DEFAULT_TEXT


# --------------------------------------------------------------------------------------------- countTokens
async def test_count_tokens_both_forms_match_generate(fake, http):
    contents = [{"role": "user", "parts": [{"text": "How many tokens is this?"}]}]
    r = await http.post("/v1beta/models/gemini-2.5-pro:countTokens", headers=KEY, json={"contents": contents})
    assert r.json() == {"totalTokens": canon_tokens({"contents": contents})} == {"totalTokens": 19}
    system = {"parts": [{"text": "Be brief."}]}
    tools = [{"functionDeclarations": [{"name": "Bash", "parameters": {
        "type": "OBJECT", "properties": {"command": {"type": "STRING"}}, "required": ["command"]}}]}]
    gcr = {"model": "models/gemini-2.5-pro", "contents": contents, "systemInstruction": system, "tools": tools}
    r = await http.post("/v1beta/models/gemini-2.5-pro:countTokens", headers=KEY, json={"generateContentRequest": gcr})
    n = r.json()["totalTokens"]
    assert n == canon_tokens({"contents": contents, "systemInstruction": system, "tools": tools})
    # the same request in LiteLLM's mixed snake_case gives the same promptTokenCount
    snake = {"contents": contents, "system_instruction": system,
             "tools": [{"function_declarations": tools[0]["functionDeclarations"]}]}
    r = await http.post("/v1beta/models/gemini-2.5-pro:generateContent", headers=KEY, json=snake)
    assert r.json()["usageMetadata"]["promptTokenCount"] == n
    r = await http.post("/v1beta/models/gemini-2.5-pro:countTokens", headers=KEY,
                        json={"contents": [{"role": "user", "parts": []}]})
    assert r.status_code == 400 and "must not be empty" in r.json()["error"]["message"]
    assert [rec["action"] for rec in fake.requests] == ["countTokens", "countTokens", "generateContent", "countTokens"]


# --------------------------------------------------------------------------------------------- issue 12: strictness
def _gen(model="gemini-2.5-pro"):
    return f"/v1beta/models/{model}:generateContent"


async def _status(http, payload, model="gemini-2.5-pro"):
    r = await http.post(_gen(model), headers=KEY, json=payload)
    return r.status_code, (r.json()["error"]["message"] if r.status_code != 200 else r.json())


BASH_DECL = {"functionDeclarations": [{"name": "Bash", "parameters": {"type": "object"}}]}


@pytest.mark.parametrize("config,needle", [
    ({"mode": "VALIDATED", "allowedFunctionNames": ["Bash"]}, None),
    ({"mode": "ANY", "allowed_function_names": ["Bash"]}, None),
    ({"mode": "VALIDATED"}, None),
    ({"mode": "NONE"}, None),
    ({"mode": "AUTO", "allowedFunctionNames": []}, None),
    ({"mode": "AUTO", "allowedFunctionNames": ["Bash"]},
     "allowed_function_names should only be set when the function calling mode is ANY or VALIDATED (mode: AUTO)"),
    ({"mode": "NONE", "allowedFunctionNames": ["Bash"]}, "(mode: NONE)"),
    ({"allowedFunctionNames": ["Bash"]}, "(mode: AUTO)"),
    ({"mode": "VALIDATED", "allowedFunctionNames": ["Read"]},
     "allowed_function_names should be a subset of the provided function_declarations (not declared: Read)"),
    ({"mode": "SOMETIMES"}, "Invalid value at 'tool_config.function_calling_config.mode'"),
    ({"mode": "ANY", "allowedFunctionNames": "Bash"}, "expected a list of strings"),
    ({"mode": "ANY", "strict": True}, 'Unknown name "strict" at \'tool_config.function_calling_config\''),
])
async def test_function_calling_modes(fake, http, config, needle):
    status, answer = await _status(http, body([USER_HI], tools=[BASH_DECL],
                                              toolConfig={"functionCallingConfig": config}))
    if needle is None:
        assert status == 200, answer
    else:
        assert status == 400 and needle in answer, answer


async def test_litellm_tool_choice_modes_are_accepted(fake):
    for choice, expected in (({"type": "function", "function": {"name": "Bash"}},
                              {"mode": "ANY", "allowedFunctionNames": ["Bash"]}),
                             ("required", {"mode": "ANY"}), ("none", {"mode": "NONE"})):
        await acomp(fake, tools=[BASH_TOOL], tool_choice=choice)
        rec = fake.requests[-1]
        assert rec["status"] == 200 and rec["normalized"]["toolConfig"]["functionCallingConfig"] == expected


TITLE_SCHEMA = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"],
                "additionalProperties": False}


@pytest.mark.parametrize("gc,needle", [
    ({"responseJsonSchema": TITLE_SCHEMA},
     "response_mime_type must be set to `application/json` when response_json_schema is set (got `text/plain`)"),
    ({"responseMimeType": "text/plain", "responseSchema": {"type": "STRING"}},
     "a compatible response_mime_type must be set when response_schema is set"),
    ({"responseMimeType": "text/x.enum", "responseSchema": {"type": "STRING"}}, "got `text/x.enum`"),
    ({"responseMimeType": "application/json", "responseSchema": {"type": "STRING"}, "responseJsonSchema": {}},
     "response_schema must not be set when response_json_schema is set."),
    ({"responseMimeType": "text/html"}, "allowed mimetypes are `text/plain`, `application/json`, `application/xml`, "
                                        "`application/yaml` and `text/x.enum`."),
    ({"responseMimeType": "application/json", "responseSchema": TITLE_SCHEMA},
     'Unknown name "additionalProperties" at \'generation_config.response_schema\''),
    ({"responseMimeType": "application/json", "responseJsonSchema": "object"}, "the schema must be a JSON object"),
    ({"responseMimeType": "application/json", "responseJsonSchema": {
        "type": "object", "properties": {"a": {"$ref": "#/$defs/a", "description": "x"}}, "$defs": {"a": {}}}},
     "no other properties except those starting with $ may be set (found description)"),
    ({"responseMimeType": "application/json", "responseJsonSchema": {"$ref": "#/$defs/missing"}},
     "$ref '#/$defs/missing' does not resolve"),
    ({"responseMimeType": "application/json", "responseJsonSchema": {"$ref": "https://example.com/s.json"}},
     "only local references are followed"),
    ({"responseMimeType": "application/json", "responseJsonSchema": {
        "$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"}}, "required": ["next"]}},
        "$ref": "#/$defs/node"}},
     "cyclic $ref '#/$defs/node' in a required property"),
])
async def test_response_schema_rules(fake, http, gc, needle):
    status, answer = await _status(http, body([USER_HI], generationConfig=gc))
    assert status == 400 and needle in answer, answer


@pytest.mark.parametrize("schema", [
    TITLE_SCHEMA,
    {"type": "object", "properties": {"n": {"type": "integer", "minimum": 3, "maximum": 9},
                                      "x": {"type": "number", "exclusiveMinimum": 1.5},
                                      "when": {"type": "string", "format": "date-time"},
                                      "tags": {"type": "array", "items": {"type": "string", "minLength": 2},
                                               "minItems": 2},
                                      "kind": {"enum": ["b", "a"]}, "fixed": {"const": {"k": [1]}},
                                      "maybe": {"type": ["null", "string"]}, "flag": {"type": "boolean"},
                                      "unused": {"type": "string"}},
     "required": ["n", "x", "when", "tags", "kind", "fixed", "maybe", "flag"]},
    {"$defs": {"leaf": {"type": "object", "properties": {"v": {"type": "string"}}, "required": ["v"]},
               "node": {"type": "object", "properties": {"child": {"$ref": "#/$defs/node"},
                                                         "leaf": {"$ref": "#/$defs/leaf"}},
                        "required": ["leaf"]}},
     "anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]},
    {"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}], "minItems": 3,
     "items": {"type": "object", "required": ["free"], "additionalProperties": {"type": "integer", "minimum": 1}}},
    {"allOf": [{"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
               {"properties": {"b": {"type": "integer", "minimum": 5}}, "required": ["b"]}]},
    {"oneOf": [{"$ref": "#/$defs/loop"}, {"type": "string", "minLength": 1}],
     "$defs": {"loop": {"type": "object", "properties": {"x": {"$ref": "#/$defs/loop"}}, "required": ["x"]}}},
])
async def test_structured_answer_fits_the_schema(fake, http, schema):
    import jsonschema
    gc = {"responseMimeType": "application/json", "responseJsonSchema": schema}
    status, answer = await _status(http, body([USER_HI], generationConfig=gc))
    assert status == 200, answer
    value = json.loads(answer["candidates"][0]["content"]["parts"][0]["text"])
    jsonschema.Draft202012Validator(schema).validate(value)
    async with http.stream("POST", "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse", headers=KEY,
                           json=body([USER_HI], generationConfig=gc)) as r:
        frames = (await r.aread()).decode().split("\r\n\r\n")[:-1]
    text = "".join(json.loads(f.removeprefix("data: "))["candidates"][0]["content"]["parts"][0]["text"] for f in frames)
    assert json.loads(text) == value


@pytest.mark.parametrize("model,gc,refused", [
    ("gemini-2.5-pro", {"responseMimeType": "application/json", "responseJsonSchema": TITLE_SCHEMA}, True),
    ("gemini-2.0-flash", {"responseMimeType": "application/json"}, True),
    ("gemini-2.5-flash", {"responseMimeType": "text/plain"}, False),
    ("gemini-3.8-flash", {"responseMimeType": "application/json", "responseJsonSchema": TITLE_SCHEMA}, False),
])
async def test_json_mode_with_tools_only_on_gemini_3(fake, http, model, gc, refused):
    status, answer = await _status(http, body([USER_HI], tools=[BASH_DECL], generationConfig=gc), model)
    if refused:
        assert status == 400 and "response mime type: 'application/json' is unsupported" in answer, answer
    else:
        assert status == 200, answer


async def test_structured_answer_openapi_schema_enum_and_scripted_text(fake, http):
    schema = {"type": "OBJECT", "properties": {"b": {"type": "INTEGER", "minimum": 2}, "a": {"type": "STRING"}},
              "required": ["a", "b"], "propertyOrdering": ["b", "a"]}
    status, answer = await _status(http, body([USER_HI], generation_config={
        "response_mime_type": "application/json", "response_schema": schema}))
    assert status == 200 and answer["candidates"][0]["content"]["parts"][0]["text"] == '{"b": 2, "a": ""}'
    status, answer = await _status(http, body([USER_HI], generationConfig={
        "responseMimeType": "text/x.enum", "responseSchema": {"type": "STRING", "enum": ["red", "blue"]}}))
    assert status == 200 and answer["candidates"][0]["content"]["parts"][0]["text"] == "red"
    status, answer = await _status(http, body([USER_HI], generationConfig={"responseMimeType": "application/json"}))
    assert json.loads(answer["candidates"][0]["content"]["parts"][0]["text"]) == DEFAULT_TEXT
    fake.enqueue({"text": "not json"})  # a scripted answer is sent as it is, fitting or not
    status, answer = await _status(http, body([USER_HI], generationConfig={
        "responseMimeType": "application/json", "responseJsonSchema": TITLE_SCHEMA}))
    assert answer["candidates"][0]["content"]["parts"][0]["text"] == "not json"


async def test_structured_output_through_litellm(fake):
    fmt = {"type": "json_schema", "json_schema": {"name": "title", "schema": TITLE_SCHEMA, "strict": True}}
    resp = await acomp(fake, response_format=fmt)
    gc = fake.requests[-1]["normalized"]["generationConfig"]
    assert gc["responseMimeType"] == "application/json"
    assert gc["responseJsonSchema"] == TITLE_SCHEMA and "responseSchema" not in gc  # LiteLLM 1.106.2
    assert json.loads(resp.choices[0].message.content) == {"title": ""}


FILE_PART = {"fileData": {"fileUri": "https://example.com/a.png", "mimeType": "image/png"}}


@pytest.mark.parametrize("part,needle", [
    (FILE_PART, None),
    ({"file_data": {"file_uri": "gs://bucket/doc.pdf", "mime_type": "application/pdf"}}, None),
    ({"fileData": {"fileUri": "https://example.com/a.png"}}, "file_data.mime_type: mime_type must not be empty"),
    ({"fileData": {"mimeType": "image/png"}}, "file_data.file_uri: file_uri must not be empty"),
    ({"fileData": {"fileUri": "file:///etc/passwd", "mimeType": "text/plain"}}, "Invalid or unsupported file uri"),
    ({"fileData": {"fileUri": "https://example.com/a.png", "mimeType": "image/png", "size": 3}},
     'Unknown name "size" at \'contents[0].parts[0].file_data\''),
    ({"fileData": "https://example.com/a.png"}, "Invalid value at 'contents[0].parts[0].file_data'"),
])
async def test_file_data_rules(fake, http, part, needle):
    status, answer = await _status(http, body([{"role": "user", "parts": [part, {"text": "see"}]}]))
    if needle is None:
        assert status == 200, answer
    else:
        assert status == 400 and needle in answer, answer


async def test_file_data_in_function_response_parts_is_checked(fake, http):
    call = {"role": "model", "parts": [{"functionCall": {"id": "c1", "name": "Read", "args": {}},
                                        "thoughtSignature": DUMMY_SIGNATURE}]}
    for sub, expected in (({"fileData": {"fileUri": "https://example.com/a.pdf", "mimeType": "application/pdf"}}, 200),
                          ({"fileData": {"fileUri": "https://example.com/a.pdf"}}, 400)):
        result = {"role": "user", "parts": [{"functionResponse": {"id": "c1", "name": "Read", "response": {},
                                                                  "parts": [sub]}}]}
        status, answer = await _status(http, body([USER_HI, call, result]), "gemini-3.8-flash")
        assert status == expected, answer


@pytest.mark.parametrize("model,budget,needle", [
    ("gemini-2.5-pro", 128, None), ("gemini-2.5-pro", 32768, None), ("gemini-2.5-pro", -1, None),
    ("gemini-2.5-pro", 0, "Budget 0 is invalid. This model only works in thinking mode."),
    ("gemini-2.5-pro", 127, "The thinking budget 127 is invalid. Please choose a value between 128 and 32768."),
    ("gemini-2.5-pro", 32769, "between 128 and 32768"),
    ("gemini-2.5-flash", 0, None), ("gemini-2.5-flash", 1, None), ("gemini-2.5-flash", 24576, None),
    ("gemini-2.5-flash", -1, None),
    ("gemini-2.5-flash", 24577, "The thinking budget 24577 is invalid. Please choose a value between 0 and 24576."),
    ("gemini-2.5-flash", -2, "between 0 and 24576"),
    ("gemini-2.5-flash-lite", 0, None), ("gemini-2.5-flash-lite", 512, None), ("gemini-2.5-flash-lite", 24576, None),
    ("gemini-2.5-flash-lite", -1, None),
    ("gemini-2.5-flash-lite", 299, "The thinking budget 299 is invalid. Please choose a value between 512 and 24576."),
    ("gemini-2.5-flash-lite", 24577, "between 512 and 24576"),
    ("gemini-2.5-flash", 100.5, "(TYPE_INT32), 100.5"),
])
async def test_thinking_budget_ranges(fake, http, model, budget, needle):
    status, answer = await _status(http, body([USER_HI], generationConfig={"thinkingConfig": {
        "thinkingBudget": budget, "includeThoughts": True}}), model)
    if needle is None:
        assert status == 200, answer
    elif needle.startswith(("The", "Budget")):
        assert (status, answer) == (400, needle)
    else:
        assert status == 400 and needle in answer, answer


async def test_thinking_budget_zero_on_pro_through_litellm(fake):
    with pytest.raises(litellm.BadRequestError, match="Budget 0 is invalid"):
        await acomp(fake, G25, reasoning_effort="disable")
