"""Explicit context caching through the proxy, against the fake Gemini's strict cachedContents."""
from __future__ import annotations

import copy
import secrets
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

import translator
from bench.claude_code_request import claude_code_request
from tests.fake_gemini import signatures as fake_signatures
from tests.servers import REDIS_SERVER, RedisServer

SPEC = translator.load_spec()
MODEL = "gemini-3.8-flash"


def session_start(model: str = MODEL) -> dict[str, Any]:
    """Claude Code's system prompt and tools, and a first user turn; breakpoints as Claude Code sets them."""
    body = claude_code_request(stream=False, model=model)
    return {**{k: body[k] for k in ("model", "max_tokens", "system", "tools")},
            "messages": [{"role": "user", "content": [{"type": "text", "text": "Fix the failing test.",
                                                       "cache_control": {"type": "ephemeral"}}]}]}


def next_turn(body: dict[str, Any], answer: dict[str, Any], turn: int) -> dict[str, Any]:
    """The answer's tool call, its result (2 KB of output), the breakpoint moved to the new last block."""
    body = copy.deepcopy(body)
    for message in body["messages"]:
        for block in message["content"] if isinstance(message["content"], list) else ():
            block.pop("cache_control", None)
    call = next(block for block in answer["content"] if block["type"] == "tool_use")
    body["messages"] += [{"role": "assistant", "content": answer["content"]},
                         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"],
                                                       "content": f"output of step {turn}: " + "ok " * 700,
                                                       "cache_control": {"type": "ephemeral"}}]}]
    return body


def run_session(proxy: Any, gemini: Any, turns: int = 10) -> list[dict[str, Any]]:
    body, usages = session_start(), []
    for turn in range(turns):
        gemini.enqueue({"tool_calls": [("Bash", {"command": f"pytest -x -k step{turn}"})]})
        answer = httpx.post(proxy.url + "/v1/messages", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        usages.append(answer.json()["usage"])
        body = next_turn(body, answer.json(), turn)
    return usages


def cost(usages: list[dict[str, Any]], storage_token_hours: float) -> dict[str, Any]:
    rates = translator.rates(SPEC.prices, MODEL, __import__("datetime").date(2026, 12, 7), "standard")
    sums = {field: sum(u[key] for u in usages) for field, key in (
        ("uncached_input_tokens", "input_tokens"), ("cache_creation_input_tokens", "cache_creation_input_tokens"),
        ("cache_read_input_tokens", "cache_read_input_tokens"), ("output_tokens", "output_tokens"))}
    tokens = sum((rates.per_token[f] * n for f, n in sums.items()), Decimal(0))
    storage = rates.storage_per_hour * Decimal(str(storage_token_hours))
    return {**sums, "token_usd": round(float(tokens), 6), "storage_usd": round(float(storage), 6)}


def storage_hours(gemini: Any) -> float:
    return sum(c["tokens"] * (c["expires"] - c["created"]) / 3600 for c in gemini.caches.caches.values())


def test_a_claude_code_session_reads_its_prefix_from_an_explicit_cache(make_proxy, gemini, capsys, monkeypatch):
    # The two runs are two conversations: the fake's thought signatures are random bytes of a random
    # length (60-184), which the next turns carry back. Of one length here, the runs' turns are the same
    # size, and their token totals differ only where a body is split (below).
    monkeypatch.setattr(fake_signatures, "secrets", SimpleNamespace(choice=lambda lengths: 120,
                                                                    token_bytes=secrets.token_bytes))
    issued_before = set(gemini.issued_signatures)   # (the fake serves the whole test session)
    implicit = run_session(make_proxy(BIG_MODEL=MODEL, CONTEXT_CACHE="implicit"), gemini)
    assert not any(r["action"] == "cachedContents" for r in gemini.requests)
    assert all(u["cache_read_input_tokens"] == 0 and u["cache_creation_input_tokens"] == 0 for u in implicit)
    gemini.reset()
    explicit = run_session(make_proxy(BIG_MODEL=MODEL), gemini)
    issued = gemini.issued_signatures - issued_before
    assert issued and len({len(signature) for signature in issued}) == 1
    creates = [r for r in gemini.requests if r["action"] == "cachedContents" and r["method"] == "POST"]
    generates = [r for r in gemini.requests if r["action"] == "generateContent" or r["action"] == "streamGenerateContent"]
    assert creates and all(r["status"] == 200 for r in gemini.requests if r["action"])
    assert all("cachedContent" in r["body"] and "tools" not in r["body"] for r in generates)
    assert explicit[0]["cache_creation_input_tokens"] > 4096 and explicit[0]["cache_read_input_tokens"] == 0
    assert all(u["cache_read_input_tokens"] > 4096 for u in explicit[1:] if not u["cache_creation_input_tokens"])
    assert sum(1 for u in explicit if u["cache_creation_input_tokens"]) == len(creates) < len(explicit)
    # Each turn bills every token once: the totals agree with the implicit run's (the fake counts characters
    # of JSON, so a body split in two counts a few brackets differently).
    for split, whole in zip(explicit, implicit):
        total = sum(split[k] for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"))
        assert total == pytest.approx(whole["input_tokens"], rel=0.005)
    figures = {"implicit": cost(implicit, 0), "explicit": cost(explicit, storage_hours(gemini)),
               "caches_made": len(creates)}
    with capsys.disabled():
        print("\nclaude-code session, 10 turns,", MODEL, figures)
    assert figures["explicit"]["token_usd"] + figures["explicit"]["storage_usd"] < figures["implicit"]["token_usd"]


def test_a_cache_gemini_no_longer_knows_is_dropped_and_the_call_goes_without_it(make_proxy, gemini):
    proxy = make_proxy(BIG_MODEL=MODEL)
    body = session_start()
    gemini.enqueue({"text": "one"}, {"text": "two"})
    assert httpx.post(proxy.url + "/v1/messages", json=body, timeout=30).status_code == 200
    gemini.caches.caches.clear()   # expired or deleted behind the proxy's back
    answer = httpx.post(proxy.url + "/v1/messages", json=body, timeout=30)
    assert answer.status_code == 200 and answer.json()["content"][0]["text"] == "two", answer.text
    statuses = [r["status"] for r in gemini.requests if r["action"] == "streamGenerateContent"]
    assert statuses[-2:] == [404, 200]


@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")
def test_two_replicas_share_the_cache_through_redis(make_proxy, gemini):
    with RedisServer().start() as redis:
        first, second = (make_proxy(BIG_MODEL=MODEL, REDIS_URL=redis.url) for _ in range(2))
        body = session_start()
        assert httpx.post(first.url + "/v1/messages", json=body, timeout=30).status_code == 200
        answer = httpx.post(second.url + "/v1/messages", json=body, timeout=30)
        assert answer.json()["usage"]["cache_read_input_tokens"] > 4096, answer.text
    assert len([r for r in gemini.requests if r["action"] == "cachedContents" and r["method"] == "POST"]) == 1


# --- the fake's cachedContents, as strict as Gemini's ---------------------------------------------

BIG = [{"role": "user", "parts": [{"text": "word " * 4000}]}]     # ~5,000 tokens by the fake's count
SYSTEM = {"parts": [{"text": "Be terse."}]}


def call(gemini: Any, method: str, path: str, key: str = "key-a", **kwargs: Any) -> httpx.Response:
    return httpx.request(method, gemini.base_url + path, headers={"x-goog-api-key": key}, timeout=10, **kwargs)


def made(gemini: Any, model: str = MODEL, contents: Any = BIG, key: str = "key-a", **extra: Any) -> dict[str, Any]:
    answer = call(gemini, "POST", "/cachedContents", key, json={"model": f"models/{model}", "contents": contents,
                                                                 "systemInstruction": SYSTEM, "ttl": "300s", **extra})
    assert answer.status_code == 200, answer.text
    return answer.json()


def generate(gemini: Any, body: dict[str, Any], model: str = MODEL, key: str = "key-a") -> httpx.Response:
    return call(gemini, "POST", f"/models/{model}:generateContent", key, json=body)


def test_the_fake_creates_gets_lists_patches_and_deletes_a_cache(gemini):
    cache = made(gemini)
    assert cache["name"].startswith("cachedContents/") and cache["usageMetadata"]["totalTokenCount"] > 4096
    assert call(gemini, "GET", "/" + cache["name"]).json()["expireTime"] == cache["expireTime"]
    assert [c["name"] for c in call(gemini, "GET", "/cachedContents").json()["cachedContents"]] == [cache["name"]]
    assert call(gemini, "GET", "/cachedContents", "key-b").json()["cachedContents"] == []
    patched = call(gemini, "PATCH", "/" + cache["name"], params={"updateMask": "ttl"}, json={"ttl": "3600s"})
    assert patched.status_code == 200 and patched.json()["expireTime"] > cache["expireTime"]
    assert call(gemini, "DELETE", "/" + cache["name"]).status_code == 200
    assert call(gemini, "GET", "/" + cache["name"]).status_code == 404


def test_the_fake_keeps_a_cache_to_its_key_its_model_its_minimum_and_its_ttl(gemini):
    cache = made(gemini)
    user = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "cachedContent": cache["name"]}
    answer = generate(gemini, user)
    assert answer.status_code == 200 and answer.json()["usageMetadata"]["cachedContentTokenCount"] == \
        cache["usageMetadata"]["totalTokenCount"]
    assert generate(gemini, user, key="key-b").status_code == 403
    assert "has to be the same" in generate(gemini, user, model="gemini-3.7-flash").json()["error"]["message"]
    for field, value in (("systemInstruction", SYSTEM), ("tools", [{"functionDeclarations": [{"name": "f"}]}]),
                         ("toolConfig", {"functionCallingConfig": {"mode": "AUTO"}})):
        refused = generate(gemini, {**user, field: value})
        assert refused.status_code == 400 and "can not be used with GenerateContent" in refused.json()["error"]["message"]
    small = call(gemini, "POST", "/cachedContents", json={"model": f"models/{MODEL}", "contents": BIG[:0] or
                                                          [{"role": "user", "parts": [{"text": "word " * 2000}]}]})
    assert small.status_code == 400 and "Cached content is too small" in small.json()["error"]["message"]
    assert made(gemini, "gemini-2.5-flash", [{"role": "user", "parts": [{"text": "word " * 1000}]}])  # 1,024 there
    now = gemini.caches.clock()
    gemini.caches.clock = lambda: now + 301
    try:
        assert generate(gemini, user).status_code == 404
    finally:
        gemini.caches.clock = __import__("time").time


def test_the_proxy_reports_cache_tokens_in_the_ledger_and_the_cost_report(make_proxy, gemini):
    proxy = make_proxy(BIG_MODEL=MODEL, PROXY_API_KEY="admin-key")
    body = session_start()
    usages = [httpx.post(proxy.url + "/v1/messages", json=body, timeout=30,
                         headers={"x-api-key": "admin-key"}).json()["usage"] for _ in range(2)]
    assert usages[0]["cache_creation"]["ephemeral_5m_input_tokens"] == usages[0]["cache_creation_input_tokens"] > 0
    assert usages[1]["cache_read_input_tokens"] == usages[0]["cache_creation_input_tokens"]
    day = __import__("time").strftime("%Y-%m-%dT00:00:00Z", __import__("time").gmtime())
    admin = {"x-api-key": "admin-key"}
    usage = httpx.get(proxy.url + "/v1/organizations/usage_report/messages", headers=admin,
                      params={"starting_at": day}).json()["data"][0]["results"][0]
    assert usage["cache_creation"]["ephemeral_5m_input_tokens"] == usages[0]["cache_creation_input_tokens"]
    assert usage["cache_read_input_tokens"] == usages[1]["cache_read_input_tokens"]
    costs = httpx.get(proxy.url + "/v1/organizations/cost_report", headers=admin,
                      params={"starting_at": day, "group_by[]": "description"}).json()["data"][0]["results"]
    storage = [c for c in costs if c["cost_type"] == "cache_storage"]
    tokens = usages[0]["cache_creation_input_tokens"]
    assert len(storage) == 1 and float(storage[0]["amount"]) == pytest.approx(tokens * 300 / 3600 * 1.0e-6 * 100)


def test_an_hour_long_cache_write_is_booked_as_one_in_the_usage_report(make_proxy, gemini):
    proxy = make_proxy(BIG_MODEL=MODEL, PROXY_API_KEY="admin-key")
    body = session_start()
    body["messages"][0]["content"][0]["cache_control"] = {"type": "ephemeral", "ttl": "1h"}
    answer = httpx.post(proxy.url + "/v1/messages", json=body, timeout=30, headers={"x-api-key": "admin-key"})
    written = answer.json()["usage"]["cache_creation"]
    assert written["ephemeral_1h_input_tokens"] > 4096 and written["ephemeral_5m_input_tokens"] == 0
    assert cache_calls(gemini)[0]["body"]["ttl"] == "3600s"
    day = __import__("time").strftime("%Y-%m-%dT00:00:00Z", __import__("time").gmtime())
    usage = httpx.get(proxy.url + "/v1/organizations/usage_report/messages", headers={"x-api-key": "admin-key"},
                      params={"starting_at": day}).json()["data"][0]["results"][0]
    assert usage["cache_creation"] == written


# --- with streams, key pools and fallbacks --------------------------------------------------------

def cache_calls(gemini: Any) -> list[dict[str, Any]]:
    return [r for r in gemini.requests if r["action"] == "cachedContents" and r["method"] == "POST"]


def generate_calls(gemini: Any) -> list[dict[str, Any]]:
    return [r for r in gemini.requests if r["action"] in ("generateContent", "streamGenerateContent")]


def test_a_stream_reports_what_it_wrote_and_read(make_proxy, gemini):
    import anthropic
    proxy = make_proxy(BIG_MODEL=MODEL)
    client = anthropic.Anthropic(base_url=proxy.url, api_key="unused", max_retries=0)
    usages = []
    for _ in range(2):
        with client.messages.stream(**session_start()) as stream:
            usages.append(stream.get_final_message().usage)
    assert usages[0].cache_creation_input_tokens > 4096 and usages[0].cache_read_input_tokens == 0
    assert usages[1].cache_read_input_tokens == usages[0].cache_creation_input_tokens
    assert usages[1].cache_creation_input_tokens == 0 and len(cache_calls(gemini)) == 1


def test_each_key_of_a_pool_has_its_own_cache(make_proxy, gemini):
    from tests.fake_gemini.quotas import Quotas
    keys = ("pool-key-aaaaaaaaaaaa", "pool-key-bbbbbbbbbbbb", "pool-key-cccccccccccc")
    gemini.quotas = Quotas(keys=frozenset(keys), per_key=2, window_s=30)
    proxy = make_proxy(GEMINI_API_KEYS=",".join(keys[1:]), GEMINI_API_KEY=keys[0], BIG_MODEL=MODEL)
    for _ in range(6):
        assert httpx.post(proxy.url + "/v1/messages", json=session_start(), timeout=30).status_code == 200
    served = [r for r in generate_calls(gemini) if r["status"] == 200]
    assert len(served) == 6 and all("cachedContent" in r["body"] for r in served)
    owners = {r["key"] for r in gemini.requests if r["action"] == "cachedContents"}
    assert owners == set(keys) and len(cache_calls(gemini)) == 3      # one cache per key, none refused
    assert not [r for r in gemini.requests if r["status"] in (400, 403, 404)]


def test_a_fallback_model_gets_a_cache_of_its_own(make_proxy, gemini):
    from tests.fake_gemini.quotas import Quotas
    pro = "gemini-3.1-pro-preview"   # falls back to gemini-3.8-flash (models.yaml)
    gemini.quotas = Quotas(per_model={pro: 1}, window_s=30)
    proxy = make_proxy(BIG_MODEL=pro)
    for _ in range(3):
        answer = httpx.post(proxy.url + "/v1/messages", json=session_start("claude-sonnet-4-5"), timeout=30)
        assert answer.status_code == 200, answer.text
    made_for = [r["body"]["model"] for r in cache_calls(gemini)]
    assert made_for == [f"models/{pro}", f"models/{MODEL}"]
    served = [r for r in generate_calls(gemini) if r["status"] == 200]
    assert [r["model"] for r in served] == [pro, MODEL, MODEL] and all("cachedContent" in r["body"] for r in served)
    assert not [r for r in gemini.requests if r["status"] in (400, 403, 404)]


def test_a_cache_that_keeps_being_used_is_extended_not_made_again(make_proxy, gemini, monkeypatch):
    import time

    from service.engines import context_cache
    proxy = make_proxy(BIG_MODEL=MODEL, PROXY_API_KEY="admin-key")
    ask = {"json": session_start(), "timeout": 30, "headers": {"x-api-key": "admin-key"}}
    assert httpx.post(proxy.url + "/v1/messages", **ask).status_code == 200
    start = time.time()
    monkeypatch.setattr(context_cache, "clock", lambda: start + 200)   # 200 of its 300 seconds spent
    again = httpx.post(proxy.url + "/v1/messages", **ask)
    assert again.json()["usage"]["cache_read_input_tokens"] > 4096
    patches = [r for r in gemini.requests if r["action"] == "cachedContents" and r["method"] == "PATCH"]
    assert len(patches) == 1 and patches[0]["query"] == "updateMask=ttl" and patches[0]["body"] == {"ttl": "300s"}
    assert len(cache_calls(gemini)) == 1
    day = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime())
    costs = httpx.get(proxy.url + "/v1/organizations/cost_report", headers={"x-api-key": "admin-key"},
                      params={"starting_at": day, "group_by[]": "description"}).json()["data"][0]["results"]
    kept = [float(c["amount"]) for c in costs if c["cost_type"] == "cache_storage"]
    tokens = again.json()["usage"]["cache_read_input_tokens"]
    # 300 s when made, then 200 s more (from 100 s left to a whole 300 s again).
    assert kept == [pytest.approx(tokens * 500 / 3600 * 1.0e-6 * 100, rel=0.02)]


def test_a_thread_continue_reads_the_cache_its_first_turn_made(make_proxy, gemini):
    proxy = make_proxy(BIG_MODEL=MODEL)
    beta = {"anthropic-beta": "message-threads-2026-08-12"}
    first = httpx.post(proxy.url + "/v1/messages", json={**session_start(), "thread": {"type": "create"}},
                       headers=beta, timeout=30)
    assert first.status_code == 200, first.text
    follow = {"model": MODEL, "max_tokens": 100, "thread": {"type": "continue", "previous_message_id": first.json()["id"]},
              "messages": [{"role": "user", "content": [{"type": "text", "text": "And now?",
                                                         "cache_control": {"type": "ephemeral"}}]}]}
    second = httpx.post(proxy.url + "/v1/messages", json=follow, headers=beta, timeout=30)
    assert second.status_code == 200, second.text
    assert second.json()["usage"]["cache_read_input_tokens"] == first.json()["usage"]["cache_creation_input_tokens"] > 0


# --- the pure decision (translator/caching.py) ------------------------------------------------------

ROLES = {"user": "user", "assistant": "assistant", "system": "user"}


def text(value: str, cached: bool = False, ttl: str | None = None) -> dict[str, Any]:
    control = {"type": "ephemeral", **({"ttl": ttl} if ttl else {})}
    return {"type": "text", "text": value, **({"cache_control": control} if cached else {})}


def test_breakpoints_map_to_whole_gemini_contents_before_an_unanswered_call():
    body = {"system": [text("s", cached=True)],
            "messages": [{"role": "user", "content": [text("a")]}, {"role": "user", "content": [text("b", True, "1h")]},
                         {"role": "assistant", "content": [text("c", True)]}, {"role": "user", "content": [text("d", True)]}]}
    ask = translator.cache_ask(body, ROLES)
    assert ask.breakpoints == ((0, 300), (2, 3600), (3, 300), (4, 300))
    contents = [{"role": "user"}, {"role": "model"}, {"role": "user"}]   # the two user messages are one content
    # The last breakpoint would hold the whole body: it holds all but the last content.
    assert translator.content_counts(ask, contents) == [(0, 300), (1, 3600), (2, 300), (2, 300)]
    calls = [{"role": "user"}, {"role": "model", "parts": [{"functionCall": {"name": "f"}}]}, {"role": "user"}]
    assert translator.content_counts(ask, calls) == [(0, 300), (1, 3600), (1, 300), (1, 300)]
    assert translator.content_counts(ask, [{"role": "model"}]) == []               # does not line up: no cache
    # Claude Code's tool result followed by a reminder text: one message sent as two user contents.
    split = [{"role": "user"}, {"role": "user"}, {"role": "model"}, {"role": "user"}, {"role": "user"}]
    assert translator.content_counts(ask, split) == [(0, 300), (2, 3600), (3, 300), (4, 300)]
    assert translator.cache_ask({"messages": [{"role": "user", "content": "x"}]}, ROLES) is None


def test_a_prefix_key_is_per_gemini_key_model_and_exact_bytes():
    body = {"systemInstruction": {"parts": [{"text": "s"}]}, "contents": [{"role": "user", "parts": [{"text": "a"}]}]}
    keys = translator.prefix_keys("k1", MODEL, body, 1)
    assert len(set(keys)) == 2 and keys != translator.prefix_keys("k2", MODEL, body, 1)
    assert keys != translator.prefix_keys("k1", "gemini-2.5-pro", body, 1)
    changed = {**body, "contents": [{"role": "user", "parts": [{"text": "b"}]}]}
    assert translator.prefix_keys("k1", MODEL, changed, 1)[0] == keys[0] != translator.prefix_keys("k1", MODEL, changed, 1)[1]


def test_a_live_cache_is_used_until_a_longer_one_pays():
    sizes = [40_000, 41_000, 80_000]      # bytes of the prefixes of 0, 1 and 2 contents (~4 bytes a token)
    always = lambda tokens, ttl: True     # noqa: E731
    never = lambda tokens, ttl: False     # noqa: E731
    counted = [(0, 300), (2, 300)]
    assert translator.choose_cache(counted, {}, sizes, 4096, always) == translator.CacheChoice(2, True, 300)
    assert translator.choose_cache(counted, {0: True}, sizes, 4096, never) == translator.CacheChoice(0, False, 300)
    assert translator.choose_cache(counted, {0: True}, sizes, 4096, always) == translator.CacheChoice(2, True, 300)
    assert translator.choose_cache(counted, {2: False}, sizes, 4096, always) == translator.CacheChoice(0, True, 300)
    assert translator.choose_cache(counted, {}, sizes, 100_000, always) is None     # under the model's minimum
