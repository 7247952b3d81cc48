"""Running the proxy: exposure warning, limits, truncated upstream streams, access log, and a
graceful stop on SIGTERM with the real hypercorn command."""
from __future__ import annotations

import json
import logging
import signal
import time
from pathlib import Path

import httpx
import pytest

from service.web.exposure import binds_from_argv, hosts_of, warn_if_exposed
from tests.conftest import TEST_KEY
from tests.servers import HypercornProcess, free_port
from tests.sse_grammar import check_stream

ROOT = Path(__file__).resolve().parent.parent
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


def body(**more):
    return {"model": "gemini-2.5-flash", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}], **more}


@pytest.mark.parametrize(("argv", "hosts"), [
    (["hypercorn", "--config", str(ROOT / "hypercorn.toml"), "service.app:app"], ["127.0.0.1"]),
    (["hypercorn", "-b", "0.0.0.0:8082", "service.app:app"], ["0.0.0.0"]),
    (["hypercorn", "--bind=[::1]:8082", "service.app:app"], ["::1"]),
    (["pytest"], []),
])
def test_binds_read_from_the_command_line(argv, hosts):
    assert hosts_of(binds_from_argv(argv)) == hosts


def test_exposed_without_key_warns_loudly(caplog):
    with caplog.at_level(logging.WARNING, logger="proxy"):
        assert warn_if_exposed(["0.0.0.0"], has_key=False)
        assert not warn_if_exposed(["0.0.0.0"], has_key=True)
        assert not warn_if_exposed(["127.0.0.1", "::1", "localhost"], has_key=False)
    assert [r.message for r in caplog.records].count(
        "The proxy listens on 0.0.0.0 without PROXY_API_KEY: anyone who reaches this address can use your "
        "Gemini key. Set PROXY_API_KEY, or bind to 127.0.0.1.") == 1


def test_json_depth_limit(make_proxy, gemini):
    proxy = make_proxy(MAX_JSON_DEPTH="20")
    nested: dict = {"v": 1}
    for _ in range(30):
        nested = {"n": nested}
    response = httpx.post(proxy.url + "/v1/messages", json=body(metadata=nested))
    assert response.status_code == 400 and "deeper than 20 levels" in response.json()["error"]["message"]
    assert httpx.post(proxy.url + "/v1/messages", json=body()).status_code == 200


def test_deep_nesting_beyond_the_parser_is_a_400(proxy):
    raw = b'{"model": "x", "max_tokens": 5, "messages": ' + b"[" * 100000 + b"]" * 100000 + b"}"
    response = httpx.post(proxy.url + "/v1/messages", content=raw, timeout=30)
    assert response.status_code == 400 and "nested too deeply" in response.json()["error"]["message"]


def test_media_limits_are_configurable(make_proxy, gemini):
    proxy = make_proxy(MAX_MEDIA_PER_REQUEST="2", MAX_MEDIA_BYTES="200")
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    three = body(messages=[{"role": "user", "content": [image, image, image, {"type": "text", "text": "?"}]}])
    response = httpx.post(proxy.url + "/v1/messages", json=three)
    assert response.status_code == 400 and "at most 2" in response.json()["error"]["message"]
    big = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG * 4}}
    response = httpx.post(proxy.url + "/v1/messages", json=body(messages=[{"role": "user", "content": [big]}]))
    assert response.status_code == 400 and "more than the 200 allowed" in response.json()["error"]["message"]
    two = body(messages=[{"role": "user", "content": [image, image, {"type": "text", "text": "?"}]}])
    assert httpx.post(proxy.url + "/v1/messages", json=two).status_code == 200


def test_a_malformed_upstream_chunk_is_not_a_quiet_short_answer(make_proxy, gemini):
    """LiteLLM buffers a broken SSE line and everything after it, then makes up a normal end."""
    proxy = make_proxy(STREAM_GRACE_SECONDS="5")
    gemini.enqueue({"text": "the whole answer is longer than this", "text_chunks": 5, "malformed_chunk_after": 2})
    response = httpx.post(proxy.url + "/v1/messages", json=body(stream=True), timeout=30)
    # Content had arrived before the break, so the headers were out: an error event ends it.
    events = check_stream(response.content, expect_error=True)
    assert events[-1]["error"] == {"type": "api_error",
                                   "message": "The upstream stream broke off: a chunk was not valid JSON."}


def test_access_log_has_one_line_per_request_without_bodies(make_proxy, gemini, caplog):
    proxy = make_proxy(LOG_LEVEL="INFO")
    with caplog.at_level(logging.INFO, logger="proxy.access"):
        httpx.post(proxy.url + "/v1/messages", json=body(messages=[{"role": "user", "content": "SECRET-PROMPT"}]))
        httpx.post(proxy.url + "/v1/messages", json=body(stream=True, model="claude-haiku-4-5"))
        httpx.post(proxy.url + "/v1/messages", json=body(model="nope"))
    lines = [json.loads(r.message) for r in caplog.records if r.name == "proxy.access"]
    lines = [line for line in lines if line["path"] == "/v1/messages"]
    assert len(lines) == 3
    plain, streamed, missing = lines
    assert plain["status"] == 200 and plain["target"] == "gemini/gemini-2.5-flash" and plain["usage"]["input_tokens"] > 0
    assert streamed["stream"] and streamed["target"] == "gemini/gemini-3.8-flash" and streamed["stop"] == "end_turn"
    assert streamed["usage"]["output_tokens"] > 0
    assert missing["status"] == 404 and missing["model"] == "nope"
    assert all(line["request_id"].startswith("req_") and line["ms"] >= 0 for line in lines)
    assert "SECRET-PROMPT" not in caplog.text


def test_sigterm_lets_streams_finish_and_refuses_new_requests(fake, gemini, tmp_path):
    env = {"GEMINI_API_KEY": TEST_KEY, "GEMINI_API_BASE": fake.base_url, "LOG_LEVEL": "WARNING"}
    server = HypercornProcess(env, {"graceful_timeout": "10"}, tmp_path).start()
    try:
        gemini.enqueue({"text": "one two three four five six", "text_chunks": 6, "chunk_delay_s": 0.4})
        with httpx.stream("POST", server.url + "/v1/messages", json=body(stream=True), timeout=30) as response:
            chunks = response.iter_bytes()
            received = next(chunks)
            server.process.send_signal(signal.SIGTERM)
            assert gemini.wait_for(lambda reqs: False, timeout=0.5) is False  # let the signal land
            with pytest.raises(httpx.TransportError):
                httpx.post(server.url + "/v1/messages", json=body(), timeout=5)
            received += b"".join(chunks)
        events = check_stream(received)
        assert events[-1]["type"] == "message_stop"
        assert "".join(e["delta"]["text"] for e in events if e["type"] == "content_block_delta") == \
            "one two three four five six"
        assert server.process.wait(timeout=20) == 0
    finally:
        server.stop()


def _post(proxy, **more):
    return httpx.post(proxy.url + "/v1/messages", json=body(**more), timeout=30)


def test_connection_refused_is_a_prompt_api_error(make_proxy, gemini):
    proxy = make_proxy(GEMINI_API_BASE=f"http://127.0.0.1:{free_port()}/v1beta", UPSTREAM_RETRIES="0")
    started = time.monotonic()
    for stream in (False, True):
        response = _post(proxy, stream=stream)
        assert response.status_code == 500
        assert response.json()["error"] == {"type": "api_error", "message": "Could not reach the upstream model service."}
    assert time.monotonic() - started < 10


def test_a_400_is_never_retried(make_proxy, gemini):
    proxy = make_proxy(UPSTREAM_RETRIES="2")
    gemini.enqueue({"error": {"code": 400, "message": "Request contains an invalid argument."}}, {"text": "never"})
    response = _post(proxy)
    assert response.status_code == 400 and "invalid argument" in response.json()["error"]["message"]
    assert len([r for r in gemini.requests if r["action"]]) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_an_overloaded_upstream_is_retried_then_succeeds(make_proxy, gemini, stream):
    proxy = make_proxy(UPSTREAM_RETRIES="2")
    gemini.enqueue({"error": {"code": 503, "message": "The model is overloaded. Please try again later."}},
                   {"text": "back again"})
    response = _post(proxy, stream=stream)
    assert response.status_code == 200
    assert [r["status"] for r in gemini.requests if r["action"]] == [503, 200]


def test_retries_stop_at_the_configured_count_with_the_last_error(make_proxy, gemini):
    proxy = make_proxy(UPSTREAM_RETRIES="1")
    overloaded = {"error": {"code": 503, "message": "The model is overloaded. Please try again later."}}
    gemini.enqueue(overloaded, overloaded, {"text": "too late"})
    response = _post(proxy)
    assert response.status_code == 529 and response.json()["error"]["type"] == "overloaded_error"
    assert len([r for r in gemini.requests if r["action"]]) == 2


def test_without_a_gemini_credential_the_proxy_refuses_to_start(tmp_path):
    """Not a proxy whose /health says ok while every answer is a retryable 500 (Claude Code retried for minutes)."""
    server = HypercornProcess({"GEMINI_API_KEY": "", "LOG_LEVEL": "WARNING"}, directory=tmp_path)
    with pytest.raises(RuntimeError, match="GEMINI_API_KEY") as refused:
        server.start()
    assert "GEMINI_API_KEYS" in str(refused.value)


@pytest.mark.parametrize(("name", "value"), [("PING_INTERVAL_SECONDS", "0"), ("UPSTREAM_RETRIES", "-1"),
                                             ("MAX_BODY_BYTES", "0")])
def test_settings_that_would_misbehave_are_refused_at_start(name, value):
    from service.config import load_settings
    with pytest.raises(ValueError, match=name):
        load_settings(environ={name: value}, env_file=None)


def test_models_by_id_and_pages(proxy):
    one = httpx.get(proxy.url + "/v1/models/claude-sonnet-4-5").json()
    assert one["id"] == "claude-sonnet-4-5" and "gemini-3.1-pro-preview" in one["display_name"]
    assert httpx.get(proxy.url + "/v1/models/gpt-4o").status_code == 404
    everything = httpx.get(proxy.url + "/v1/models", params={"limit": 1000}).json()["data"]
    ids = [m["id"] for m in everything]
    page = httpx.get(proxy.url + "/v1/models", params={"limit": 2, "before_id": ids[4]}).json()
    assert [m["id"] for m in page["data"]] == ids[2:4]
    page = httpx.get(proxy.url + "/v1/models", params={"limit": 2, "after_id": ids[0]}).json()
    assert [m["id"] for m in page["data"]] == ids[1:3] and page["has_more"]
