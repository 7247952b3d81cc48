"""``GET /metrics``: the counts match what was answered, the admin key is required when one is set, and
several Hypercorn workers add up (prometheus-client's multiprocess mode)."""
from __future__ import annotations

import httpx
from prometheus_client.mmap_dict import MmapedDict

from tests.conftest import proxy_env
from tests.servers import HypercornProcess
from tests.teams import ADMIN, keys_file, metric, post

PRO = "gemini/gemini-3-pro-preview"  # BIG_MODEL here: a model without fallbacks, so a 503 stays one


def scrape(proxy, key: str = ADMIN) -> str:
    answer = httpx.get(proxy.url + "/metrics", headers={"x-api-key": key}, timeout=30)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain"), answer.text
    return answer.text


def test_metrics_count_requests_tokens_latencies_errors_and_the_pool(make_proxy, gemini, tmp_path):
    path = tmp_path / "keys.yaml"
    secrets = keys_file(path, alice={"rpm": 3})
    proxy = make_proxy(PROXY_API_KEY=ADMIN, PROXY_KEYS_FILE=str(path), GEMINI_API_KEYS="second-key-0123456789",
                       UPSTREAM_RETRIES="0", BIG_MODEL=PRO.removeprefix("gemini/"))
    answers = [post(proxy, secrets["alice"]), post(proxy, secrets["alice"], stream=True)]
    gemini.enqueue({"error": {"code": 503, "status": "UNAVAILABLE", "message": "overloaded"}})
    failed = post(proxy, ADMIN)
    limited = [post(proxy, secrets["alice"]) for _ in range(2)]
    assert [a.status_code for a in answers] == [200, 200] and failed.status_code == 529
    assert [a.status_code for a in limited] == [200, 429]
    text = scrape(proxy)
    assert metric(text, "proxy_requests_total", key="alice", model=PRO, status="200") == 3
    assert metric(text, "proxy_requests_total", key="alice", model="none", status="429") == 1
    assert metric(text, "proxy_requests_total", key="admin", model="none", status="529") == 1
    usage = [answers[0].json()["usage"], limited[0].json()["usage"]]
    streamed_output = int(answers[1].text.rpartition('"output_tokens":')[2].split("}")[0].strip())
    assert metric(text, "proxy_tokens_total", key="alice", model=PRO, kind="output") == sum(
        u["output_tokens"] for u in usage) + streamed_output
    assert metric(text, "proxy_request_duration_seconds_count", stream="false") == 4
    assert metric(text, "proxy_request_duration_seconds_count", stream="true") == 1
    assert metric(text, "proxy_first_event_seconds_count") == 1
    assert metric(text, "proxy_upstream_errors_total", type="overloaded_error") == 1
    assert metric(text, "proxy_rate_limited_total", key="alice") == 1
    assert metric(text, "proxy_pool_deployments", model=PRO) == 2
    assert metric(text, "proxy_pool_resting_deployments", model=PRO) == 0
    assert metric(text, "proxy_active_streams") == 0


def test_metrics_need_the_admin_key_when_there_is_one(make_proxy, gemini, tmp_path):
    path = tmp_path / "keys.yaml"
    secrets = keys_file(path, alice={})
    proxy = make_proxy(PROXY_API_KEY=ADMIN, PROXY_KEYS_FILE=str(path))
    assert httpx.get(proxy.url + "/metrics").status_code == 401
    assert httpx.get(proxy.url + "/metrics", headers={"x-api-key": secrets["alice"]}).status_code == 403
    open_proxy = make_proxy()
    assert httpx.get(open_proxy.url + "/metrics").status_code == 200
    assert httpx.get(make_proxy(METRICS="off").url + "/metrics").status_code == 404


def test_several_workers_add_up(fake, gemini, tmp_path):
    directory = tmp_path / "prometheus"
    directory.mkdir()
    env = proxy_env(fake, PROXY_API_KEY=ADMIN, PROMETHEUS_MULTIPROC_DIR=str(directory),
                    DATABASE_URL=f"sqlite:///{tmp_path / 'usage.db'}", BIG_MODEL=PRO.removeprefix("gemini/"))
    server = HypercornProcess(env, {"workers": "2"}, directory=tmp_path).start()

    def per_worker() -> list[float]:
        return [sum(value for key, value, _ in MmapedDict(str(path)).read_all_values() if '"proxy_requests"' in key)
                for path in directory.glob("counter_*.db")]

    sent = streams = 0
    try:
        with httpx.Client(timeout=30, headers={"x-api-key": ADMIN, "connection": "close"}) as client:
            # A new connection each: either worker may take it; go on until both have answered (bounded).
            while sent < 10 or (sent < 300 and not (len(per_worker()) == 2 and all(per_worker()))):
                stream = sent % 3 == 0
                assert client.post(server.url + "/v1/messages", json={
                    "model": "claude-sonnet-4-6", "max_tokens": 5, "stream": stream,
                    "messages": [{"role": "user", "content": "hi"}]}).status_code == 200
                sent, streams = sent + 1, streams + stream
        text = scrape(server)
    finally:
        server.stop()
    assert len(per_worker()) == 2 and all(per_worker()), per_worker()  # both answered: the sum is of both
    assert metric(text, "proxy_requests_total", key="admin", model=PRO, status="200") == sent
    assert metric(text, "proxy_request_duration_seconds_count", stream="true") == streams
