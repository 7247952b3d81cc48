"""Explicit context caching on Vertex AI (issue 27): a project's ``cachedContents`` through the proxy
(full resource names, the Bearer token), none in express mode, and the fake Vertex's strictness."""
from __future__ import annotations

from typing import Any

import google.auth.transport.requests
import google.oauth2.service_account
import httpx
import pytest

from tests.test_context_cache import session_start
from tests.test_vertex import EXPRESS_KEY, FLASH, account, vertex, vertex_proxy, vertex_server  # noqa: F401 - fixtures

PARENT = "projects/proj-a/locations/us-central1"
MODEL_NAME = f"{PARENT}/publishers/google/models/{FLASH}"


def claude_code_turn() -> dict[str, Any]:
    """Claude Code's system prompt, tools and a first turn with its breakpoints, for BIG_MODEL."""
    return {**session_start(), "model": "claude-sonnet-4-5"}


def generates(vertex) -> list[dict]:
    return [r for r in vertex.requests if r["action"] == "streamGenerateContent"]


def test_a_vertex_turn_reads_its_prefix_from_a_project_cache(make_proxy, vertex):
    proxy = vertex_proxy(make_proxy, vertex, GOOGLE_APPLICATION_CREDENTIALS=account(vertex),
                         VERTEXAI_LOCATION="us-central1")
    vertex.enqueue({"text": "one"}, {"text": "two"})
    first, second = (httpx.post(proxy.url + "/v1/messages", json=claude_code_turn(), timeout=30) for _ in range(2))
    assert first.status_code == second.status_code == 200, first.text
    (create,) = [r for r in vertex.requests if r["action"] == "cachedContents"]
    assert create["path"] == f"/v1/{PARENT}/cachedContents" and create["status"] == 200
    assert create["body"]["model"] == MODEL_NAME and create["headers"]["authorization"].startswith("Bearer ya29.")
    assert first.json()["usage"]["cache_creation_input_tokens"] > 4096
    assert second.json()["usage"]["cache_read_input_tokens"] > 4096
    assert all(r["status"] == 200 and r["body"]["cachedContent"].startswith(f"{PARENT}/cachedContents/")
               and "tools" not in r["body"] for r in generates(vertex))


def test_express_mode_sends_without_a_cache(make_proxy, vertex):
    proxy = vertex_proxy(make_proxy, vertex, VERTEXAI_API_KEY=EXPRESS_KEY)
    for _ in range(2):
        answer = httpx.post(proxy.url + "/v1/messages", json=claude_code_turn(), timeout=30)
        assert answer.status_code == 200 and answer.json()["usage"]["cache_read_input_tokens"] == 0
    assert not [r for r in vertex.requests if r["action"] == "cachedContents"]
    assert all("cachedContent" not in r["body"] and "tools" in r["body"] for r in generates(vertex))


def test_a_cache_vertex_no_longer_knows_is_dropped(make_proxy, vertex):
    proxy = vertex_proxy(make_proxy, vertex, GOOGLE_APPLICATION_CREDENTIALS=account(vertex),
                         VERTEXAI_LOCATION="us-central1")
    vertex.enqueue({"text": "one"}, {"text": "two"})
    assert httpx.post(proxy.url + "/v1/messages", json=claude_code_turn(), timeout=30).status_code == 200
    vertex.caches.caches.clear()   # expired or deleted behind the proxy's back
    answer = httpx.post(proxy.url + "/v1/messages", json=claude_code_turn(), timeout=30)
    assert answer.status_code == 200 and answer.json()["content"][0]["text"] == "two", answer.text
    assert [r["status"] for r in generates(vertex)][-2:] == [404, 200]


@pytest.fixture
def caller(vertex):
    """An httpx client with a Bearer token of a service account of proj-a, on the fake Vertex."""
    credentials = google.oauth2.service_account.Credentials.from_service_account_file(
        account(vertex), scopes=["https://www.googleapis.com/auth/cloud-platform"])
    credentials.refresh(google.auth.transport.requests.Request())
    with httpx.Client(base_url=vertex.root_url + "/v1/", timeout=30,
                      headers={"Authorization": f"Bearer {credentials.token}"}) as client:
        yield client


def big_contents(words: int = 6000) -> list[dict]:
    return [{"role": "user", "parts": [{"text": "word " * words}]}]


def test_the_fake_refuses_what_vertex_refuses(vertex, caller):
    small = caller.post(f"{PARENT}/cachedContents", json={"model": MODEL_NAME, "contents": big_contents(10)})
    assert small.status_code == 400 and "minimum token count to start caching" in small.text
    short_name = caller.post(f"{PARENT}/cachedContents", json={"model": f"models/{FLASH}", "contents": big_contents()})
    assert short_name.status_code == 400 and "publishers/google/models/" in short_name.text
    elsewhere = caller.post("projects/other/locations/us-central1/cachedContents",
                            json={"model": MODEL_NAME.replace("proj-a", "other"), "contents": big_contents()})
    assert elsewhere.status_code == 403
    made = caller.post(f"{PARENT}/cachedContents", json={"model": MODEL_NAME, "contents": big_contents(),
                                                         "systemInstruction": {"parts": [{"text": "Be brief."}]},
                                                         "ttl": "300s"})
    assert made.status_code == 200 and made.json()["name"].startswith(f"{PARENT}/cachedContents/")
    assert made.json()["model"] == MODEL_NAME and made.json()["usageMetadata"]["totalTokenCount"] > 4096
    name, ask = made.json()["name"], {"role": "user", "parts": [{"text": "and?"}]}
    url = f"{PARENT}/publishers/google/models/{{}}:generateContent"
    other_model = caller.post(url.format("gemini-3.1-pro-preview"), json={"cachedContent": name, "contents": [ask]})
    assert other_model.status_code == 400 and "must be the same" in other_model.text
    with_head = caller.post(url.format(FLASH), json={"cachedContent": name, "contents": [ask],
                                                     "systemInstruction": {"parts": [{"text": "x"}]}})
    assert with_head.status_code == 400 and "should not be set" in with_head.text
    vertex.enqueue({"text": "ok"})
    used = caller.post(url.format(FLASH), json={"cachedContent": name, "contents": [ask]})
    assert used.status_code == 200 and used.json()["usageMetadata"]["cachedContentTokenCount"] > 4096
    assert caller.patch(name, params={"updateMask": "ttl"}, json={"ttl": "3600s"}).status_code == 200
    assert caller.delete(name).status_code == 200 and caller.get(name).status_code == 404
