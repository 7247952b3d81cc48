"""Pool state shared by replicas through a real Redis, and replicas that outlive it (issue 10).

Three proxy processes (the README's command) share one ``redis-server`` started on a free port;
without the binary (Debian: ``apt-get install redis-server``; ``.ci/run`` installs it) the tests
are skipped, saying so.
"""
from __future__ import annotations

import threading
import time

import httpx
import pytest
import redis

from tests.conftest import proxy_env
from tests.fake_gemini.quotas import Quotas
from tests.servers import REDIS_SERVER, HypercornProcess, RedisServer
from tests.sse_grammar import check_stream

pytestmark = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")

KEYS = ("shared-key-aaaaaaaaaaaa", "shared-key-bbbbbbbbbbbb")
BIG, FLASH = "gemini-3-flash-preview", "gemini-3.8-flash"  # neither has fallbacks in models.yaml


def ask(replica: HypercornProcess, model: str = "claude-sonnet-4-5", stream: bool = False) -> httpx.Response:
    body = {"model": model, "max_tokens": 20, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(replica.url + "/v1/messages", json=body, timeout=30)


@pytest.fixture(scope="module")
def redis_server():
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def replicas(fake, redis_server, tmp_path_factory):
    """Started once for the module (a replica takes seconds to start): each test uses its own models,
    so the rests one leaves in Redis do not reach the next; the last one kills Redis."""
    tmp_path = tmp_path_factory.mktemp("replicas")
    env = proxy_env(fake, GEMINI_API_KEY="", GEMINI_API_KEYS=",".join(KEYS), REDIS_URL=redis_server.url,
                    BIG_MODEL=BIG, SMALL_MODEL=FLASH)
    started = []
    try:
        for number in range(3):  # the processes start side by side; then each is waited for
            directory = tmp_path / f"replica{number}"
            directory.mkdir()
            started.append(HypercornProcess(env, directory=directory))
        yield [replica.start() for replica in started]
    finally:
        for replica in started:
            replica.stop()


def gemini_calls(gemini) -> int:
    return sum(1 for r in gemini.requests if r["action"] != "countTokens")


def test_a_key_exhausted_through_one_replica_is_not_tried_by_the_others(gemini, replicas):
    gemini.quotas = Quotas(keys=frozenset(KEYS), per_key=1, window_s=60)
    first, *others = replicas
    assert [ask(first).status_code for _ in range(2)] == [200, 200]
    refused = ask(first)  # both keys' quota used: each gets its 429 and rests
    assert refused.status_code == 429, refused.text
    assert sum(1 for r in gemini.requests if r["status"] == 429) <= len(KEYS)
    before = gemini_calls(gemini)
    for replica in others:
        answer = ask(replica, stream=True)
        assert answer.status_code == 429 and int(answer.headers["retry-after"]) >= 50, answer.text
    assert gemini_calls(gemini) == before  # the rests came from Redis: no replica asked Gemini again


def test_replicas_keep_answering_when_redis_dies(gemini, replicas, redis_server):
    assert all(ask(replica, model="claude-haiku-4-5").status_code == 200 for replica in replicas)
    redis_server.stop()
    for replica in replicas:
        for stream in (False, True):
            answer = ask(replica, model="claude-haiku-4-5", stream=stream)
            assert answer.status_code == 200, answer.text
            if stream:
                check_stream(answer.content)
    # Rate limits still rotate keys on in-process state.
    gemini.quotas = Quotas(keys=frozenset(KEYS), per_key=1, window_s=60)
    assert [ask(replicas[0], model="gemini-2.5-flash").status_code for _ in range(3)] == [200, 200, 429]
    logs = [replica.stop() for replica in replicas]
    # The replica that rested keys after the death wrote to Redis and said once that it is gone;
    # the others say it at most once (whether they noticed depends on LiteLLM's re-read interval).
    assert logs[0].count("is unreachable") == 1, logs[0][-2000:]
    for log in logs:
        assert log.count("is unreachable") <= 1 and "Traceback" not in log, log[-2000:]


def test_the_event_loop_does_not_wait_on_a_paused_redis(fake, gemini, tmp_path):
    """Issue 24: a 429's rest is written to Redis off the loop. With Redis paused (``CLIENT PAUSE``,
    so every call waits for the client's timeout), ``/health`` keeps answering at once while the
    proxy handles 429s (before: ~556 ms, the loop blocked in LiteLLM's synchronous Redis client)."""
    model = "gemini-2.5-flash-lite"
    with RedisServer() as server:
        env = proxy_env(fake, GEMINI_API_KEY="", GEMINI_API_KEYS=",".join(KEYS), REDIS_URL=server.url)
        replica = HypercornProcess(env, directory=tmp_path).start()
        try:
            gemini.quotas = Quotas(keys=frozenset(KEYS), per_model={model: 1}, window_s=60)
            assert ask(replica, model).status_code == 200  # the model's shared rests were just read
            answers: list[httpx.Response] = []
            with httpx.Client(base_url=replica.url, timeout=30) as health, redis.Redis.from_url(server.url) as admin:
                health.get("/health")
                admin.execute_command("CLIENT", "PAUSE", "3000", "ALL")
                asking = threading.Thread(target=lambda: answers.append(ask(replica, model)))
                start = time.monotonic()
                asking.start()
                waits = []
                while asking.is_alive() or time.monotonic() - start < 1.5:  # past the client's 1 s timeout
                    sent = time.monotonic()
                    assert health.get("/health").status_code == 200
                    waits.append(time.monotonic() - sent)
                asking.join()
        finally:
            log = replica.stop()
    assert answers[0].status_code == 429, answers[0].text  # both keys got Gemini's 429 and rest
    assert len(waits) >= 10 and max(waits) < 0.2, (max(waits), len(waits))
    assert log.count("is unreachable") == 1 and "Traceback" not in log, log[-2000:]
