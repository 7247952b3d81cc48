"""The web_fetch server tool as Gemini's URL context: the blocks built from urlContextMetadata, max_uses and
the domain rules the proxy applies, through the strict fake Gemini, streamed and not."""
from __future__ import annotations

import anthropic
import httpx
import pytest

import translator
from tests.conftest import TEST_KEY
from tests.sse_grammar import check_stream

SPEC = translator.load_spec()
BODY = {"model": "claude-sonnet-5", "max_tokens": 200,
        "messages": [{"role": "user", "content": "Summarise https://docs.example.com/a and https://b.example.org/"}]}
OK = "URL_RETRIEVAL_STATUS_SUCCESS"
PAGES = [["https://docs.example.com/a", OK], ["https://b.example.org/", OK], ["https://c.example.net/x", OK]]


def fetch_tool(**options):
    return {"type": "web_fetch_20250910", "name": "web_fetch", **options}


def results(blocks):
    return [(b["content"].get("url") or b["content"]["error_code"]) for b in blocks if b["type"] == "web_fetch_tool_result"]


def test_metadata_becomes_pairs_of_blocks_with_max_uses_and_statuses():
    metadata = [{"urlMetadata": [{"retrievedUrl": u, "urlRetrievalStatus": s} for u, s in
                                 [*PAGES[:1], ["https://paywall.example/", "URL_RETRIEVAL_STATUS_PAYWALL"],
                                  ["https://unsafe.example/", "URL_RETRIEVAL_STATUS_UNSAFE"], PAGES[1]]]},
                {"urlMetadata": [{"retrievedUrl": PAGES[0][0], "urlRetrievalStatus": OK}]}]  # repeated: once
    blocks, used = translator.fetch_blocks(metadata, fetch_tool(max_uses=3), SPEC.tools, "msg_7")
    assert [b["type"] for b in blocks] == ["server_tool_use", "web_fetch_tool_result"] * 4
    assert blocks[0] == {"type": "server_tool_use", "id": "srvtoolu_7_f0", "name": "web_fetch",
                         "input": {"url": PAGES[0][0]}}
    assert results(blocks) == [PAGES[0][0], "url_not_accessible", "url_not_allowed", "max_uses_exceeded"]
    assert used == 3
    page = blocks[1]["content"]["content"]
    assert page["source"] == {"type": "text", "media_type": "text/plain", "data": ""}  # Gemini returns no text
    assert translator.fetch_blocks(metadata, None, SPEC.tools, "msg_7") == ([], 0)  # no web_fetch tool: no blocks


@pytest.mark.parametrize("rules, url, allowed", [
    ({"allowed_domains": ["example.com"]}, "https://docs.example.com/a", True),
    ({"allowed_domains": ["example.com"]}, "https://example.org/", False),
    ({"allowed_domains": ["example.com"]}, "https://notexample.com/", False),
    ({"allowed_domains": ["example.com/docs"]}, "https://example.com/docs/x", True),
    ({"allowed_domains": ["example.com/docs"]}, "https://example.com/blog", False),
    ({"blocked_domains": ["example.com"]}, "https://www.example.com/", False),
    ({"blocked_domains": ["example.com"]}, "https://example.net/", True),
    ({}, "https://anything.example/", True),
])
def test_domain_rules(rules, url, allowed):
    assert translator.domain_allowed(url, rules) is allowed


@pytest.mark.parametrize("options, fragment", [
    ({"allowed_domains": ["a.com"], "blocked_domains": ["b.com"]}, "not both"),
    ({"max_uses": 0}, "max_uses must be a positive integer"),
    ({"allowed_domains": ["https://a.com"]}, "without a scheme"),
])
def test_bad_web_fetch_tools_are_refused(proxy, gemini, options, fragment):
    answer = httpx.post(proxy.url + "/v1/messages", json={**BODY, "tools": [fetch_tool(**options)]}, timeout=30)
    assert answer.status_code == 400 and fragment in answer.json()["error"]["message"]
    assert not [r for r in gemini.requests if r["action"]]


@pytest.fixture
def client(proxy):
    return anthropic.Anthropic(base_url=proxy.url, api_key="sk-test", max_retries=0)


@pytest.mark.parametrize("stream", [False, True])
def test_url_context_answers_as_web_fetch_blocks(client, gemini, stream):
    gemini.enqueue({"text": "Both pages agree.", "url_context": PAGES})
    params = {**BODY, "tools": [fetch_tool(max_uses=2, blocked_domains=["example.org"])]}
    if stream:
        with client.beta.messages.stream(**params) as events:
            message = events.get_final_message()
    else:
        message = client.beta.messages.create(**params)
    assert gemini.requests[-1]["normalized"]["tools"] == [{"urlContext": {}}]
    assert [b.type for b in message.content] == ["text"] + ["server_tool_use", "web_fetch_tool_result"] * 3
    fetched = [b.content for b in message.content if b.type == "web_fetch_tool_result"]
    assert fetched[0].type == "web_fetch_result" and fetched[0].url == PAGES[0][0]
    assert [f.error_code for f in fetched[1:]] == ["url_not_allowed", "max_uses_exceeded"]
    assert message.usage.server_tool_use.web_fetch_requests == 2
    assert message.usage.server_tool_use.web_search_requests == 0


def test_the_stream_keeps_the_grammar(proxy, gemini):
    gemini.enqueue({"text": "Read it.", "url_context": PAGES[:1]})
    raw = httpx.post(proxy.url + "/v1/messages", json={**BODY, "stream": True, "tools": [fetch_tool()]}, timeout=30)
    events = check_stream(raw.content)
    started = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    assert started == ["text", "server_tool_use", "web_fetch_tool_result"]


def test_web_fetch_next_to_functions_is_left_out(client, gemini):
    bash = {"name": "Bash", "input_schema": {"type": "object", "properties": {}}}
    client.messages.create(**BODY, tools=[bash, fetch_tool()])
    sent = gemini.requests[-1]["normalized"]["tools"]
    assert sent and all("urlContext" not in tool for tool in sent)


def test_web_fetch_blocks_sent_back_are_accepted(client, gemini):
    gemini.enqueue({"text": "Read.", "url_context": PAGES[:1]})
    first = client.beta.messages.create(**BODY, tools=[fetch_tool()])
    history = [*BODY["messages"], {"role": "assistant", "content": [b.to_dict() for b in first.content]},
               {"role": "user", "content": "Thanks; and the second page?"}]
    second = client.beta.messages.create(**{**BODY, "messages": history}, tools=[fetch_tool()])
    assert second.content[0].text == "Hello from the fake Gemini."
    model_turn = gemini.requests[-1]["normalized"]["contents"][1]
    assert model_turn["role"] == "model" and [p.get("text") for p in model_turn["parts"]] == ["Read."]


@pytest.mark.parametrize("tools, status, pages", [
    ([{"urlContext": {}}], 200, 1),
    ([], 200, 0),                                     # no tool: Gemini reads no page
    ([{"urlContext": {"maxUrls": 3}}], 400, 0),       # the tool takes no options
])
def test_the_fake_reads_pages_only_with_its_url_context_tool(gemini, tools, status, pages):
    gemini.enqueue({"text": "Read.", "url_context": PAGES[:1]})
    body = {"contents": [{"role": "user", "parts": [{"text": "Read " + PAGES[0][0]}]}], **({"tools": tools} if tools else {})}
    answer = httpx.post(f"{gemini.base_url}/models/gemini-3.8-flash:generateContent", json=body,
                        headers={"x-goog-api-key": TEST_KEY}, timeout=30)
    assert answer.status_code == status, answer.text
    if status == 200:
        metadata = answer.json()["candidates"][0].get("urlContextMetadata", {}).get("urlMetadata", [])
        assert [m["retrievedUrl"] for m in metadata] == [p[0] for p in PAGES[:pages]]
