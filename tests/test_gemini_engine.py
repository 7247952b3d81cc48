"""The Gemini engine (service/engines/answers.py + service/engines/litellm_adapter/gemini.py) against what
``litellm.acompletion`` did: the same request on the wire, the same Message from the same answer,
its stream parser at the edges, and its transport. Against the fake Gemini and the real LiteLLM.

The old path added, after LiteLLM's last chunk, one chunk with what LiteLLM drops (grounding and
Gemini's own finish reason), read from the raw Gemini chunks. Here the acompletion side gets that
chunk the same way: the request acompletion sent (``fake.requests``) is replayed to the fake with
the same spec, and the raw chunks of that answer give it (grounding and finish reasons do not
depend on anything random)."""
from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

import translator
from service.engines import answers, litellm_adapter
from tests.fake_gemini import FakeGemini
from tests.servers import free_port
from tests.test_fidelity import PNG, TOOLS

SPEC = translator.load_spec()
KEY = "test-gemini-key-engine"
SESSION_LOOP = pytest.mark.asyncio(loop_scope="session")
# Headers the HTTP client adds by itself. The one whose value differs: user-agent is
# "litellm/<version>" from acompletion's httpx client and aiohttp's own from the engine.
TRANSPORT = {"host", "accept", "accept-encoding", "connection", "content-length", "user-agent"}
WIRE_ONLY = {"connection", "content-length", "user-agent"}  # httpx sends connection: keep-alive, aiohttp none
SEARCH = {"type": "web_search_20250305", "name": "web_search"}
TITLE = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"],
         "additionalProperties": False}
STRICT = {"name": "get_weather", "description": "The forecast.", "strict": True, "input_schema": {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": False}}
HI = [{"role": "user", "content": "hi"}]


def body(model: str = "gemini-2.5-flash", **fields: Any) -> dict:
    return {"model": model, "max_tokens": 1000, "messages": HI, **fields}


def without_stream(kwargs: dict) -> dict:
    return {k: copy.deepcopy(v) for k, v in kwargs.items() if k not in ("stream", "stream_options")}


def params(fake: FakeGemini) -> dict:
    return {"api_key": KEY, "api_base": fake.base_url}


async def acompletion(fake: FakeGemini, kwargs: dict) -> Any:
    return await litellm_adapter.acompletion(**kwargs, api_key=KEY, api_base=fake.base_url, stream=True,
                                             stream_options={"include_usage": True})


def accepted(record: dict) -> dict:
    assert record["status"] == 200, record["error"]
    return record


# -- 1. the request -------------------------------------------------------------------------------

REQUESTS = {
    "plain text": body(),
    "system in blocks": body(system=[{"type": "text", "text": "Be terse.", "cache_control": {"type": "ephemeral"}},
                                     {"type": "text", "text": "Answer in French."}]),
    "tools, auto": body("gemini-3.8-flash", tools=TOOLS, tool_choice={"type": "auto"}),
    "tools, any": body("gemini-3.8-flash", tools=TOOLS, tool_choice={"type": "any"}),
    "tools, named": body("gemini-3.8-flash", tools=TOOLS, tool_choice={"type": "tool", "name": "Read"}),
    "tools, none": body("gemini-3.8-flash", tools=TOOLS, tool_choice={"type": "none"}),
    "strict tools": body("gemini-3.8-flash", tools=[STRICT, *TOOLS]),
    "adaptive thinking, 2.5 budget": body(thinking={"type": "adaptive"}, output_config={"effort": "low"}),
    "enabled thinking, 2.5 budget": body(max_tokens=8000, thinking={"type": "enabled", "budget_tokens": 4096}),
    "adaptive thinking, 3.x level": body("gemini-3.8-flash", thinking={"type": "adaptive"},
                                         output_config={"effort": "medium"}),
    "enabled thinking, 3.x level": body("gemini-3.5-flash", max_tokens=8000,
                                        thinking={"type": "enabled", "budget_tokens": 1024}),
    "output format": body("gemini-3.8-flash", output_config={"format": {"type": "json_schema", "schema": TITLE}}),
    "stop sequences": body(stop_sequences=["END", "STOP HERE"]),
    "sampling": body(temperature=0.3, top_p=0.9, top_k=7),
    "base64 image": body(messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "text", "text": "What is this?"}]}]),
    "image url": body("gemini-3.8-flash", messages=[{"role": "user", "content": [
        {"type": "image", "source": {"type": "url", "url": "https://images.invalid/photos/cat.png"}},
        {"type": "text", "text": "What is this?"}]}]),
    "web search": body(tools=[SEARCH]),
}


async def assert_same_request(fake: FakeGemini, request: dict) -> None:
    """``gemini_request`` builds, and the engine sends, what acompletion made the fake receive."""
    kwargs = without_stream(translator.translate_request(request, SPEC).kwargs)
    before = copy.deepcopy(kwargs)
    built = litellm_adapter.gemini_request(kwargs, KEY, fake.base_url)
    assert kwargs == before  # the call is built again for a retry or a fallback: nothing may be consumed
    stream = await acompletion(fake, copy.deepcopy(kwargs))
    async with contextlib.aclosing(stream):
        async for _ in stream:
            pass
    theirs = accepted(fake.requests[-1])
    url = urlsplit(built.url)
    assert (url.path, url.query) == (theirs["path"], theirs["query"])
    assert json.loads(built.body) == theirs["body"]
    assert {k.lower(): v for k, v in built.headers.items()} == without(theirs["headers"], TRANSPORT)
    async with aiohttp.ClientSession() as http:
        answer = await answers.open_gemini(http, copy.deepcopy(kwargs), params(fake))
        async with contextlib.aclosing(answer):
            async for _ in answer:
                pass
    ours = accepted(fake.requests[-1])
    assert ours is not theirs and len(fake.requests) == 2
    assert (ours["path"], ours["query"], ours["body"], without(ours["headers"], TRANSPORT)) == (
        theirs["path"], theirs["query"], theirs["body"], without(theirs["headers"], TRANSPORT))
    assert without(ours["headers"], WIRE_ONLY) == without(theirs["headers"], WIRE_ONLY)


def without(headers: dict, names: set) -> dict:
    return {k: v for k, v in headers.items() if k not in names}


@SESSION_LOOP
@pytest.mark.parametrize("request_body", REQUESTS.values(), ids=REQUESTS.keys())
async def test_the_engine_sends_what_acompletion_sent(gemini, request_body):
    await assert_same_request(gemini, request_body)


@SESSION_LOOP
async def test_strict_tools_reach_gemini_in_validated_mode_on_both_paths(gemini):
    await assert_same_request(gemini, REQUESTS["strict tools"])
    assert [r["body"]["toolConfig"]["functionCallingConfig"]["mode"] for r in gemini.requests] == ["VALIDATED"] * 2


@SESSION_LOOP
@pytest.mark.parametrize("model", ["gemini-2.5-flash", "gemini-3.8-flash"])
async def test_a_tool_loop_with_the_signatures_the_proxy_issued_is_sent_alike(gemini, model):
    first = body(model, max_tokens=4000, tools=TOOLS, thinking={"type": "adaptive"},
                 messages=[{"role": "user", "content": "List and read."}])
    gemini.enqueue({"thinking": "**Plan** Both at once.", "tool_calls": [("Bash", {"command": "ls"}),
                                                                         ("Read", {"file_path": "a.txt"})]})
    async with aiohttp.ClientSession() as http:
        message, _, _ = await engine_message(http, gemini, translator.translate_request(first, SPEC))
    uses = [b for b in message["content"] if b["type"] == "tool_use"]
    assert len(uses) == 2 and translator.decode_tool_id(uses[0]["id"])[1]  # the first call carries its signature
    follow_up = {**first, "messages": [*first["messages"], {"role": "assistant", "content": message["content"]},
                                       {"role": "user", "content": [
                                           {"type": "tool_result", "tool_use_id": u["id"], "content": "done"}
                                           for u in reversed(uses)]}]}
    gemini.reset()
    await assert_same_request(gemini, follow_up)
    sent = gemini.requests[-1]
    assert not sent["used_dummy_signature"]
    signatures = [p["thoughtSignature"] for c in sent["normalized"]["contents"] for p in c["parts"]
                  if "thoughtSignature" in p]
    assert signatures and all(s in gemini.issued_signatures for s in signatures)


# -- 2. the answer --------------------------------------------------------------------------------

async def engine_message(http: aiohttp.ClientSession, fake: FakeGemini, call: Any) -> tuple[dict, Any, Any]:
    """The Message, outcome and answer the engine gives: every chunk, its closing ones included."""
    answer = await answers.open_gemini(http, without_stream(call.kwargs), params(fake))
    machine = translator.StreamTranslator(call, SPEC, "msg_1")
    events = machine.start()
    async with contextlib.aclosing(answer):
        async for chunk in answer:
            events += machine.feed(chunk)
    return translator.collect(events + machine.finish()), machine.outcome, answer


async def raw_chunks(http: aiohttp.ClientSession, fake: FakeGemini, record: dict) -> list[dict]:
    """The chunks of the answer to ``record``'s request sent again, as Gemini's JSON."""
    url = f"{fake.root_url}{record['path']}?{record['query']}"
    async with http.post(url, json=record["body"], headers={"x-goog-api-key": KEY}) as response:
        assert response.status == 200
        text = await response.text()
    return [json.loads(line[len("data: "):]) for line in text.split("\r\n") if line.startswith("data: ")]


def dropped_by_litellm(raw: list[dict]) -> dict | None:
    """The old path's last chunk: grounding and Gemini's finish reason from the raw chunks."""
    candidates = [c for chunk in raw for c in chunk.get("candidates") or ()]
    grounding = [c["groundingMetadata"] for c in candidates if c.get("groundingMetadata")]
    finish = next((c["finishReason"] for c in reversed(candidates) if c.get("finishReason")), None)
    if not grounding and not finish:
        return None
    native = {"native_finish_reason": finish} if finish else {}
    return {"vertex_ai_grounding_metadata": grounding,
            "choices": [{"index": 0, "delta": None, "provider_specific_fields": native}]}


async def acompletion_message(http: aiohttp.ClientSession, fake: FakeGemini, call: Any) -> tuple[dict, Any, bool]:
    """The Message, outcome and completeness the old path gave: acompletion's chunks up to its usage
    chunk, then the chunk of what LiteLLM dropped."""
    stream = await acompletion(fake, without_stream(call.kwargs))
    machine = translator.StreamTranslator(call, SPEC, "msg_1")
    events = machine.start()
    saw_usage = False
    async with contextlib.aclosing(stream):
        async for chunk in stream:
            events += machine.feed(chunk)
            if getattr(chunk, "usage", None) is not None:
                saw_usage = True
                break
    last = dropped_by_litellm(await raw_chunks(http, fake, accepted(fake.requests[-1])))
    events += machine.feed(last) if last else []
    return translator.collect(events + machine.finish()), machine.outcome, saw_usage


def signed_by(carried: str | None, fake: FakeGemini) -> str | None:
    """A carried signature (``tag:signature``) with the signature replaced by whether the fake issued it."""
    if not carried:
        return carried
    tag, _, signature = carried.rpartition(":")
    return f"{tag}:issued" if signature in fake.issued_signatures else carried


def comparable(message: dict, fake: FakeGemini) -> dict:
    """The Message without what is random per answer: LiteLLM's call ids (``call_`` + 28 hex) and the
    signatures the fake issues anew per answer (kept as whether the fake issued them)."""
    content = []
    for block in message["content"]:
        if block["type"] == "tool_use":
            call_id, signature = translator.decode_tool_id(block["id"])
            call_id = re.sub(r"^call_[0-9a-f]{28}$", "call_*", call_id)
            block = {**block, "id": (call_id, signed_by(signature, fake))}
        elif block["type"] == "thinking" and block.get("signature", "").startswith("gm1:"):
            block = {**block, "signature": signed_by(block["signature"][len("gm1:"):], fake)}
        content.append(block)
    return {**message, "content": content}


GROUNDING = {"queries": ["fake gemini"], "sources": [["https://a.example/", "A"], ["https://b.example/", "B"]]}
ANSWERS = {
    "text in chunks": ("gemini-2.5-flash", {}, {"text": "Hello there, this comes in pieces.", "text_chunks": 5},
                       ["text"], "end_turn"),
    "thinking and text": ("gemini-3.8-flash", {"thinking": {"type": "adaptive"}},
                          {"thinking": "**Plan** Say it.", "text": "The answer is 42."}, ["thinking", "text"], "end_turn"),
    "parallel tool calls": ("gemini-3.8-flash", {"tools": TOOLS, "thinking": {"type": "adaptive"}},
                            {"thinking": "**Plan** Both.", "tool_calls": [("Bash", {"command": "ls"}),
                                                                          ("Read", {"file_path": "a.txt"})]},
                            ["thinking", "tool_use", "tool_use"], "tool_use"),
    "parallel tool calls, 2.5": ("gemini-2.5-flash", {"tools": TOOLS},
                                 {"text": "Running.", "tool_calls": [("Bash", {"command": "ls"}),
                                                                     ("Bash", {"command": "pwd"})]},
                                 ["text", "tool_use", "tool_use"], "tool_use"),
    "max tokens": ("gemini-2.5-flash", {}, {"text": "Cut sho", "finish_reason": "MAX_TOKENS"}, ["text"], "max_tokens"),
    "safety": ("gemini-2.5-flash", {}, {"finish_reason": "SAFETY"}, [], "refusal"),
    "grounding on the text": ("gemini-2.5-flash", {"tools": [SEARCH]}, {"text": "Found it.", "grounding": GROUNDING},
                              ["text", "server_tool_use", "web_search_tool_result"], "end_turn"),
    "grounding alone, last": ("gemini-2.5-flash", {"tools": [SEARCH]},
                              {"text": "Found it.", "grounding": GROUNDING, "grounding_alone": "last"},
                              ["text", "server_tool_use", "web_search_tool_result"], "end_turn"),
    "grounding alone, middle": ("gemini-2.5-flash", {"tools": [SEARCH]},
                                {"text": "Found it.", "grounding": GROUNDING, "grounding_alone": "middle"},
                                ["text", "server_tool_use", "web_search_tool_result"], "end_turn"),
    "cached and thoughts tokens": ("gemini-2.5-flash", {"thinking": {"type": "adaptive"}},
                                   {"thinking": "Thinking it over for a while.", "text": "Done.",
                                    "usage": {"promptTokenCount": 400, "cachedContentTokenCount": 300}},
                                   ["thinking", "text"], "end_turn"),
    "prompt blocked": ("gemini-2.5-flash", {}, {"prompt_blocked": "SAFETY"}, [], "refusal"),
}


@SESSION_LOOP
@pytest.mark.parametrize(("model", "fields", "spec", "blocks", "stop"), ANSWERS.values(), ids=ANSWERS.keys())
async def test_the_engine_and_acompletion_give_one_message(gemini, model, fields, spec, blocks, stop):
    call = translator.translate_request(body(model, **fields), SPEC)
    gemini.enqueue(spec, spec, spec)  # the engine, acompletion, and the replay of acompletion's request
    async with aiohttp.ClientSession() as http:
        ours, our_outcome, answer = await engine_message(http, gemini, call)
        theirs, their_outcome, their_complete = await acompletion_message(http, gemini, call)
    assert comparable(ours, gemini) == comparable(theirs, gemini)
    assert our_outcome == their_outcome
    assert answer.complete() == their_complete and not answer.broken()
    assert [b["type"] for b in ours["content"]] == blocks and ours["stop_reason"] == stop
    assert ours["usage"]["input_tokens"] + ours["usage"]["cache_read_input_tokens"] > 0


# -- 3. the parser ---------------------------------------------------------------------------------

def parser(model: str = "gemini-2.5-flash", **fields: Any) -> litellm_adapter.GeminiParser:
    kwargs = without_stream(translator.translate_request(body(model, **fields), SPEC).kwargs)
    return litellm_adapter.GeminiParser(litellm_adapter.gemini_request(kwargs, KEY, None))


def line(text: str | None = None, finish: str | None = None, usage: dict | None = None) -> str:
    candidate: dict = {"index": 0}
    if text is not None:
        candidate["content"] = {"parts": [{"text": text}], "role": "model"}
    if finish:
        candidate["finishReason"] = finish
    chunk: dict = {"candidates": [candidate], "modelVersion": "gemini-2.5-flash"}
    if usage:
        chunk["usageMetadata"] = usage
    return "data: " + json.dumps(chunk)


def read_all(reader: litellm_adapter.GeminiParser, lines: list[str]) -> list[Any]:
    chunks = [reader.parse(text) for text in lines]
    return [c for c in chunks if c is not None] + reader.close()


def events(chunks: list[Any], kind: type) -> list[Any]:
    return [e for chunk in chunks for e in translator.read_chunk(chunk) if isinstance(e, kind)]


def test_usage_on_every_chunk_gives_one_usage_the_last():
    lines = [line("a", usage={"promptTokenCount": 9, "candidatesTokenCount": n, "totalTokenCount": 9 + n})
             for n in (1, 2, 3)]
    lines[-1] = line("c", "STOP", {"promptTokenCount": 9, "candidatesTokenCount": 3, "thoughtsTokenCount": 4,
                                   "cachedContentTokenCount": 5, "totalTokenCount": 16})
    assert events(read_all(parser(), lines), translator.Usage) == [
        translator.Usage(prompt_tokens=9, cached_tokens=5, completion_tokens=7, reasoning_tokens=4)]


def test_a_value_split_across_two_lines_is_joined():
    reader = parser()
    whole = line("joined", "STOP")
    assert reader.parse(whole[:40]) is None and reader.broken()
    chunk = reader.parse(whole[40:])
    assert [e.text for e in events([chunk], translator.TextDelta)] == ["joined"]
    assert reader.complete() and not reader.broken()


def test_a_stream_that_ends_inside_a_value_is_broken():
    reader = parser()
    chunks = read_all(reader, [line("fine"), line("cut", "STOP")[:30]])
    assert [e.text for e in events(chunks, translator.TextDelta)] == ["fine"]
    assert reader.broken() and not reader.complete()


def test_complete_needs_a_finish_reason_or_a_blocked_prompt():
    cut = parser()
    read_all(cut, [line("no end", usage={"promptTokenCount": 3, "totalTokenCount": 3})])
    assert not cut.complete() and not cut.broken()
    blocked = parser()
    chunks = read_all(blocked, ["data: " + json.dumps({"promptFeedback": {"blockReason": "SAFETY"},
                                                       "usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 3}})])
    assert blocked.complete() and not blocked.broken()
    assert [e.reason for e in events(chunks, translator.Finish)] == ["content_filter"]


def test_an_error_inside_the_stream_is_litellms_rate_limit_error():
    reader = parser()
    reader.parse(line("partial"))
    error = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Resource has been exhausted."}}
    with pytest.raises(litellm_adapter.litellm.RateLimitError):
        reader.parse("data: " + json.dumps(error))


def test_blank_lines_and_data_prefixes():
    reader = parser()
    plain = line("one")[len("data: "):]
    chunks = [reader.parse(text) for text in ("", "\r\n", line("one") + "\r\n", "\n", plain, "data:" + plain)]
    assert chunks[0] is None and chunks[1] is None and chunks[3] is None
    assert [e.text for e in events(chunks[2:3] + chunks[4:], translator.TextDelta)] == ["one"] * 3
    assert not reader.broken()


# -- 4. the transport ------------------------------------------------------------------------------

CALL = without_stream(translator.translate_request(body(), SPEC).kwargs)


@SESSION_LOOP
async def test_nothing_listening_is_litellms_connection_error():
    async with aiohttp.ClientSession() as http:
        with pytest.raises(litellm_adapter.litellm.APIConnectionError):
            await answers.open_gemini(http, CALL, {"api_key": KEY, "api_base": f"http://127.0.0.1:{free_port()}/v1beta"})


@SESSION_LOOP
@pytest.mark.parametrize(("error", "raised", "kept"), [
    ({"code": 429, "retry_delay": "7s"}, "RateLimitError", '"retryDelay"'),
    ({"code": 400, "message": "Request contains an invalid argument."}, "BadRequestError", "invalid argument"),
])
async def test_http_errors_are_litellms_exceptions(gemini, error, raised, kept):
    gemini.enqueue({"error": error})
    async with aiohttp.ClientSession() as http:
        with pytest.raises(getattr(litellm_adapter.litellm, raised)) as caught:
            await answers.open_gemini(http, CALL, params(gemini))
    assert caught.value.status_code == error["code"] and kept in str(caught.value)


class Loopback:
    """A raw asyncio server on a free loopback port, for as long as the ``async with``."""

    async def __aenter__(self) -> Any:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


class RawGemini(Loopback):
    """A loopback HTTP/1.1 server that answers each request with ``lines`` and counts its
    connections; with ``hold`` it sends the first line only and waits for the client to close."""

    def __init__(self, lines: list[bytes], hold: bool = False):
        self.lines, self.hold = lines, hold
        self.connections = self.requests = 0
        self.eof = asyncio.Event()

    @property
    def base_url(self) -> str:
        return self.url + "/v1beta"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while await self._answer(reader, writer):
                pass
        finally:
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            self.eof.set()
            return False
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        await reader.readexactly(length)
        self.requests += 1
        data = b"".join(self.lines)
        if not self.hold:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: %d\r\n\r\n%s"
                         % (len(data), data))
            await writer.drain()
            return True
        first = self.lines[0]
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"%x\r\n%s\r\n" % (len(first), first))
        await writer.drain()
        if await reader.read() == b"":  # the client closed its end
            self.eof.set()
        return False


def sse(*texts: str) -> list[bytes]:
    return [(line(t, "STOP" if n == len(texts) - 1 else None,
                  {"promptTokenCount": 2, "totalTokenCount": 2}) + "\r\n\r\n").encode() for n, t in enumerate(texts)]


@SESSION_LOOP
async def test_closing_an_answer_read_half_way_closes_its_connection():
    async with RawGemini(sse("first", "never sent"), hold=True) as server, aiohttp.ClientSession() as http:
        answer = await answers.open_gemini(http, CALL, {"api_key": KEY, "api_base": server.base_url})
        chunk = await answer.__anext__()
        assert [e.text for e in events([chunk], translator.TextDelta)] == ["first"]
        await answer.aclose()
        await asyncio.wait_for(server.eof.wait(), 5)
        assert not answer.complete()


@SESSION_LOOP
async def test_an_answer_read_to_its_end_goes_back_to_the_pool():
    async with RawGemini(sse("one", "two")) as server, aiohttp.ClientSession() as http:
        for _ in range(3):
            answer = await answers.open_gemini(http, CALL, {"api_key": KEY, "api_base": server.base_url})
            async with contextlib.aclosing(answer):
                texts = [e.text async for chunk in answer for e in translator.read_chunk(chunk)
                         if isinstance(e, translator.TextDelta)]
            assert texts == ["one", "two"] and answer.complete()
        assert (server.requests, server.connections) == (3, 1)
        assert not server.eof.is_set()


@SESSION_LOOP
async def test_a_line_longer_than_aiohttps_readline_limit_is_read_whole():
    """Lines are split by the proxy, not by aiohttp's readline (which refuses lines over 128 KiB):
    a 1 MB text chunk, then one that ends without its newline, both arrive."""
    big = "x" * 1_000_000
    lines = sse(big, "end")
    lines[-1] = lines[-1].rstrip(b"\r\n")
    async with RawGemini(lines) as server, aiohttp.ClientSession() as http:
        answer = await answers.open_gemini(http, CALL, {"api_key": KEY, "api_base": server.base_url})
        async with contextlib.aclosing(answer):
            texts = [e.text async for chunk in answer for e in translator.read_chunk(chunk)
                     if isinstance(e, translator.TextDelta)]
        assert texts == [big, "end"] and answer.complete() and not answer.broken()


class ForwardProxy(Loopback):
    """A loopback HTTP forward proxy that only records the request line it is sent, and refuses."""

    def __init__(self) -> None:
        self.request_lines: list[bytes] = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.request_lines.append((await reader.readline()).strip())
        writer.write(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()


@SESSION_LOOP
async def test_the_client_goes_through_the_environments_proxy(monkeypatch):
    """HTTP(S)_PROXY is honoured (as LiteLLM's client did), looked up once when the client is made."""
    from service.config import load_settings
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    async with ForwardProxy() as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        base = f"http://gemini.invalid:{free_port()}/v1beta"
        http = answers.http_client(load_settings({"GEMINI_API_BASE": base}, None))
        monkeypatch.delenv("HTTP_PROXY")
        try:
            with pytest.raises(Exception):
                await answers.open_gemini(http, CALL, {"api_key": KEY, "api_base": base})
        finally:
            await http.close()
    assert len(proxy.request_lines) == 1 and proxy.request_lines[0].startswith(b"POST http://gemini.invalid:")
