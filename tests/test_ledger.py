"""The usage ledger and Anthropic's usage report, on real databases: SQLite in a temporary directory and a
PostgreSQL 15 server started for the module (skipped, saying why, where its binaries are missing)."""
from __future__ import annotations

import asyncio
import os
import signal
import time

import anthropic
import httpx
import pytest

from service.teams.ledger import async_url
from tests.conftest import proxy_env
from tests.postgres import needs_postgres
from tests.servers import HypercornProcess
from tests.teams import ADMIN, BODY, keys_file, ledger_rows, metric, post, received, report_totals, usage_report


@pytest.fixture
def team(tmp_path):
    path = tmp_path / "keys.yaml"
    return path, keys_file(path, alice={}, bob={})


def test_report_totals_equal_exactly_the_usage_clients_received(make_proxy, gemini, database_url, team):
    path, secrets = team
    proxy = make_proxy(PROXY_API_KEY=ADMIN, PROXY_KEYS_FILE=str(path), DATABASE_URL=database_url)
    grounding = {"queries": ["weather"], "sources": [["https://a.example/", "A"]]}
    gemini.enqueue({"text": "Cached.", "usage": {"cachedContentTokenCount": 7}}, {"text": "Searched.", "grounding": grounding},
                   {"text": "Streamed and cached.", "usage": {"cachedContentTokenCount": 5}})
    searching = [{"type": "web_search_20250305", "name": "web_search", "max_uses": 2}]
    expected: dict = {}
    for name, stream, extra in (("alice", False, {}), ("bob", False, {"tools": searching}), ("alice", True, {}),
                                ("bob", True, {}), ("alice", False, {"max_tokens": 5})):
        client = anthropic.Anthropic(base_url=proxy.url, api_key=secrets[name], max_retries=0)
        if stream:
            with client.messages.stream(**{**BODY, **extra}) as events:
                usage = events.get_final_message().usage
        else:
            usage = client.messages.create(**{**BODY, **extra}).usage
        sums = expected.setdefault(name, dict.fromkeys(received(usage), 0))
        for field, value in received(usage).items():
            sums[field] += value
    assert expected["bob"]["web_search_requests"] == 1 and expected["alice"]["cache_read_input_tokens"] == 12
    by_key = report_totals(proxy, **{"group_by[]": ["api_key_id", "model"]})
    assert by_key == {(name, "gemini/gemini-3.1-pro-preview"): sums for name, sums in expected.items()}
    everything = report_totals(proxy, bucket_width="1h", limit="48")
    assert everything == {(None, None): {field: sum(s[field] for s in expected.values()) for field in expected["bob"]}}
    only_bob = report_totals(proxy, **{"group_by[]": "api_key_id", "api_key_ids[]": "bob"})
    assert only_bob == {("bob", None): expected["bob"]}
    tiers = usage_report(proxy, starting_at=time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime()),
                         **{"group_by[]": "service_tier"}).json()
    assert {r["service_tier"] for b in tiers["data"] for r in b["results"]} == {"standard"}
    assert not [b for b in usage_report(proxy, starting_at=time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime()),
                                        **{"service_tiers[]": "batch"}).json()["data"] if b["results"]]


def test_the_report_has_anthropics_shape_and_pages(make_proxy, gemini):
    proxy = make_proxy(PROXY_API_KEY=ADMIN)
    assert post(proxy, ADMIN).status_code == 200
    hour = time.strftime("%Y-%m-%dT%H:00:00Z", time.gmtime(time.time() - 3 * 3600))
    first = usage_report(proxy, starting_at=hour, bucket_width="1h", limit=2).json()
    assert [b["starting_at"] for b in first["data"]][0] == hour and len(first["data"]) == 2
    assert first["has_more"] is True and first["next_page"].startswith("page_")
    rest = usage_report(proxy, starting_at=hour, bucket_width="1h", limit=2, page=first["next_page"]).json()
    assert rest["data"][0]["starting_at"] == first["data"][1]["ending_at"] and rest["has_more"] is False
    result = rest["data"][-1]["results"][0]
    assert set(result) >= {"uncached_input_tokens", "cache_creation", "cache_read_input_tokens", "output_tokens",
                           "server_tool_use", "api_key_id", "model", "workspace_id", "service_tier"}
    assert result["api_key_id"] is None and result["cache_creation"] == {"ephemeral_1h_input_tokens": 0,
                                                                         "ephemeral_5m_input_tokens": 0}


@pytest.mark.parametrize("params, fragment", [
    ({"starting_at": None}, "starting_at: required"),
    ({"starting_at": "yesterday"}, "RFC 3339"),
    ({"bucket_width": "1w"}, "bucket_width"),
    ({"limit": "32"}, "limit: must be a whole number from 1 to 31"),
    ({"group_by[]": "colour"}, "group_by: 'colour'"),
    ({"workspace_ids[]": "wrkspc_1"}, "workspace_ids[]: not a parameter"),
    ({"ending_at": "2000-01-01T00:00:00Z"}, "ending_at: must be later"),
    ({"page": "page_%%%"}, "page: not a next_page token"),
])
def test_bad_report_queries_are_400s_that_say_why(proxy, params, fragment):
    params = {"starting_at": "2025-08-01T00:00:00Z", **params}
    answer = httpx.get(proxy.url + "/v1/organizations/usage_report/messages",
                       params={k: v for k, v in params.items() if v is not None})
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["type"] == "invalid_request_error" and fragment in answer.json()["error"]["message"]


def test_only_the_admin_key_reads_the_reports(make_proxy, gemini, team):
    path, secrets = team
    proxy = make_proxy(PROXY_API_KEY=ADMIN, PROXY_KEYS_FILE=str(path))
    for endpoint in ("/v1/organizations/usage_report/messages", "/v1/organizations/cost_report", "/metrics"):
        url = proxy.url + endpoint + "?starting_at=2025-08-01T00:00:00Z"
        refused = httpx.get(url, headers={"x-api-key": secrets["alice"]})
        assert refused.status_code == 403 and refused.json()["error"]["type"] == "permission_error", refused.text
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers={"authorization": f"Bearer {ADMIN}"}).status_code == 200


def test_the_cost_report_prices_the_ledger_with_litellms_price_map(make_proxy, gemini):
    proxy = make_proxy(PROXY_API_KEY=ADMIN, BIG_MODEL="gemini-2.5-flash")
    usage = anthropic.Anthropic(base_url=proxy.url, api_key=ADMIN, max_retries=0).messages.create(**BODY).usage
    day = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime())
    answer = httpx.get(proxy.url + "/v1/organizations/cost_report", headers={"x-api-key": ADMIN},
                       params={"starting_at": day, "group_by[]": "description"})
    assert answer.status_code == 200, answer.text
    items = {item["token_type"]: item for item in answer.json()["data"][0]["results"]}
    # gemini-2.5-flash in LiteLLM's bundled map: $0.30 / M input tokens, $2.50 / M output tokens; amounts in cents.
    assert float(items["uncached_input_tokens"]["amount"]) == pytest.approx(usage.input_tokens * 0.3e-6 * 100)
    assert float(items["output_tokens"]["amount"]) == pytest.approx(usage.output_tokens * 2.5e-6 * 100)
    assert items["output_tokens"]["currency"] == "USD" and items["output_tokens"]["model"] == "gemini/gemini-2.5-flash"


def test_the_ledger_outlives_a_restart(make_proxy, gemini, tmp_path):
    url = f"sqlite:///{tmp_path / 'kept.db'}"
    first = make_proxy(PROXY_API_KEY=ADMIN, DATABASE_URL=url)
    told = [post(first, ADMIN).json()["usage"]["output_tokens"] for _ in range(3)]
    first.stop()
    second = make_proxy(PROXY_API_KEY=ADMIN, DATABASE_URL=url)
    told.append(post(second, ADMIN, stream=False).json()["usage"]["output_tokens"])
    assert report_totals(second)[(None, None)]["output_tokens"] == sum(told)
    assert len(ledger_rows(url)) == 4


def test_100_concurrent_requests_make_100_rows(make_proxy, gemini, database_url):
    proxy = make_proxy(PROXY_API_KEY=ADMIN, DATABASE_URL=database_url)

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(timeout=60, limits=limits, headers={"x-api-key": ADMIN}) as client:
            return await asyncio.gather(*(client.post(proxy.url + "/v1/messages", json={**BODY, "stream": n % 2 == 0})
                                          for n in range(100)))
    answers = asyncio.run(burst())
    assert [a.status_code for a in answers] == [200] * 100
    proxy.stop()  # the shutdown writes what is still queued
    rows = ledger_rows(database_url)
    assert sorted(r["request_id"] for r in rows) == sorted(a.headers["request-id"] for a in answers)
    assert sum(r["stream"] for r in rows) == 50 and {r["key_name"] for r in rows} == {"admin"}


@needs_postgres
def test_a_database_that_is_down_for_a_while_loses_no_row(make_proxy, gemini, postgres):
    url = postgres.database("outage")
    proxy = make_proxy(PROXY_API_KEY=ADMIN, DATABASE_URL=url, LEDGER_FLUSH_SECONDS="0.1")
    first = [post(proxy, ADMIN) for _ in range(3)]
    postgres.stop()
    try:
        during = [post(proxy, ADMIN, stream=n % 2 == 1) for n in range(6)]
        assert [a.status_code for a in during] == [200] * 6  # clients never wait for the ledger
        assert usage_report(proxy).status_code == 500  # the report says the database does not answer
    finally:
        postgres.start()
    told = sum(a.json()["usage"]["output_tokens"] for a in first + during[::2])
    assert report_totals(proxy)[(None, None)]["output_tokens"] > told  # the rows that waited are in
    proxy.stop()
    assert sorted(r["request_id"] for r in ledger_rows(url)) == sorted(a.headers["request-id"] for a in first + during)


@needs_postgres
def test_a_full_queue_counts_its_losses(make_proxy, gemini, postgres):
    url = postgres.database("bounded")
    proxy = make_proxy(PROXY_API_KEY=ADMIN, DATABASE_URL=url, LEDGER_QUEUE_ROWS="3", LEDGER_FLUSH_SECONDS="0.1")
    postgres.stop()
    try:
        assert [post(proxy, ADMIN).status_code for _ in range(5)] == [200] * 5
        exposition = httpx.get(proxy.url + "/metrics", headers={"x-api-key": ADMIN}).text
        assert metric(exposition, "proxy_ledger_lost_rows_total") == 2
        assert metric(exposition, "proxy_ledger_queued_rows") == 3
    finally:
        postgres.start()
    proxy.stop()
    assert len(ledger_rows(url)) == 3


def test_sigterm_writes_every_queued_row(fake, gemini, tmp_path):
    url = f"sqlite:///{tmp_path / 'sigterm.db'}"
    env = proxy_env(fake, PROXY_API_KEY=ADMIN, DATABASE_URL=url, LEDGER_FLUSH_SECONDS="3600")  # no flush but the last
    server = HypercornProcess(env, {"graceful_timeout": "5"}, directory=tmp_path).start()
    try:
        answers = [post(server, ADMIN, stream=n % 2 == 0) for n in range(7)]
        assert [a.status_code for a in answers] == [200] * 7
        assert ledger_rows(url) == []  # all still queued
        os.killpg(server.process.pid, signal.SIGTERM)
        assert server.process.wait(30) == 0
    finally:
        server.stop()
    assert sorted(r["request_id"] for r in ledger_rows(url)) == sorted(a.headers["request-id"] for a in answers)


def test_plain_database_urls_get_the_async_drivers():
    assert str(async_url("sqlite:///proxy-usage.db")) == "sqlite+aiosqlite:///proxy-usage.db"
    assert async_url("postgresql://u:p@db:5432/usage").drivername == "postgresql+asyncpg"
    assert async_url("postgres://u@db/usage?sslmode=require").query == {"ssl": "require"}
    with pytest.raises(ValueError, match="mysql"):
        async_url("mysql://u@db/usage")
