"""The pure part of the reports (translator.report_query / usage_page / cost_page): buckets, snapping, paging."""
from __future__ import annotations

import translator

DAY = 86400
T0 = 1754006400  # 2025-08-01T00:00:00Z


def sums(bucket: int, **values: int) -> dict:
    fields = ("uncached_input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens",
              "web_search_requests")
    return {"bucket": bucket, **dict.fromkeys(fields, 0), **values}


def test_starting_at_snaps_down_ending_at_up_and_pages_follow():
    args = {"starting_at": ["2025-08-01T13:30:00+02:00"], "ending_at": ["2025-08-01T15:10:00Z"],
            "bucket_width": ["1h"], "limit": ["2"]}
    query = translator.report_query(args, now=T0 + 10 * DAY)
    assert (query.start, query.end, query.stop) == (T0 + 11 * 3600, T0 + 13 * 3600, T0 + 16 * 3600)
    page = translator.usage_page(query, [sums(T0 + 12 * 3600, output_tokens=5)])
    assert [b["starting_at"] for b in page["data"]] == ["2025-08-01T11:00:00Z", "2025-08-01T12:00:00Z"]
    assert page["data"][1]["results"][0]["output_tokens"] == 5 and page["has_more"]
    after = translator.report_query({**args, "page": [page["next_page"]]}, now=T0 + 10 * DAY)
    assert (after.start, after.end) == (T0 + 13 * 3600, T0 + 15 * 3600)
    last = translator.report_query({**args, "page": [translator.usage_page(after, [])["next_page"]]}, now=T0 + 10 * DAY)
    assert (last.start, last.end) == (T0 + 15 * 3600, T0 + 16 * 3600)
    assert translator.usage_page(last, [])["next_page"] is None


def test_without_ending_at_the_range_ends_with_the_current_bucket():
    query = translator.report_query({"starting_at": ["2025-08-01T00:00:00Z"]}, now=T0 + 2 * DAY + 5)
    assert (query.start, query.end, query.stop) == (T0, T0 + 3 * DAY, T0 + 3 * DAY)


def test_cost_is_priced_per_model_in_cents_and_summed_without_description():
    table = translator.load_spec().prices
    query = translator.report_query({"starting_at": ["2025-08-01T00:00:00Z"]}, now=T0 + 100, cost=True)
    totals = [sums(T0, model="m", uncached_input_tokens=1000, output_tokens=10, web_search_requests=2),
              sums(T0, model="unpriced", output_tokens=999)]
    prices = {"m": {"uncached_input_tokens": 3e-07, "output_tokens": 2.5e-06, "web_search_requests": 0.035}}
    total = translator.cost_page(query, totals, table, prices)["data"][0]["results"]
    assert [r["amount"] for r in total] == ["7.0325", None] and total[0]["description"] is None  # 0.03 + 0.0025 + 7 cents
    assert "unpriced" in total[1]["description"] and total[1]["model"] == "unpriced"
    described = translator.report_query({"starting_at": ["2025-08-01T00:00:00Z"], "group_by[]": ["description"]},
                                        now=T0 + 100, cost=True)
    items = translator.cost_page(described, totals, table, prices)["data"][0]["results"]
    assert [(i["cost_type"], i["token_type"], i["amount"]) for i in items] == [
        ("tokens", "uncached_input_tokens", "0.03"), ("tokens", "output_tokens", "0.0025"), ("web_search", None, "7"),
        ("tokens", "output_tokens", None)]


def test_cache_writes_are_split_by_ttl_in_the_usage_and_the_cost_report():
    """The ledger keeps all cache writes and, of them, the 1-hour ones; both reports show Anthropic's split."""
    row = sums(T0, model="m", cache_creation_input_tokens=1000, cache_creation_1h_input_tokens=400)
    usage = translator.report_query({"starting_at": ["2025-08-01T00:00:00Z"]}, now=T0 + 100)
    written = translator.usage_page(usage, [row])["data"][0]["results"][0]["cache_creation"]
    assert written == {"ephemeral_5m_input_tokens": 600, "ephemeral_1h_input_tokens": 400}
    described = translator.report_query({"starting_at": ["2025-08-01T00:00:00Z"], "group_by[]": ["description"]},
                                        now=T0 + 100, cost=True)
    prices = {"m": {"uncached_input_tokens": 1e-06}}   # a write costs input (+ cache_read, unpriced here)
    items = translator.cost_page(described, [row], translator.load_spec().prices, prices)["data"][0]["results"]
    assert [(i["token_type"], i["amount"]) for i in items] == [("cache_creation.ephemeral_5m_input_tokens", "0.06"),
                                                               ("cache_creation.ephemeral_1h_input_tokens", "0.04")]
    older = translator.usage_page(usage, [sums(T0, model="m", cache_creation_input_tokens=50)])  # a row before 0006
    assert older["data"][0]["results"][0]["cache_creation"] == {"ephemeral_5m_input_tokens": 50,
                                                                "ephemeral_1h_input_tokens": 0}
