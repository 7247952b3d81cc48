"""The HTTP surface beyond translation, through the running proxy: the Anthropic endpoints not offered
(spec/endpoints.yaml) and CORS (off by default, CORS_ORIGINS names the origins allowed)."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import anthropic
import httpx
import pytest
import yaml

from service.config import load_settings
from service.web.endpoints import load_endpoints
from translator import DEFAULT_SPEC_DIR, SpecError

TABLE = yaml.safe_load((DEFAULT_SPEC_DIR / "endpoints.yaml").read_text())
MESSAGE = {entry["path"]: " ".join(entry["message"].split()) for entry in TABLE["unsupported"]}
BODY = {"model": "gemini-2.5-flash", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}
# What the Anthropic TypeScript SDK sends from a browser (dangerouslyAllowBrowser), in a preflight's
# Access-Control-Request-Headers.
SDK_HEADERS = ["anthropic-dangerous-direct-browser-access", "anthropic-version", "anthropic-beta", "content-type",
               "x-api-key", "authorization", "user-agent", "x-stainless-arch", "x-stainless-lang", "x-stainless-os",
               "x-stainless-package-version", "x-stainless-retry-count", "x-stainless-runtime",
               "x-stainless-runtime-version", "x-stainless-timeout"]


EXPOSED = ", ".join(["request-id", "retry-after"] + [f"anthropic-ratelimit-{kind}-{part}" for kind in ("requests", "tokens")
                                                  for part in ("limit", "remaining", "reset")])


def cors_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


def preflight(url: str, origin: str, headers: list[str] = SDK_HEADERS) -> httpx.Response:
    return httpx.options(url + "/v1/messages", headers={
        "origin": origin, "access-control-request-method": "POST",
        "access-control-request-headers": ", ".join(headers)})


# --------------------------------------------------------------------------------------------- not offered
@pytest.mark.parametrize(("method", "path", "table_path"), [
    ("POST", "/v1/complete", "/v1/complete"),
])
def test_endpoints_not_offered_say_what_is_missing(proxy, method, path, table_path):
    response = httpx.request(method, proxy.url + path, json={"requests": []})
    assert response.status_code == 404
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
    assert body["error"]["message"] == MESSAGE[table_path]
    assert f"({table_path}) is not offered by this proxy" in body["error"]["message"]
    assert body["request_id"] == response.headers["request-id"]


def test_only_the_named_paths_are_taken(proxy):
    response = httpx.post(proxy.url + "/v1/complete/more")  # /v1/complete has no sub-paths
    assert response.status_code == 404 and "not offered" not in response.json()["error"]["message"]
    response = httpx.post(proxy.url + "/v1/messages/count_tokens", json=BODY)
    assert response.status_code == 200  # a real endpoint under /v1/messages is untouched


def test_the_sdk_reports_what_is_not_offered(proxy):
    client = anthropic.Anthropic(base_url=proxy.url, api_key="sk", max_retries=0)
    with pytest.raises(anthropic.NotFoundError, match=r"Text Completions API \(/v1/complete\) is not offered"):
        client.post("/v1/complete", cast_to=object, body={"model": "claude-2.1", "prompt": "hi"})


def test_a_row_of_the_table_is_an_endpoint_not_offered(tmp_path, make_proxy):
    spec_dir = tmp_path / "spec"
    shutil.copytree(DEFAULT_SPEC_DIR, spec_dir)
    table = yaml.safe_load((spec_dir / "endpoints.yaml").read_text())
    table["unsupported"].append({"path": "/v1/skills", "subpaths": True, "status": 404, "type": "not_found_error",
                                 "message": "Skills are not offered by this proxy."})
    (spec_dir / "endpoints.yaml").write_text(yaml.safe_dump(table))
    proxy = make_proxy(SPEC_DIR=str(spec_dir))
    response = httpx.get(proxy.url + "/v1/skills/skill_01/versions")
    assert (response.status_code, response.json()["error"]["message"]) == (404, "Skills are not offered by this proxy.")


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    spec_dir = tmp_path / "spec"
    shutil.copytree(DEFAULT_SPEC_DIR, spec_dir)
    path = spec_dir / "endpoints.yaml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    return spec_dir


@pytest.mark.parametrize(("old", "new", "place"), [
    ("type: not_found_error", "type: gone_error", "unsupported[0].type"),
    ("path: /v1/complete", "path: v1/complete", "unsupported[0].path"),
    ("max_age_seconds: 600", "max_age_seconds: forever", "cors.max_age_seconds"),
])
def test_a_broken_endpoints_table_is_named(tmp_path, old, new, place):
    with pytest.raises(SpecError, match=re.escape(f"endpoints.yaml: at {place}: ")):
        load_endpoints(_broken(tmp_path, old, new))


# --------------------------------------------------------------------------------------------- CORS
def test_cors_is_off_by_default(proxy, gemini):
    response = preflight(proxy.url, "https://a.example")
    assert response.status_code == 403 and cors_headers(response) == {}
    response = httpx.get(proxy.url + "/v1/models")
    assert response.status_code == 200 and cors_headers(response) == {}
    assert "origin" not in response.headers.get("vary", "").lower()


def test_a_web_page_cannot_spend_the_key_with_a_simple_request(proxy, gemini):
    """A page needs no CORS to *send* a POST with a text/plain body; the proxy refuses to run it."""
    response = httpx.post(proxy.url + "/v1/messages", content=json.dumps(BODY),
                          headers={"origin": "https://evil.example", "content-type": "text/plain"})
    assert response.status_code == 403 and cors_headers(response) == {}
    assert response.json()["error"] == {"type": "permission_error", "message": "Requests from the web origin "
                                        "'https://evil.example' are refused: it is not in CORS_ORIGINS."}
    assert gemini.requests == []
    assert httpx.post(proxy.url + "/v1/messages", json=BODY).status_code == 200  # no Origin: not a web page


@pytest.fixture
def cors_proxy(make_proxy):
    return make_proxy(CORS_ORIGINS="https://a.example, https://b.example:8443", PROXY_API_KEY="proxy-key")


def test_a_named_origin_gets_its_preflight_answered_before_authentication(cors_proxy):
    response = preflight(cors_proxy.url, "https://a.example", SDK_HEADERS + ["x-not-listed"])
    assert response.status_code == 204  # no key in a preflight, and no 401 for it
    headers = cors_headers(response)
    assert headers["access-control-allow-origin"] == "https://a.example"
    assert headers["access-control-allow-methods"] == "GET, POST, HEAD"
    assert headers["access-control-allow-headers"].split(", ") == SDK_HEADERS
    assert headers["access-control-max-age"] == "600"


def test_a_named_origin_may_read_answers_and_errors(cors_proxy, gemini):
    origin = {"origin": "https://b.example:8443"}
    response = httpx.post(cors_proxy.url + "/v1/messages", json=BODY, headers={**origin, "x-api-key": "proxy-key"})
    assert response.status_code == 200
    assert cors_headers(response) == {"access-control-allow-origin": "https://b.example:8443",
                                      "access-control-expose-headers": EXPOSED}
    assert "Origin" in response.headers["vary"]
    with httpx.stream("POST", cors_proxy.url + "/v1/messages", json={**BODY, "stream": True},
                      headers={**origin, "x-api-key": "proxy-key"}) as stream:
        assert stream.status_code == 200 and stream.headers["access-control-allow-origin"] == origin["origin"]
        stream.read()
    refused = httpx.post(cors_proxy.url + "/v1/messages", json=BODY, headers=origin)  # no key
    assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == origin["origin"]
    missing = httpx.post(cors_proxy.url + "/v1/complete", headers={**origin, "x-api-key": "proxy-key"})
    assert missing.status_code == 404 and missing.headers["access-control-allow-origin"] == origin["origin"]


@pytest.mark.parametrize("origin", ["https://c.example", "http://a.example", "https://a.example.evil", "null"])
def test_other_origins_are_refused_without_cors_headers(cors_proxy, gemini, origin):
    response = preflight(cors_proxy.url, origin)
    assert response.status_code == 401 and cors_headers(response) == {}  # a preflight carries no key
    response = httpx.post(cors_proxy.url + "/v1/messages", json=BODY,
                          headers={"origin": origin, "x-api-key": "proxy-key"})
    assert response.status_code == 403 and response.json()["error"]["type"] == "permission_error"
    assert cors_headers(response) == {} and "Origin" in response.headers["vary"]
    assert gemini.requests == []


@pytest.mark.parametrize("value", ["*", "https://a.example/app", "a.example", "https://*.example", "ftp://a.example"])
def test_cors_origins_must_name_origins(value):
    with pytest.raises(ValueError, match=r"CORS_ORIGINS: .* is not a web origin"):
        load_settings({"CORS_ORIGINS": value}, env_file=None)


def test_cors_origins_are_normalised():
    settings = load_settings({"CORS_ORIGINS": "https://A.example/ http://[::1]:3000,http://localhost:5173"},
                             env_file=None)
    assert settings.cors_origins == ("https://a.example", "http://[::1]:3000", "http://localhost:5173")
