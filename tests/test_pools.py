"""Key pools and fallback chains: the first 429 does not end a session (issue 10).

The fake Gemini enforces quotas per key and per model as the real API does (429 RESOURCE_EXHAUSTED
with QuotaFailure and RetryInfo for the rest of the window); the proxy must rotate keys, rest a
key as long as Gemini said, fall back along the chain, and answer a fast 429 when everything rests.
"""
from __future__ import annotations

import dataclasses
import shutil
import time
from collections import Counter

import httpx
import pytest

from service.config import load_settings
from service.engines.providers import load_providers
from tests.fake_gemini.quotas import Quotas
from translator import DEFAULT_SPEC_DIR, SpecError
from tests.sse_grammar import check_stream

KEYS = ("pool-key-aaaaaaaaaaaa", "pool-key-bbbbbbbbbbbb", "pool-key-cccccccccccc")
PRO, FLASH = "gemini-3.1-pro-preview", "gemini-3.8-flash"


def body(model: str = "claude-sonnet-4-5", stream: bool = False, text: str = "hi") -> dict:
    return {"model": model, "max_tokens": 50, "stream": stream, "messages": [{"role": "user", "content": text}]}


def post(proxy, payload: dict) -> httpx.Response:
    return httpx.post(proxy.url + "/v1/messages", json=payload, timeout=30)


def calls(gemini, status: int | None = None) -> Counter:
    """Gemini calls per (key, model), of one status or all."""
    return Counter((r["key"], r["model"]) for r in gemini.requests
                   if r["action"] != "countTokens" and (status is None or r["status"] == status))


def pooled(make_proxy, **extra: str):
    return make_proxy(GEMINI_API_KEYS=",".join(KEYS[1:]), GEMINI_API_KEY=KEYS[0], **extra)


@pytest.mark.parametrize("stream", [False, True])
def test_keys_rotate_on_429_and_a_key_rests_as_long_as_gemini_said(make_proxy, gemini, stream):
    gemini.quotas = Quotas(keys=frozenset(KEYS), per_key=2, window_s=30)
    proxy = pooled(make_proxy, BIG_MODEL=FLASH)  # a model without fallbacks
    answers = [post(proxy, body(stream=stream)) for _ in range(6)]
    assert [a.status_code for a in answers] == [200] * 6, [a.text for a in answers]
    if stream:
        for answer in answers:
            check_stream(answer.content)
    served = calls(gemini, 200)
    assert served == {(key, FLASH): 2 for key in KEYS}
    # Each key's quota ran out at most once, and a resting key was never asked again.
    assert all(count == 1 for count in calls(gemini, 429).values())
    before = len(gemini.requests)
    started = time.monotonic()
    refused = post(proxy, body(stream=stream))
    assert time.monotonic() - started < 2  # at once, not after the 30 s window
    assert refused.status_code == 429, refused.text
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert 1 <= int(refused.headers["retry-after"]) <= 30
    # Every key got at most its one 429 of this window, whatever the order the Router chose.
    assert all(count <= 1 for count in calls(gemini, 429).values())
    assert len(gemini.requests) - before <= len(KEYS)
    again = len(gemini.requests)
    assert post(proxy, body(stream=stream)).status_code == 429
    assert len(gemini.requests) == again  # everything rests: Gemini is not asked at all


def test_a_single_key_429_is_answered_at_once_and_the_key_rests_until_gemini_said(make_proxy, gemini):
    proxy = make_proxy(UPSTREAM_RETRIES="2")
    gemini.enqueue({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Slow down.",
                              "retry_delay": "1.5s"}}, {"text": "Recovered."})
    first = post(proxy, body(model="claude-haiku-4-5", stream=True))
    assert first.status_code == 429 and first.headers["retry-after"] == "2"
    assert post(proxy, body(model="claude-haiku-4-5")).status_code == 429
    assert [r["status"] for r in gemini.requests] == [429]  # the resting key was not asked
    deadline = time.monotonic() + 10
    while (answer := post(proxy, body(model="claude-haiku-4-5"))).status_code == 429:
        assert time.monotonic() < deadline
        time.sleep(0.1)  # waiting out a rest measured in seconds: the behaviour under test
    assert answer.json()["content"][0]["text"] == "Recovered."
    assert [r["status"] for r in gemini.requests] == [429, 200]


@pytest.mark.parametrize("stream", [False, True])
def test_a_model_out_of_quota_on_every_key_falls_back_to_the_next_of_the_chain(make_proxy, gemini, stream):
    gemini.quotas = Quotas(keys=frozenset(KEYS), per_model={PRO: 0}, window_s=30)
    proxy = pooled(make_proxy, BIG_MODEL=f"{PRO},{FLASH}")
    answer = post(proxy, body(model="claude-opus-4-1", stream=stream))
    assert answer.status_code == 200, answer.text
    if stream:
        events = check_stream(answer.content)
        assert events[0]["message"]["model"] == "claude-opus-4-1"
    else:
        assert answer.json()["model"] == "claude-opus-4-1"  # what the client asked for
    assert sum(calls(gemini, 429).values()) == len(KEYS)  # pro on each key once
    assert set(calls(gemini, 200)) <= {(key, FLASH) for key in KEYS}
    # The next request does not ask pro again while its keys rest.
    post(proxy, body(model="claude-opus-4-1", stream=stream))
    assert sum(calls(gemini, 429).values()) == len(KEYS)


def test_an_overloaded_model_falls_back_after_its_retries(make_proxy, gemini):
    proxy = make_proxy(BIG_MODEL=f"{PRO},{FLASH}", UPSTREAM_RETRIES="1", RETRY_MAX_WAIT_SECONDS="5")
    overloaded = {"error": {"code": 503, "status": "UNAVAILABLE", "message": "The model is overloaded."}}
    gemini.enqueue(overloaded, overloaded, {"text": "From flash."})
    answer = post(proxy, body())
    assert answer.status_code == 200, answer.text
    assert [(r["model"], r["status"]) for r in gemini.requests] == [(PRO, 503), (PRO, 503), (FLASH, 200)]


def test_a_400_does_not_fall_back(make_proxy, gemini):
    proxy = make_proxy(BIG_MODEL=f"{PRO},{FLASH}")
    gemini.enqueue({"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "Bad thing."}})
    assert post(proxy, body()).status_code == 400
    assert [r["model"] for r in gemini.requests] == [PRO]


def test_every_model_of_the_chain_resting_is_a_fast_429_with_the_shortest_rest(make_proxy, gemini):
    gemini.quotas = Quotas(keys=frozenset(KEYS), per_model={PRO: 0, FLASH: 0}, window_s=40)
    proxy = pooled(make_proxy, BIG_MODEL=f"{PRO},{FLASH}")
    started = time.monotonic()
    refused = post(proxy, body(stream=True))
    assert time.monotonic() - started < 2
    assert refused.status_code == 429 and refused.json()["error"]["type"] == "rate_limit_error"
    assert 30 <= int(refused.headers["retry-after"]) <= 40
    assert sum(calls(gemini, 429).values()) == 2 * len(KEYS)


def test_a_rejected_key_is_set_aside_while_the_others_serve(make_proxy, gemini):
    gemini.quotas = Quotas(keys=frozenset(KEYS[1:]))  # the first key is not valid
    proxy = pooled(make_proxy, BIG_MODEL=PRO)
    assert all(post(proxy, body()).status_code == 200 for _ in range(6))
    rejected = [r for r in gemini.requests if r["key"] == KEYS[0]]
    assert len(rejected) <= 1


def test_keys_never_reach_logs_or_answers(make_proxy, gemini, caplog):
    gemini.quotas = Quotas(keys=frozenset(KEYS), per_model={FLASH: 0}, window_s=30)
    proxy = pooled(make_proxy, BIG_MODEL=FLASH, LOG_LEVEL="DEBUG")
    with caplog.at_level("DEBUG"):
        answer = post(proxy, body())
    assert answer.status_code == 429
    for key in KEYS:
        assert key not in answer.text and key not in caplog.text


BASH = {"name": "Bash", "description": "Run a command", "input_schema": {
    "type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}


@pytest.mark.parametrize("stream", [False, True])
def test_a_gemini_3_tool_loop_carries_on_across_a_fallback(make_proxy, gemini, stream):
    """Pro issues a signature for its call; the next step falls back to flash, which must not get
    pro's signature (Gemini: 400 Corrupted thought signature) but the placeholder it accepts."""
    proxy = pooled(make_proxy, BIG_MODEL=f"{PRO},{FLASH}")
    gemini.enqueue({"thinking": "I will list.", "tool_calls": [("Bash", {"command": "ls"})]})
    ask = {**body(stream=False), "tools": [BASH]}
    first = post(proxy, ask).json()
    tool_use = next(b for b in first["content"] if b["type"] == "tool_use")
    assert gemini.requests[-1]["model"] == PRO
    gemini.quotas = Quotas(keys=frozenset(KEYS), per_model={PRO: 0}, window_s=30)
    gemini.enqueue({"text": "Two files."})
    follow = {**ask, "stream": stream, "messages": [
        ask["messages"][0], {"role": "assistant", "content": first["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use["id"], "content": "a b"}]}]}
    answer = post(proxy, follow)
    assert answer.status_code == 200, answer.text
    served = [r for r in gemini.requests if r["status"] == 200]
    assert served[-1]["model"] == FLASH and served[-1]["used_dummy_signature"]
    # The same step served by pro (another replica, its quota back) gets pro's own signature back.
    gemini.quotas = Quotas(keys=frozenset(KEYS))
    assert post(pooled(make_proxy, BIG_MODEL=PRO), follow).status_code == 200
    assert gemini.requests[-1]["model"] == PRO and not gemini.requests[-1]["used_dummy_signature"]


def test_the_provider_table_says_which_engine_and_keys_serve_a_target(tmp_path):
    """spec/providers.yaml: the longest prefix's row, bound to the settings it names; the default row
    for the rest (LiteLLM with the environment's credentials, nothing pooled)."""
    settings = dataclasses.replace(load_settings(), gemini_api_keys=KEYS[:2], gemini_api_base="http://base",
                                   gemini_key_rpm=5, gemini_key_tpm=0, anthropic_api_key="")
    providers = load_providers(settings, DEFAULT_SPEC_DIR)
    gemini = providers.of("gemini/gemini-2.5-flash")
    assert (gemini.engine, gemini.keys, gemini.params, gemini.weights) == ("gemini", KEYS[:2], {"api_base": "http://base"},
                                                                          {"rpm": 5})
    assert gemini.count_tokens and gemini.pooled
    anthropic = providers.of("anthropic/claude-x")
    assert (anthropic.engine, anthropic.pooled, anthropic.count_tokens) == ("litellm", False, False)
    keyed = load_providers(dataclasses.replace(settings, anthropic_api_key="sk-ant"), DEFAULT_SPEC_DIR)
    assert keyed.of("anthropic/claude-x").keys == ("sk-ant",)
    assert providers.of("ollama/llama3") is providers.default and providers.default.engine == "litellm"
    no_keys = load_providers(dataclasses.replace(settings, gemini_api_keys=()), DEFAULT_SPEC_DIR).of("gemini/x")
    assert no_keys.keys == () and "GEMINI_API_KEY" in no_keys.missing_keys
    broken = shutil.copytree(DEFAULT_SPEC_DIR, tmp_path / "spec")
    (broken / "providers.yaml").write_text((broken / "providers.yaml").read_text().replace(
        "keys: gemini_api_keys", "keys: gemini_keys"))
    with pytest.raises(SpecError, match="'gemini_keys' is not a setting"):
        load_providers(settings, broken)
    (broken / "providers.yaml").write_text("providers: {gemini/: {engine: bedrock}}\ndefault: {engine: litellm}\n")
    with pytest.raises(SpecError, match="providers.yaml: at providers.gemini/.engine"):
        load_providers(settings, broken)
