"""No model name can steer the proxy (issue 15).

A model name picks LiteLLM's provider (endpoint and credentials) by its prefix, and goes into
URL paths. Only the prefixes models.yaml enables (Gemini by default) and names matching its
model_name_pattern are accepted; everything else is a 400 before any I/O.
"""
from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest

from tests.test_spec import _broken_copy
from translator import (AnthropicError, SpecError, load_spec, resolve_model, translate_count_tokens,
                        translate_request)

SPEC = load_spec(big_model="gemini-3.1-pro-preview", small_model="gemini-3.8-flash")
BIG = "gemini/gemini-3.1-pro-preview"

NOT_ENABLED = ["ollama/llama3", "openai/gpt-4o", "bedrock/x", "anthropic/claude-sonnet-4-5",
               "vertex_ai/gemini-2.5-pro", "hosted_vllm/m"]
MALFORMED = [  # names that would choose a path or query on the provider's host
    "gemini/../../x?y=1", "gemini/a/b", "gemini/x#y", "gemini/x:y", "gemini/%2e%2e", "gemini/..",
    "gemini/.", "gemini/", "/x", "//", "foo/bar", "models/gemini-2.5-pro", "Ollama/llama3",
    "gemini/gemini-2.5-pro\n", "gemini/gemini-2.5-pro\r\nx-goog-api-key: k", "gemini/gemini-2.5-pr\u043e",
    "gemini/\u212aimi",  # Kelvin sign, which case-insensitive matching would take for K
    "gemini/gemini-2.5-pro\u200b", "gemini/gemini-2.5-pro\x00", "gemini/gemini-2.5-pro ",
]
# Bare names are only looked up (a listed model, an alias): they never go into a URL as they are, so
# odd ones are a 404 or, when an alias matches (Vertex's claude-sonnet-4-5@20250929), served.
UNLISTED_BARE = [
    "..", ".", "...", "gemini-2.5-pro?alt=x", "gemini-2.5-pro ", " gemini-2.5-pro", "gemini-2.5-pro\n",
    "gemini-2.5-pro\r\nx-goog-api-key: k", "gemini-2.5-pro\t", "gemini-2.5-pr\u043e", "\uff47emini-2.5-pro",
    "gemini-\uff12.5-pro", "gemini-2.5-pro\u200b", "\u212aimi", "gemini-2.5-pro\x00",
]
ALIASED_BARE = ["claude sonnet", "claude-sonnet-4-5\n", "claude-opus-4-1[1m][1m]", "claude-opus-4-1[2m]",
                "claude-sonnet-4-5@20250929", "anthropic.claude-sonnet-4-5-20250929-v1:0"]


def refused(requested: str, spec=SPEC) -> AnthropicError:
    with pytest.raises(AnthropicError) as caught:
        resolve_model(requested, spec.models)
    error = caught.value
    assert (error.status, error.type) == (400, "invalid_request_error"), requested
    assert error.message.startswith("model: "), error.message
    return error


@pytest.mark.parametrize("requested", NOT_ENABLED)
def test_a_known_provider_prefix_is_not_enabled_by_default(requested):
    prefix = requested.split("/")[0] + "/"
    message = refused(requested).message
    assert f"provider prefix '{prefix}' is not enabled" in message
    assert "PROVIDER_PREFIXES" in message and "models.yaml" in message


@pytest.mark.parametrize("requested", MALFORMED)
def test_a_malformed_name_is_a_400_naming_it(requested):
    message = refused(requested).message
    assert repr(requested.removesuffix("[1m]")) in message and "not a valid model name" in message


@pytest.mark.parametrize("requested", UNLISTED_BARE)
def test_an_unlisted_bare_name_is_not_found_whatever_it_holds(requested):
    with pytest.raises(AnthropicError) as caught:
        resolve_model(requested, SPEC.models)
    assert (caught.value.status, caught.value.type) == (404, "not_found_error")


@pytest.mark.parametrize("requested", ALIASED_BARE)
def test_a_bare_name_that_matches_an_alias_goes_to_its_target(requested):
    assert resolve_model(requested, SPEC.models).target == BIG


@pytest.mark.parametrize(("requested", "target"), [
    ("gemini/gemini-2.5-pro", "gemini/gemini-2.5-pro"),
    ("gemini-2.5-flash", "gemini/gemini-2.5-flash"),
    ("claude-sonnet-4-5", BIG),
    ("claude-opus-4-1[1m]", BIG),
    ("gemini/some-future-model-001", "gemini/some-future-model-001"),
    ("gemini/gemini-2.5-pro[1m]", "gemini/gemini-2.5-pro"),
    ("claude-3.5-haiku_x", "gemini/gemini-3.8-flash"),
])
def test_well_formed_names_resolve(requested, target):
    assert resolve_model(requested, SPEC.models).target == target


@pytest.mark.parametrize("requested", ["gpt-4o", "llama-3", "a..b", ".x", "gemini-99"])
def test_an_unknown_well_formed_name_is_still_a_404(requested):
    with pytest.raises(AnthropicError) as caught:
        resolve_model(requested, SPEC.models)
    assert (caught.value.status, caught.value.type) == (404, "not_found_error")


def test_both_translations_refuse_before_building_a_call():
    body = {"model": "ollama/llama3", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    for translate in (translate_request, translate_count_tokens):
        with pytest.raises(AnthropicError) as caught:
            translate(body, SPEC)
        assert caught.value.status == 400


def test_an_opted_in_prefix_is_used_as_it_is_and_its_rest_still_checked():
    spec = load_spec(provider_prefixes=["gemini/", "ollama/"])
    route = resolve_model("ollama/llama3", spec.models)
    assert (route.target, route.facts) == ("ollama/llama3", spec.models.fallback)
    for name in ("ollama/../x", "ollama/llama3:8b", "ollama/a/b"):
        refused(name, spec)
    assert "'openai/' is not enabled" in refused("openai/gpt-4o", spec).message


def test_the_override_replaces_the_list():
    spec = load_spec(provider_prefixes=["ollama/"])
    assert "'gemini/' is not enabled" in refused("gemini/gemini-2.5-pro", spec).message
    assert resolve_model("gemini-2.5-pro", spec.models).target == "gemini/gemini-2.5-pro"


def _edited_spec(tmp_path: Path, old: str, new: str) -> Path:
    return _broken_copy(tmp_path, "models", old, new)  # a copy of spec/ with models.yaml edited


def test_an_operator_opts_in_by_editing_the_table(tmp_path):
    spec = load_spec(_edited_spec(tmp_path, "provider_prefixes: [gemini/]", "provider_prefixes: [gemini/, vertex_ai/]"))
    assert resolve_model("vertex_ai/gemini-2.5-pro", spec.models).target == "vertex_ai/gemini-2.5-pro"


def test_suffixes_come_from_the_table(tmp_path):
    spec = load_spec(_edited_spec(tmp_path, "strip_suffixes: ['[1m]']", "strip_suffixes: ['[1m]', '-fast']"))
    assert resolve_model("claude-opus-4-1-fast", spec.models).target == "gemini/gemini-3.1-pro-preview"


@pytest.mark.parametrize(("overrides", "fragments"), [
    ({"big_model": "gemini/../../x?y=1"}, ["BIG_MODEL", "'gemini/../../x?y=1'", "not a valid model name"]),
    ({"small_model": "ollama/llama3"}, ["SMALL_MODEL", "'ollama/' is not enabled"]),
    ({"big_model": "gemini-2.5-pro\n"}, ["BIG_MODEL", "not a valid model name"]),
    ({"big_model": ".."}, ["BIG_MODEL", "not a valid model name"]),
    ({"big_model": "ollama/llama3", "provider_prefixes": ["gemini/"]}, ["BIG_MODEL", "not enabled"]),
    ({"provider_prefixes": ["ollama"]}, ["with the overrides", "provider_prefixes[0]", "does not match"]),
    ({"provider_prefixes": ["gemini/", "../"]}, ["provider_prefixes[1]", "does not match"]),
])
def test_a_bad_override_stops_start_up_naming_it(overrides, fragments):
    with pytest.raises(SpecError) as caught:
        load_spec(**overrides)
    for fragment in fragments:
        assert fragment in str(caught.value)


def test_good_overrides_load():
    spec = load_spec(big_model="ollama/llama3", small_model="gemini-9-future", provider_prefixes=["gemini/", "ollama/"])
    assert resolve_model("claude-opus-4-8", spec.models).target == "ollama/llama3"
    assert resolve_model("claude-haiku-4-5", spec.models).target == "gemini/gemini-9-future"


@pytest.mark.parametrize(("old", "new", "fragments"), [
    ("target: SMALL_MODEL", "target: gemini/x?y", ["aliases[0].target", "not a valid model name"]),
    ("BIG_MODEL: gemini-3.1-pro-preview", "BIG_MODEL: openai/gpt-4o", ["BIG_MODEL", "'openai/' is not enabled"]),
    ("model_name_pattern: '^(?!\\.+$)[A-Za-z0-9._-]+$'", "model_name_pattern: '[a-z'",
     ["model_name_pattern", "is not a 'regex'"]),
])
def test_a_table_that_would_steer_stops_start_up(tmp_path, old, new, fragments):
    with pytest.raises(SpecError) as caught:
        load_spec(_edited_spec(tmp_path, old, new))
    for fragment in fragments:
        assert fragment in str(caught.value)


# --- through the service: a listener stands in for the operator's Ollama, OpenAI gateway and Gemini host --

STEERING = ["ollama/llama3", "ollama_chat/llama3", "openai/x", "gemini/../../x", "gemini/../../x?y=1",
            "gemini/x:streamGenerateContent", "bedrock/x"]


@pytest.fixture
def listener():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)  # a connection is completed by the kernel and waits here, accepted or not
    sock.setblocking(False)
    yield sock
    sock.close()


def connections(sock: socket.socket) -> int:
    """How many connections reached the listener so far (its backlog, taken without waiting)."""
    count = 0
    while True:
        try:
            conn, _ = sock.accept()
        except BlockingIOError:
            return count
        conn.close()
        count += 1


def _aimed_at(listener, monkeypatch) -> str:
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    for name in ("OLLAMA_API_BASE", "OPENAI_BASE_URL", "OPENAI_API_BASE"):
        monkeypatch.setenv(name, url)  # read by LiteLLM in this process, where the proxy runs
    monkeypatch.setenv("OPENAI_API_KEY", "sk-operators-own-key")
    return url


# Short upstream timeouts only bound how long a relaying proxy (the old code) hangs on the silent listener.
QUICK = {"REQUEST_TIMEOUT_SECONDS": "2", "FIRST_BYTE_TIMEOUT_SECONDS": "2", "STREAM_GRACE_SECONDS": "1",
         "UPSTREAM_RETRIES": "0"}


ATTEMPTS = {"messages": ("/v1/messages", {"max_tokens": 5}),
            "stream": ("/v1/messages", {"max_tokens": 5, "stream": True}),
            "count_tokens": ("/v1/messages/count_tokens", {})}


@pytest.mark.parametrize("attempt", ATTEMPTS)
@pytest.mark.parametrize("model", STEERING)
def test_no_steering_name_makes_the_proxy_connect_anywhere(make_proxy, listener, monkeypatch, model, attempt):
    url = _aimed_at(listener, monkeypatch)
    proxy = make_proxy(GEMINI_API_BASE=url + "/v1beta", **QUICK)
    path, extra = ATTEMPTS[attempt]
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}
    response = httpx.post(proxy.url + path, json=body, timeout=10)
    # The 400 is the proxy's decision: any connection it made for this request is in the backlog by now.
    assert connections(listener) == 0, f"{model} ({attempt}) reached the listener"
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"].startswith("model: ")


def test_an_enabled_prefix_does_reach_its_provider(make_proxy, listener, monkeypatch, tmp_path):
    """The control: the listener does see a relay once the operator enables ollama/."""
    _aimed_at(listener, monkeypatch)
    spec_dir = _edited_spec(tmp_path, "provider_prefixes: [gemini/]", "provider_prefixes: [gemini/, ollama/]")
    proxy = make_proxy(SPEC_DIR=str(spec_dir), **QUICK)
    body = {"model": "ollama/llama3", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    response = httpx.post(proxy.url + "/v1/messages", json=body, timeout=30)
    assert response.status_code >= 500  # the listener never answers
    assert connections(listener) >= 1
