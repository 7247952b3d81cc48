"""Vertex AI as an upstream (issue 27): service accounts (the JWT-bearer grant, checked by the fake's
token endpoint), express keys, pools of credentials, a fallback to AI Studio, count_tokens, and
Vertex's 401/403/429 — against tests/fake_vertex, which shares the fake Gemini's answer machinery."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.fake_gemini.quotas import Quotas
from tests.fake_vertex import FakeVertex
from tests.sse_grammar import check_stream

PRO, FLASH = "gemini-3.1-pro-preview", "gemini-3.8-flash"
EXPRESS_KEY = "vertex-express-key-0123456789"
BASH = {"name": "Bash", "description": "Run a command", "input_schema": {
    "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}


@pytest.fixture(scope="module")
def vertex_server() -> Iterator[FakeVertex]:
    server = FakeVertex().start()
    yield server
    server.stop()


@pytest.fixture
def vertex(vertex_server: FakeVertex, tmp_path: Path) -> FakeVertex:
    vertex_server.reset()
    for registry in (vertex_server.public_keys, vertex_server.projects, vertex_server.tokens):
        registry.clear()
    vertex_server.express_keys = {EXPRESS_KEY}
    vertex_server.token_lifetime, vertex_server.token_requests = 3600, 0
    vertex_server.accounts = tmp_path  # type: ignore[attr-defined]
    return vertex_server


def vertex_proxy(make_proxy, vertex: FakeVertex, model: str = FLASH, **extra: str):
    """A proxy whose big model is on Vertex (flash: no fallbacks in models.yaml, so Vertex answers or fails)."""
    return make_proxy(PROVIDER_PREFIXES="gemini/,vertex_ai/", VERTEXAI_API_BASE=vertex.root_url,
                      BIG_MODEL=f"vertex_ai/{model}", **extra)


def account(vertex: FakeVertex, name: str = "proxy", projects: tuple[str, ...] = ("proj-a",)) -> str:
    return str(vertex.service_account(vertex.accounts, f"{name}@proj.iam.gserviceaccount.com", projects))  # type: ignore[attr-defined]


def post(proxy, payload: dict, path: str = "/v1/messages") -> httpx.Response:
    return httpx.post(proxy.url + path, json=payload, timeout=30)


def body(stream: bool = False, **extra) -> dict:
    return {"model": "claude-sonnet-4-5", "max_tokens": 50, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}], **extra}


def answered(vertex: FakeVertex) -> list[dict]:
    return [r for r in vertex.requests if r["status"] == 200 and r["action"] != "countTokens"]


@pytest.mark.parametrize("stream", [False, True])
def test_a_service_account_answers_with_one_token_for_many_requests(make_proxy, vertex, stream):
    proxy = vertex_proxy(make_proxy, vertex, GOOGLE_APPLICATION_CREDENTIALS=account(vertex), VERTEXAI_LOCATION="us-central1")
    vertex.enqueue({"thinking": "Greeting.", "text": "Hello there."}, {"text": "Again."})
    first, second = post(proxy, body(stream)), post(proxy, body(stream))
    assert first.status_code == second.status_code == 200, first.text
    if stream:
        check_stream(first.text)
        deltas = [json.loads(line[6:])["delta"] for line in first.text.splitlines()
                  if line.startswith("data: ") and '"content_block_delta"' in line]
        assert "".join(d.get("text", "") for d in deltas) == "Hello there."
    else:
        assert [b["type"] for b in first.json()["content"]] == ["thinking", "text"]
    paths = {r["path"] for r in answered(vertex)}
    assert paths == {f"/v1/projects/proj-a/locations/us-central1/publishers/google/models/{FLASH}:streamGenerateContent"}
    assert vertex.token_requests == 1   # cached, not fetched per request
    assert all(c.get("role") in ("user", "model") for r in answered(vertex) for c in r["body"]["contents"])


def test_a_token_near_its_expiry_is_replaced_before_use(make_proxy, vertex):
    vertex.token_lifetime = 120   # inside the proxy's 5-minute margin: every use needs a fresh one
    proxy = vertex_proxy(make_proxy, vertex, GOOGLE_APPLICATION_CREDENTIALS=account(vertex))
    for _ in range(3):
        assert post(proxy, body()).status_code == 200
    assert vertex.token_requests == 3
    assert len({r["headers"]["authorization"] for r in answered(vertex)}) == 3


def test_concurrent_first_requests_share_one_token_fetch(make_proxy, vertex):
    proxy = vertex_proxy(make_proxy, vertex, GOOGLE_APPLICATION_CREDENTIALS=account(vertex))
    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(lambda _: post(proxy, body()).status_code, range(6)))
    assert statuses == [200] * 6
    assert vertex.token_requests == 1   # one refresh at a time; the others waited for it


def test_application_default_credentials_found_by_google_auth(make_proxy, vertex, monkeypatch, tmp_path):
    """No credential named: google.auth.default() finds gcloud's ADC file (a service account's here,
    so that its token_uri can be the fake's; a user login's always goes to oauth2.googleapis.com)."""
    adc = tmp_path / "gcloud"
    adc.mkdir()
    Path(account(vertex, projects=("proj-u",))).rename(adc / "application_default_credentials.json")
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(adc))
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    proxy = vertex_proxy(make_proxy, vertex, VERTEXAI_PROJECT="proj-u")
    assert post(proxy, body()).status_code == 200
    (call,) = answered(vertex)
    assert call["path"].startswith("/v1/projects/proj-u/locations/global/") and vertex.token_requests == 1


def test_express_keys_use_the_global_route_without_a_project(make_proxy, vertex):
    proxy = vertex_proxy(make_proxy, vertex, VERTEXAI_API_KEY=EXPRESS_KEY)
    assert post(proxy, body()).status_code == 200
    (call,) = answered(vertex)
    assert call["path"] == f"/v1/publishers/google/models/{FLASH}:streamGenerateContent"
    assert call["headers"]["x-goog-api-key"] == EXPRESS_KEY and "authorization" not in call["headers"]
    assert vertex.token_requests == 0


def tool_round(ask: dict, first: dict) -> dict:
    """``ask`` followed by the answer ``first`` (with its tool call) and the call's result."""
    tool_use = next(b for b in first["content"] if b["type"] == "tool_use")
    return {**ask, "messages": [ask["messages"][0], {"role": "assistant", "content": first["content"]},
                                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use["id"],
                                                              "content": "a b"}]}]}


def test_a_tool_loop_carries_vertex_signatures(make_proxy, vertex):
    proxy = vertex_proxy(make_proxy, vertex, GOOGLE_APPLICATION_CREDENTIALS=account(vertex))
    vertex.enqueue({"thinking": "I will list.", "tool_calls": [("Bash", {"command": "ls"})]}, {"text": "Two files."})
    ask = body(tools=[BASH])
    first = post(proxy, ask).json()
    follow = tool_round(ask, first)
    answer = post(proxy, follow)
    assert answer.status_code == 200, answer.text
    assert answer.json()["content"][-1]["text"] == "Two files."
    assert not vertex.requests[-1]["used_dummy_signature"]


def test_count_tokens_asks_vertex(make_proxy, vertex):
    proxy = vertex_proxy(make_proxy, vertex, GOOGLE_APPLICATION_CREDENTIALS=account(vertex))
    vertex.enqueue({"action": "countTokens", "total_tokens": 4242})
    answer = post(proxy, body(), "/v1/messages/count_tokens")
    assert answer.json() == {"input_tokens": 4242}
    (call,) = [r for r in vertex.requests if r["action"] == "countTokens"]
    assert call["status"] == 200 and call["path"].startswith("/v1/projects/proj-a/locations/global/")


def test_a_pool_of_two_credentials_moves_on_after_a_429(make_proxy, vertex):
    files = f"{account(vertex, 'one')},{account(vertex, 'two')}"
    proxy = vertex_proxy(make_proxy, vertex, VERTEXAI_CREDENTIALS=files)
    vertex.quotas = Quotas(per_key=1, window_s=30)
    assert post(proxy, body()).status_code == 200
    assert post(proxy, body()).status_code == 200
    assert len({r["key"] for r in answered(vertex)}) == 2
    third = post(proxy, body())
    assert third.status_code == 429 and int(third.headers["retry-after"]) >= 1


def test_vertex_falls_back_to_ai_studio(make_proxy, vertex, gemini):
    proxy = make_proxy(PROVIDER_PREFIXES="gemini/,vertex_ai/", VERTEXAI_API_BASE=vertex.root_url,
                       GOOGLE_APPLICATION_CREDENTIALS=account(vertex), BIG_MODEL=f"vertex_ai/{PRO},gemini/{PRO}")
    vertex.quotas = Quotas(per_key=0, window_s=30)
    gemini.enqueue({"text": "From AI Studio."})
    answer = post(proxy, body())
    assert answer.status_code == 200, answer.text
    assert answer.json()["content"][-1]["text"] == "From AI Studio."
    assert [r["status"] for r in vertex.requests if r["action"]] == [429]


@pytest.mark.parametrize("refusal", ["unknown project", "bad key"])
def test_refused_credentials_are_the_proxys_error_without_secrets(make_proxy, vertex, refusal):
    if refusal == "unknown project":
        extra = {"GOOGLE_APPLICATION_CREDENTIALS": account(vertex), "VERTEXAI_PROJECT": "someone-elses"}
        status = 403
    else:
        extra, status = {"VERTEXAI_API_KEY": "vertex-wrong-key-0123456789"}, 401
    proxy = vertex_proxy(make_proxy, vertex, **extra)
    answer = post(proxy, body())
    assert answer.status_code == 500 and answer.json()["error"]["type"] == "api_error", answer.text
    assert [r["status"] for r in vertex.requests if r["action"]] == [status]
    assert "vertex-wrong-key" not in answer.text and "ya29." not in answer.text


def test_a_jwt_signed_by_another_key_gets_no_token(make_proxy, vertex):
    path = Path(account(vertex))
    forged = json.loads(path.read_text())
    vertex.service_account(vertex.accounts, forged["client_email"].replace("proxy", "other"), ("proj-a",))  # type: ignore[attr-defined]
    other = json.loads((vertex.accounts / "other.json").read_text())  # type: ignore[attr-defined]
    path.write_text(json.dumps({**forged, "private_key": other["private_key"]}))
    proxy = vertex_proxy(make_proxy, vertex, GOOGLE_APPLICATION_CREDENTIALS=str(path))
    answer = post(proxy, body())
    assert answer.status_code == 500 and "invalid_grant" in answer.json()["error"]["message"]
    assert "PRIVATE KEY" not in answer.text
    assert vertex.token_requests == 1 and not [r for r in vertex.requests if r["action"]]


def test_a_tool_loop_falling_back_from_vertex_to_ai_studio_keeps_each_ones_signatures(make_proxy, vertex, gemini):
    """The same model on both: Vertex's signature is Vertex's own, so AI Studio gets the placeholder
    it accepts (the fake Gemini refuses signatures it did not issue), and Vertex its own back."""
    proxy = make_proxy(PROVIDER_PREFIXES="gemini/,vertex_ai/", VERTEXAI_API_BASE=vertex.root_url,
                       GOOGLE_APPLICATION_CREDENTIALS=account(vertex), BIG_MODEL=f"vertex_ai/{FLASH},gemini/{FLASH}")
    vertex.enqueue({"thinking": "I will list.", "tool_calls": [("Bash", {"command": "ls"})]})
    ask = body(tools=[BASH])
    first = post(proxy, ask).json()
    follow = tool_round(ask, first)
    vertex.quotas = Quotas(per_key=0, window_s=30)
    gemini.enqueue({"text": "Two files."})
    assert post(proxy, follow).status_code == 200
    assert gemini.requests[-1]["status"] == 200 and gemini.requests[-1]["used_dummy_signature"]
    vertex.quotas = Quotas()   # another replica, where Vertex is not resting
    vertex.enqueue({"text": "Two files."})
    assert post(vertex_proxy(make_proxy, vertex, GOOGLE_APPLICATION_CREDENTIALS=account(vertex)), follow).status_code == 200
    assert vertex.requests[-1]["status"] == 200 and not vertex.requests[-1]["used_dummy_signature"]


def test_the_environment_names_vertex_deployments_and_hides_express_keys():
    from service.config import load_settings
    from service.engines.vertex_settings import has_credentials

    pooled = load_settings({"VERTEXAI_CREDENTIALS": "/a.json,/b.json", "VERTEXAI_PROJECT": "p1 p2",
                            "VERTEXAI_LOCATION": "europe-west4"}, None)
    assert [json.loads(d) for d in pooled.vertexai_deployments] == [
        {"credentials": path, "project": project, "location": "europe-west4"}
        for path in ("/a.json", "/b.json") for project in ("p1", "p2")]
    express = load_settings({"VERTEXAI_API_KEY": EXPRESS_KEY}, None)
    assert [json.loads(d) for d in express.vertexai_deployments] == [{"api_key": EXPRESS_KEY}]
    assert EXPRESS_KEY in express.secrets and EXPRESS_KEY not in repr(express)
    adc = load_settings({}, None)
    assert [json.loads(d) for d in adc.vertexai_deployments] == [{"credentials": "", "project": "", "location": "global"}]
    assert has_credentials({"VERTEXAI_PROJECT": "p"}.get) and not has_credentials({}.get)


def test_a_vertex_credential_lets_the_proxy_start_without_a_gemini_key():
    from service.config import credentials_problem, load_settings

    assert credentials_problem(load_settings({"VERTEXAI_API_KEY": EXPRESS_KEY}, None)) is None
    assert credentials_problem(load_settings({"GOOGLE_APPLICATION_CREDENTIALS": "/sa.json"}, None)) is None
    left_out = load_settings({"VERTEXAI_PROJECT": "p", "PROVIDER_PREFIXES": "gemini/"}, None)
    assert "VERTEXAI_PROJECT" in (credentials_problem(left_out) or "")
    assert "GEMINI_API_KEY" in (credentials_problem(load_settings({}, None)) or "")


def test_vertex_hosts_by_location_and_express_mode():
    from service.engines.litellm_adapter import vertex_url

    assert vertex_url(FLASH, "countTokens", "p", "us-central1", None) == (
        f"https://us-central1-aiplatform.googleapis.com/v1/projects/p/locations/us-central1/publishers/google/models/{FLASH}:countTokens")
    assert vertex_url(FLASH, "streamGenerateContent", "p", "global", None) == (
        f"https://aiplatform.googleapis.com/v1/projects/p/locations/global/publishers/google/models/{FLASH}"
        ":streamGenerateContent?alt=sse")
    assert vertex_url(FLASH, "countTokens", None, "global", None) == (
        f"https://aiplatform.googleapis.com/v1/publishers/google/models/{FLASH}:countTokens")


def test_count_tokens_in_express_mode(make_proxy, vertex):
    proxy = vertex_proxy(make_proxy, vertex, VERTEXAI_API_KEY=EXPRESS_KEY)
    vertex.enqueue({"action": "countTokens", "total_tokens": 77})
    assert post(proxy, body(), "/v1/messages/count_tokens").json() == {"input_tokens": 77}
    (call,) = [r for r in vertex.requests if r["action"] == "countTokens"]
    assert call["path"] == f"/v1/publishers/google/models/{FLASH}:countTokens" and call["status"] == 200


@pytest.mark.parametrize("refusal", ["bad express key", "unknown project"])
def test_refused_credentials_are_not_retried_by_the_sdk(make_proxy, vertex, refusal):
    """errors.yaml's ``retry: false`` on credential refusals: ``x-should-retry: false``, which the
    Anthropic SDK obeys, so one call reaches Vertex however many retries the client allows."""
    import anthropic

    if refusal == "bad express key":
        extra = {"VERTEXAI_API_KEY": "vertex-wrong-key-0123456789"}
    else:
        extra = {"GOOGLE_APPLICATION_CREDENTIALS": account(vertex), "VERTEXAI_PROJECT": "someone-elses"}
    proxy = vertex_proxy(make_proxy, vertex, **extra)
    sdk = anthropic.Anthropic(base_url=proxy.url, api_key="sk-any", max_retries=3)
    with pytest.raises(anthropic.InternalServerError) as raised:
        sdk.messages.create(**{k: v for k, v in body().items() if k != "stream"})
    assert raised.value.response.headers["x-should-retry"] == "false"
    assert len([r for r in vertex.requests if r["action"]]) == 1
    message = raised.value.body["error"]["message"]
    assert message.startswith("Vertex AI ") and "the proxy's credentials" in message, message
    assert "vertex-wrong-key" not in message and "ya29." not in message and "0123456789" not in message


def test_a_streamed_request_refused_before_its_first_byte_says_not_to_retry(make_proxy, vertex):
    proxy = vertex_proxy(make_proxy, vertex, VERTEXAI_API_KEY="vertex-wrong-key-0123456789")
    answer = post(proxy, body(stream=True))
    assert answer.status_code == 500 and answer.headers["x-should-retry"] == "false", answer.text


def test_a_token_endpoint_outage_stays_retryable_and_passes(make_proxy, vertex):
    """Not a refused credential: google-auth's own three tries fail, the client may try again, and does."""
    proxy = vertex_proxy(make_proxy, vertex, GOOGLE_APPLICATION_CREDENTIALS=account(vertex))
    vertex.token_outage = 3
    answer = post(proxy, body())
    assert answer.status_code == 500 and "x-should-retry" not in answer.headers, answer.text
    assert vertex.token_requests == 3 and not [r for r in vertex.requests if r["action"]]
    assert post(proxy, body()).status_code == 200 and vertex.token_requests == 4


def test_other_server_errors_stay_retryable(make_proxy, vertex):
    proxy = vertex_proxy(make_proxy, vertex, VERTEXAI_API_KEY=EXPRESS_KEY)
    vertex.enqueue({"error": {"code": 500, "status": "INTERNAL", "message": "boom"}})
    answer = post(proxy, body())
    assert answer.status_code == 500 and "x-should-retry" not in answer.headers
