"""Streaming (issue 3): grammar, stream/non-stream agreement, early errors, pings, cuts,
disconnects, leaks, and HTTP/2."""
from __future__ import annotations

import asyncio
import os
import ssl
import subprocess
import time

import anthropic
import httpx
import pytest

from tests.sse_grammar import check_stream, parse_sse
from translator import decode_tool_id

TOOLS = [
    {"name": "Bash", "description": "Run a command.", "input_schema": {
        "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}},
    {"name": "Read", "description": "Read a file.", "input_schema": {
        "type": "object", "properties": {"file_path": {"type": "string"}}, "required": ["file_path"]}},
]

SCENARIOS = {
    "text": ({"text": "Streaming works, piece by piece.", "text_chunks": 4}, {}),
    "tool_use": ({"text": "Checking.", "tool_calls": [("Bash", {"command": "ls -la"}, "c1")]}, {"tools": TOOLS}),
    "parallel_tool_use": ({"tool_calls": [("Bash", {"command": "echo hi"}, "c1"), ("Read", {"file_path": "/x"}, "c2")]},
                          {"tools": TOOLS}),
    "thinking_text": ({"thinking": "**Planning** a short greeting.", "text": "Hello there!"},
                      {"thinking": {"type": "adaptive"}, "output_config": {"effort": "high"}}),
    "thinking_tool_use": ({"thinking": "**Tools** I need both.", "tool_calls": [("Bash", {"command": "pwd"}, "c1"),
                                                                                ("Read", {"file_path": "a.txt"}, "c2")]},
                          {"thinking": {"type": "enabled", "budget_tokens": 2048}, "tools": TOOLS}),
}
GROUNDING = {"queries": ["capital of France", "France capital city"],
             "sources": [["https://example.org/paris", "Paris"], ["https://example.com/fr", "France"]]}
WEB_SEARCH = {"tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]}
# Where Gemini puts the grounding in a stream: with the last text, on a chunk of its own before the
# last one (LiteLLM drops such chunks), or on a closing chunk whose only part is an empty text.
SCENARIOS |= {
    "web_search": ({"text": "Paris is the capital of France.", "text_chunks": 3, "grounding": GROUNDING}, WEB_SEARCH),
    "web_search_grounding_last": ({"text": "Paris is the capital of France.", "text_chunks": 3,
                                   "grounding": GROUNDING, "grounding_alone": "last"}, WEB_SEARCH),
    "web_search_grounding_middle_thinking": (
        {"thinking": "**Searching** the web.", "text": "Paris is the capital of France.", "text_chunks": 3,
         "grounding": GROUNDING, "grounding_alone": "middle"},
        {**WEB_SEARCH, "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"}}),
}


def request_body(extra: dict, **more) -> dict:
    body = {"model": "claude-haiku-4-5", "max_tokens": 4000,
            "messages": [{"role": "user", "content": "Go."}], **extra}
    body.update(more)
    return body


def raw_stream(url: str, body: dict, timeout: float = 30) -> httpx.Response:
    response = httpx.post(url + "/v1/messages", json={**body, "stream": True}, timeout=timeout)
    return response


@pytest.mark.parametrize("name", SCENARIOS)
def test_stream_final_message_equals_non_streaming(proxy, gemini, name):
    answer, extra = SCENARIOS[name]
    client = anthropic.Anthropic(base_url=proxy.url, api_key="sk", max_retries=0)
    gemini.enqueue(answer, answer, answer)
    plain = client.messages.create(**request_body(extra))
    with client.messages.stream(**request_body(extra)) as stream:
        streamed = stream.get_final_message()
    raw = raw_stream(proxy.url, request_body(extra))
    assert raw.status_code == 200 and raw.headers["content-type"].startswith("text/event-stream")
    events = check_stream(raw.content)

    def comparable(message):
        # The fake issues a fresh thought signature per answer; everything else must be equal.
        data = message.model_dump()
        data.pop("id")
        for block in data["content"]:
            if block["type"] == "tool_use":
                call_id, signature = decode_tool_id(block["id"])
                block["id"] = (call_id, signature is not None)
            if block["type"] == "thinking":
                block["signature"] = block["signature"][:4] + ("signed" if len(block["signature"]) > 4 else "")
            for key in ("id", "tool_use_id"):  # web search ids are made from the message id
                if block["type"] in ("server_tool_use", "web_search_tool_result") and key in block:
                    block[key] = block[key].rsplit("_", 1)[1]
        return data

    assert comparable(streamed) == comparable(plain)
    assert plain.usage.input_tokens > 0 and plain.usage.output_tokens > 0
    kinds = [b.type for b in plain.content]
    if name.startswith("thinking"):
        assert kinds[0] == "thinking" and plain.content[0].signature.startswith("gm1:")
    if "tool_use" in name:
        assert plain.stop_reason == "tool_use" and kinds[-1] == "tool_use"
    if name == "parallel_tool_use":
        assert [b.name for b in plain.content if b.type == "tool_use"] == ["Bash", "Read"]
    if name.startswith("web_search"):
        assert kinds[-5:] == ["text", "server_tool_use", "web_search_tool_result", "server_tool_use",
                              "web_search_tool_result"]
        assert [b.input for b in plain.content if b.type == "server_tool_use"] == [
            {"query": "capital of France"}, {"query": "France capital city"}]
        first_use, first_result, second_result = plain.content[-4], plain.content[-3], plain.content[-1]
        assert [r.url for r in first_result.content] == ["https://example.org/paris", "https://example.com/fr"]
        assert first_result.tool_use_id == first_use.id and second_result.content == []
        assert plain.usage.server_tool_use.web_search_requests == 2 == streamed.usage.server_tool_use.web_search_requests
        assert plain.stop_reason == "end_turn"
        assert all(r["body"]["tools"] == [{"googleSearch": {}}] for r in gemini.requests if r["action"])
    deltas = [e for e in events if e["type"] == "message_delta"]
    assert deltas[0]["usage"]["output_tokens"] == plain.usage.output_tokens


def test_text_arrives_in_several_deltas(proxy, gemini):
    gemini.enqueue({"text": "one two three four five six", "text_chunks": 6})
    events = check_stream(raw_stream(proxy.url, request_body({})).content)
    texts = [e["delta"]["text"] for e in events if e["type"] == "content_block_delta"]
    assert len(texts) == 6 and "".join(texts) == "one two three four five six"


def test_rate_limit_before_first_chunk_is_a_real_429(make_proxy, gemini):
    proxy = make_proxy(UPSTREAM_RETRIES="0")
    gemini.enqueue({"error": {"code": 429, "message": "Resource has been exhausted.", "retry_delay": "3s"}})
    response = raw_stream(proxy.url, request_body({}))
    assert response.status_code == 429
    assert response.json()["error"]["type"] == "rate_limit_error"
    assert response.headers["retry-after"] == "3"


def test_silent_upstream_gets_pings(make_proxy, gemini):
    proxy = make_proxy(STREAM_GRACE_SECONDS="0.1", PING_INTERVAL_SECONDS="0.1")
    gemini.enqueue({"delay_s": 0.8, "text": "Finally."})
    events = check_stream(raw_stream(proxy.url, request_body({})).content)
    pings = [e for e in events if e["type"] == "ping"]
    assert len(pings) >= 3
    assert events[0]["type"] == "message_start"


def test_upstream_cut_mid_stream_ends_with_an_error_event(proxy, gemini):
    gemini.enqueue({"text": "This answer will be cut off before it ends.", "text_chunks": 6, "cut_after_chunks": 2})
    started = time.monotonic()
    response = raw_stream(proxy.url, request_body({}))
    assert response.status_code == 200
    events = check_stream(response.content, expect_error=True)
    assert events[-1]["type"] == "error" and events[-1]["error"]["type"] in ("api_error", "overloaded_error")
    assert time.monotonic() - started < 10


def test_upstream_idle_timeout_ends_the_stream(make_proxy, gemini):
    proxy = make_proxy(IDLE_TIMEOUT_SECONDS="0.3", PING_INTERVAL_SECONDS="0.1")
    gemini.enqueue({"text": "slow pieces here", "text_chunks": 3, "chunk_delay_s": 5})
    started = time.monotonic()
    events = check_stream(raw_stream(proxy.url, request_body({})).content, expect_error=True)
    assert events[-1]["error"]["type"] == "timeout_error"
    assert time.monotonic() - started < 4


def test_first_byte_timeout_is_a_504(make_proxy, gemini):
    proxy = make_proxy(FIRST_BYTE_TIMEOUT_SECONDS="0.3", STREAM_GRACE_SECONDS="5")
    gemini.enqueue({"hang": True})
    response = raw_stream(proxy.url, request_body({}))
    assert response.status_code == 504 and response.json()["error"]["type"] == "timeout_error"
    assert gemini.wait_for(lambda reqs: reqs and reqs[-1]["disconnected"], timeout=2)


async def _leave_early(url: str, body: dict, after_events: int) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        async with client.stream("POST", url + "/v1/messages", json={**body, "stream": True}) as response:
            seen = 0
            async for line in response.aiter_lines():
                if line.startswith("event: "):
                    seen += 1
                    if seen >= after_events:
                        break


@pytest.mark.parametrize("phase", ["while_waiting_for_first_chunk", "mid_stream"])
def test_client_disconnect_closes_the_upstream_within_a_second(make_proxy, gemini, phase):
    proxy = make_proxy(STREAM_GRACE_SECONDS="0.1", PING_INTERVAL_SECONDS="0.05")
    if phase == "mid_stream":
        gemini.enqueue({"text": "a b c d e f g h", "text_chunks": 8, "chunk_delay_s": 2})
        leave_after = 4  # message_start, block start, first delta, ...
    else:
        gemini.enqueue({"hang": True})
        leave_after = 2  # message_start and a ping
    asyncio.run(_leave_early(proxy.url, request_body({}), leave_after))
    left = time.monotonic()
    assert gemini.wait_for(lambda reqs: reqs and reqs[-1]["disconnected"], timeout=1.0)
    assert gemini.requests[-1]["finished_at"] - left < 1.0


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _many_streams(url: str, count: int, concurrency: int) -> list[int]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        semaphore = asyncio.Semaphore(concurrency)

        async def one(i: int) -> int:
            async with semaphore:
                response = await client.post(url + "/v1/messages", json={**request_body({}), "stream": True})
                check_stream(response.content)
                return response.status_code
        return await asyncio.gather(*(one(i) for i in range(count)))


def test_a_thousand_streams_leave_no_task_or_connection_behind(proxy, fake):
    fake.reset()
    baseline_tasks = proxy.run(_task_count())
    concurrency = 20
    statuses = asyncio.run(_many_streams(proxy.url, 100, concurrency))
    fds_after_warmup = _open_fds()
    statuses += asyncio.run(_many_streams(proxy.url, 900, concurrency))
    assert statuses.count(200) == 1000
    # Hypercorn keeps a closed keep-alive connection's tasks until its keep_alive_timeout (5 s) after
    # the last answer, even when the client closed first: wait longer than that.
    assert proxy.run(_tasks_settle(baseline_tasks, timeout=10)) <= baseline_tasks
    # Pooled keep-alive connections to the fake may remain (two descriptors each, both ends being in
    # this process, and the pool may grow while released connections lag the client: bounded by
    # the concurrency), but none per stream: a leak would show 900 more.
    assert _open_fds() <= fds_after_warmup + 2 * concurrency
    assert sum(1 for r in fake.requests if r["action"] == "streamGenerateContent") == 1000


async def _task_count() -> int:
    return len([t for t in asyncio.all_tasks() if not t.done()])


async def _tasks_settle(target: int, timeout: float) -> int:
    """The live task count once it is down to ``target`` (or when ``timeout`` runs out)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while (count := await _task_count()) > target and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    return count


async def _h2_streams(url: str, count: int) -> list[tuple[float, float, list[str]]]:
    async with httpx.AsyncClient(http1=False, http2=True, timeout=30) as client:
        async def one() -> tuple[float, float, list[str]]:
            start = time.monotonic()
            first = None
            frames: list[str] = []
            async with client.stream("POST", url + "/v1/messages", json={**request_body({}), "stream": True}) as r:
                assert r.http_version == "HTTP/2"
                buffer = ""
                async for text in r.aiter_text():
                    if first is None:
                        first = time.monotonic() - start
                    buffer += text
                frames = [name for name, _ in parse_sse(buffer)]
                check_stream(buffer)
            return first, time.monotonic() - start, frames
        return await asyncio.gather(*(one() for _ in range(count)))


def test_http2_prior_knowledge_streams_incrementally(proxy, gemini):
    gemini.enqueue({"text": "a b c d e", "text_chunks": 5, "chunk_delay_s": 0.2})
    [(first, total, frames)] = asyncio.run(_h2_streams(proxy.url, 1))
    assert frames[0] == "message_start" and frames[-1] == "message_stop"
    # The first bytes came long before the stream ended: events are not buffered.
    assert total - first > 0.6


def test_a_hundred_concurrent_streams_share_one_http2_connection(proxy, gemini):
    results = asyncio.run(_h2_streams(proxy.url, 100))
    assert len(results) == 100
    assert all(frames[-1] == "message_stop" for _, _, frames in results)


def test_http2_over_tls_negotiated_by_alpn(fake, gemini, tmp_path):
    from tests.conftest import proxy_env
    from tests.servers import ProxyServer

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    with ProxyServer(proxy_env(fake), certfile=str(cert), keyfile=str(key), scheme="https") as server:
        gemini.enqueue({"text": "over TLS", "text_chunks": 2})

        async def go() -> tuple[str, str]:
            async with httpx.AsyncClient(http2=True, verify=ssl.create_default_context(cafile=str(cert)), timeout=30) as client:
                response = await client.post(server.url + "/v1/messages", json={**request_body({}), "stream": True})
                return response.http_version, response.text
        version, text = asyncio.run(go())
    assert version == "HTTP/2"
    events = check_stream(text)
    assert "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta") == "over TLS"


def test_an_empty_answer_after_the_headers_went_out_is_an_error_event(make_proxy, gemini):
    proxy = make_proxy(STREAM_GRACE_SECONDS="0.05", PING_INTERVAL_SECONDS="0.05")
    gemini.enqueue({"delay_s": 0.3, "finish_reason": "MALFORMED_FUNCTION_CALL"})
    events = check_stream(raw_stream(proxy.url, request_body({})).content, expect_error=True)
    assert events[-1]["error"]["type"] == "api_error"
    assert not [e for e in events if e["type"] == "content_block_start"]


def test_a_retry_delay_longer_than_the_grace_period_is_a_real_429(make_proxy, gemini):
    proxy = make_proxy(STREAM_GRACE_SECONDS="1", UPSTREAM_RETRIES="2", RETRY_MAX_WAIT_SECONDS="30")
    gemini.enqueue({"error": {"code": 429, "message": "Quota exceeded.", "retry_delay": "5s"}}, {"text": "later"})
    started = time.monotonic()
    response = raw_stream(proxy.url, request_body({}))
    assert response.status_code == 429 and response.headers["retry-after"] == "5"
    assert time.monotonic() - started < 2
    assert len([r for r in gemini.requests if r["action"]]) == 1


def test_the_reader_queues_a_whole_burst_for_one_write():
    """Chunks that arrived together are parsed (~10 µs each) and queued without handing the loop
    over after each, so the response sends them in one write instead of one per chunk."""
    from service.web.streaming import _pump

    log: list[str] = []

    async def burst():  # never suspends, like the parser over a buffered burst
        for n in range(3):
            log.append(f"parsed {n}")
            yield n

    async def run() -> None:
        queue: asyncio.Queue = asyncio.Queue(maxsize=64)
        reader = asyncio.create_task(_pump(burst(), queue, idle_timeout=5))
        while (item := await queue.get())[0] == "chunk":
            log.append(f"sent {item[1]}")
        await reader

    asyncio.run(run())
    assert log == ["parsed 0", "parsed 1", "parsed 2", "sent 0", "sent 1", "sent 2"]
