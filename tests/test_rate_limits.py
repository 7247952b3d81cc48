"""Per-key rpm and tpm: Anthropic's 429 with its rate-limit headers, other keys untouched, counters shared by
replicas through a real Redis, and kept in process while Redis is down."""
from __future__ import annotations

import time
from datetime import datetime

import anthropic
import pytest

from tests.servers import REDIS_SERVER, RedisServer
from tests.teams import ADMIN, BODY, keys_file, post

needs_redis = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")


def assert_limited(answer, kind: str, limit: int) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.json()["error"]["type"] == "rate_limit_error"
    assert 1 <= int(answer.headers["retry-after"]) <= 60
    assert answer.headers[f"anthropic-ratelimit-{kind}-limit"] == str(limit)
    assert answer.headers[f"anthropic-ratelimit-{kind}-remaining"] == "0"
    reset = datetime.fromisoformat(answer.headers[f"anthropic-ratelimit-{kind}-reset"]).timestamp()
    assert time.time() - 1 <= reset <= time.time() + 61


@pytest.mark.parametrize("stream", [False, True])
def test_over_its_rpm_a_key_gets_a_429_and_other_keys_do_not(make_proxy, gemini, tmp_path, stream):
    path = tmp_path / "keys.yaml"
    secrets = keys_file(path, alice={"rpm": 2}, bob={"rpm": 2})
    proxy = make_proxy(PROXY_API_KEY=ADMIN, PROXY_KEYS_FILE=str(path))
    assert [post(proxy, secrets["alice"], stream=stream).status_code for _ in range(2)] == [200, 200]
    assert_limited(post(proxy, secrets["alice"], stream=stream), "requests", 2)
    assert gemini.requests and len([r for r in gemini.requests if r["action"] != "countTokens"]) == 2
    assert post(proxy, secrets["bob"], stream=stream).status_code == 200
    assert post(proxy, ADMIN, stream=stream).status_code == 200


def test_the_sdk_reads_the_429(make_proxy, gemini, tmp_path):
    path = tmp_path / "keys.yaml"
    secrets = keys_file(path, alice={"rpm": 1})
    client = anthropic.Anthropic(base_url=make_proxy(PROXY_KEYS_FILE=str(path)).url, api_key=secrets["alice"],
                                 max_retries=0)
    client.messages.create(**BODY)
    with pytest.raises(anthropic.RateLimitError) as refused:
        client.messages.create(**BODY)
    assert refused.value.response.headers["anthropic-ratelimit-requests-remaining"] == "0"


@pytest.mark.parametrize("stream", [False, True])
def test_a_key_that_used_its_tokens_waits_for_the_next_minute(make_proxy, gemini, tmp_path, stream):
    path = tmp_path / "keys.yaml"
    secrets = keys_file(path, alice={"tpm": 10, "rpm": 100})
    proxy = make_proxy(PROXY_KEYS_FILE=str(path))
    first = post(proxy, secrets["alice"], stream=stream)
    assert first.status_code == 200  # one answer may overshoot (its size is known only at its end)
    refused = post(proxy, secrets["alice"], stream=stream)
    assert_limited(refused, "tokens", 10)
    assert refused.headers["anthropic-ratelimit-requests-limit"] == "100"
    assert "10 tokens" in refused.json()["error"]["message"]


@needs_redis
def test_replicas_share_the_counters_through_redis_and_count_alone_without_it(make_proxy, gemini, tmp_path):
    path = tmp_path / "keys.yaml"
    secrets = keys_file(path, alice={"rpm": 3}, bob={"rpm": 2})
    with RedisServer() as redis:
        one, two = (make_proxy(PROXY_KEYS_FILE=str(path), REDIS_URL=redis.url) for _ in range(2))
        assert [post(p, secrets["alice"]).status_code for p in (one, two, one)] == [200, 200, 200]
        assert_limited(post(two, secrets["alice"]), "requests", 3)
        assert post(two, secrets["bob"]).status_code == 200
        redis.stop()
        # Redis gone: each replica counts bob's requests itself, and answers without an error.
        assert [post(one, secrets["bob"]).status_code for _ in range(3)] == [200, 200, 429]
