"""spec/prices.yaml and the cost report: prices by day, service tiers, cache storage, unpriced models."""
from __future__ import annotations

import logging
import shutil
import time
from datetime import date
from decimal import Decimal

import pytest
import yaml

import translator
from translator import SpecError, load_spec

SPEC = load_spec()
DAY = 86400
DEC_31 = 1798675200   # 2026-12-31T00:00:00Z
JAN_1 = DEC_31 + DAY  # 2027-01-01T00:00:00Z


def sums(bucket: int, model: str, tier: str = "standard", **values: int) -> dict:
    fields = ("uncached_input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens", "output_tokens",
              "web_search_requests")
    return {"bucket": bucket, "model": model, "service_tier": tier, **dict.fromkeys(fields, 0), **values}


def described(start: int, days: int = 2) -> translator.ReportQuery:
    starting_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start))
    return translator.report_query({"starting_at": [starting_at],
                                    "group_by[]": ["description"]}, now=start + days * DAY - 1, cost=True)


def items(page: dict) -> list[tuple[str, str | None, str | None, str | None, str]]:
    return [(b["starting_at"][:10], i["cost_type"], i["token_type"], i["amount"], i["service_tier"])
            for b in page["data"] for i in b["results"]]


def test_every_model_of_models_yaml_has_a_price():
    assert set(SPEC.models.models) <= set(SPEC.prices.models)


def test_a_price_change_is_an_entry_with_its_day():
    before = translator.rates(SPEC.prices, "gemini/gemini-3.8-flash", date(2026, 12, 31), "standard")
    after = translator.rates(SPEC.prices, "gemini-3.8-flash", date(2027, 1, 1), "standard")
    assert before.per_token["uncached_input_tokens"] == Decimal("0.75") / 1_000_000
    assert after.per_token["uncached_input_tokens"] == Decimal("1.5") / 1_000_000
    assert after.per_token["output_tokens"] == 2 * before.per_token["output_tokens"]
    for model in ("gemini-3.6-flash", "gemini-3.7-flash"):
        assert translator.price_on(SPEC.prices, model, date(2027, 1, 1)).input == 1.5
    assert translator.price_on(SPEC.prices, "gemini-3.8-flash", date(2025, 1, 1)) is None


def test_the_cost_report_prices_each_day_at_its_own_price_and_each_tier_at_its_discount():
    totals = [sums(DEC_31, "gemini/gemini-3.8-flash", uncached_input_tokens=1_000_000),
              sums(JAN_1, "gemini/gemini-3.8-flash", uncached_input_tokens=1_000_000),
              sums(JAN_1, "gemini/gemini-3.8-flash", "flex", output_tokens=1_000_000),
              sums(JAN_1, "gemini/gemini-3.8-flash", "batch", cache_read_input_tokens=1_000_000)]
    page = translator.cost_page(described(DEC_31), totals, SPEC.prices, {})
    assert items(page) == [
        ("2026-12-31", "tokens", "uncached_input_tokens", "75", "standard"),
        ("2027-01-01", "tokens", "cache_read_input_tokens", "7.5", "batch"),      # $0.15 / M, half
        ("2027-01-01", "tokens", "output_tokens", "375", "flex"),                 # $7.50 / M, half
        ("2027-01-01", "tokens", "uncached_input_tokens", "150", "standard")]


def test_a_token_written_to_a_cache_bills_as_input_plus_the_read_of_the_same_call():
    totals = [sums(DEC_31, "gemini-2.5-flash", cache_creation_input_tokens=1_000_000)]
    page = translator.cost_page(described(DEC_31, 1), totals, SPEC.prices, {})
    assert items(page) == [("2026-12-31", "tokens", "cache_creation.ephemeral_5m_input_tokens", "33", "standard")]


def test_cache_storage_is_a_line_of_its_own_at_the_models_storage_price():
    storage = [{"bucket": DEC_31, "model": "gemini/gemini-2.5-pro", "token_hours": 2_000_000.0}]
    page = translator.cost_page(described(DEC_31, 1), [], SPEC.prices, {}, storage)
    assert items(page) == [("2026-12-31", "cache_storage", None, "900", "standard")]   # 2 M token-hours × $4.50
    total = translator.cost_page(translator.report_query({"starting_at": ["2026-12-31T00:00:00Z"]}, now=DEC_31 + 5,
                                                         cost=True), [], SPEC.prices, {}, storage)
    assert total["data"][0]["results"][0]["amount"] == "900"


def test_litellms_map_fills_only_what_the_table_lacks_and_a_model_in_neither_is_unpriced():
    litellm = {"gemini/gemini-2.0-flash-lite": {"cache_read_input_tokens": 1e-08, "uncached_input_tokens": 1.0},
               "gemini/newcomer": {"output_tokens": 1e-06}}
    totals = [sums(DEC_31, "gemini/gemini-2.0-flash-lite", uncached_input_tokens=1_000_000,
                   cache_read_input_tokens=1_000_000),
              sums(DEC_31, "gemini/newcomer", output_tokens=1_000_000, uncached_input_tokens=5),
              sums(DEC_31, "gemini/stranger", output_tokens=7)]
    found = items(translator.cost_page(described(DEC_31, 1), totals, SPEC.prices, litellm))
    assert found == [
        ("2026-12-31", "tokens", "uncached_input_tokens", "7.5", "standard"),   # the table's $0.075, not LiteLLM's
        ("2026-12-31", "tokens", "cache_read_input_tokens", "1", "standard"),   # only LiteLLM has it
        ("2026-12-31", "tokens", "uncached_input_tokens", None, "standard"),    # LiteLLM prices output only
        ("2026-12-31", "tokens", "output_tokens", "100", "standard"),
        ("2026-12-31", "tokens", "output_tokens", None, "standard")]
    summed = translator.cost_page(translator.report_query({"starting_at": ["2026-12-31T00:00:00Z"]}, now=DEC_31 + 5,
                                                          cost=True), totals, SPEC.prices, litellm)
    rows = summed["data"][0]["results"]
    assert rows[0]["amount"] == "108.5" and [r["model"] for r in rows[1:]] == ["gemini/newcomer", "gemini/stranger"]
    assert all(r["amount"] is None and "unpriced" in r["description"] for r in rows[1:])


def test_start_up_warns_of_a_model_no_one_prices(tmp_path, caplog):
    from service.teams.report import warn_unpriced
    for name in translator.spec.TABLES:
        (tmp_path / f"{name}.yaml").write_text((translator.DEFAULT_SPEC_DIR / f"{name}.yaml").read_text())
    prices = yaml.safe_load((tmp_path / "prices.yaml").read_text())
    del prices["models"]["gemini-2.0-flash"], prices["models"]["gemini-2.5-flash"]
    (tmp_path / "prices.yaml").write_text(yaml.safe_dump(prices))
    with caplog.at_level(logging.WARNING):
        assert warn_unpriced(load_spec(tmp_path)) == ["gemini-2.0-flash"]   # LiteLLM knows 2.5 Flash
    assert "gemini-2.0-flash" in caplog.text and "unpriced" in caplog.text


@pytest.mark.parametrize("change, message", [
    (lambda p: p["models"]["gemini-3.8-flash"].reverse(), "'from' days must rise"),
    (lambda p: p["models"]["gemini-2.5-flash"][0].update(input=-1), "minimum of 0"),
    (lambda p: p["tiers"].pop("standard"), "standard"),
    (lambda p: p["models"]["gemini-2.5-flash"][0].update(tiers={"turbo": 2}), "turbo"),
    (lambda p: p["models"]["gemini-2.5-flash"][0].update({"from": "1 Jan"}), "from"),
])
def test_a_broken_price_stops_start_up_naming_the_place(tmp_path, change, message):
    for name in translator.spec.TABLES:
        (tmp_path / f"{name}.yaml").write_text((translator.DEFAULT_SPEC_DIR / f"{name}.yaml").read_text())
    prices = yaml.safe_load((tmp_path / "prices.yaml").read_text())
    change(prices)
    (tmp_path / "prices.yaml").write_text(yaml.safe_dump(prices))
    with pytest.raises(SpecError, match="prices.yaml") as error:
        load_spec(tmp_path)
    assert message in str(error.value)


def test_a_longer_cache_is_worth_it_by_the_readme_arithmetic():
    # 3.8 Flash: one read saves $0.675 / M; an hour's storage costs $1.00 / M: a 5 minute TTL pays, 1 hour does not.
    assert translator.cache_worth_growing(SPEC.prices, "gemini-3.8-flash", date(2026, 12, 1), 5000, 300)
    assert not translator.cache_worth_growing(SPEC.prices, "gemini-3.8-flash", date(2026, 12, 1), 5000, 3600)
    assert not translator.cache_worth_growing(SPEC.prices, "gemini-3.8-flash", date(2026, 12, 1), 4000, 300)


def test_anthropics_service_tier_and_the_keys_own_choose_the_gemini_tier():
    assert translator.gemini_service_tier(None, "flex") == "flex"
    assert translator.gemini_service_tier("auto", "flex") == "flex"
    assert translator.gemini_service_tier("standard_only", "flex") is None
    assert translator.gemini_service_tier("auto", None) is None
    with pytest.raises(translator.AnthropicError, match="service_tier"):
        translator.gemini_service_tier("priority", None)


def test_a_flex_key_asks_gemini_for_flex_and_the_cost_report_halves_its_price(make_proxy, gemini, tmp_path):
    import httpx
    keys = tmp_path / "keys.yaml"
    keys.write_text("keys:\n  - {name: agent, key: sk-background-agent-0001, service_tier: flex}\n"
                    "  - {name: human, key: sk-interactive-user-0002}\n")
    proxy = make_proxy(PROXY_API_KEY="admin-key", PROXY_KEYS_FILE=str(keys), BIG_MODEL="gemini-3.8-flash")
    body = {"model": "claude-sonnet-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    for key, extra in (("sk-background-agent-0001", {}), ("sk-background-agent-0001", {"service_tier": "standard_only"}),
                       ("sk-interactive-user-0002", {})):
        answer = httpx.post(proxy.url + "/v1/messages", json={**body, **extra}, headers={"x-api-key": key}, timeout=30)
        assert answer.status_code == 200, answer.text
    assert [r["body"].get("serviceTier") for r in gemini.requests if r["action"]] == ["flex", None, None]
    day = __import__("time").strftime("%Y-%m-%dT00:00:00Z", __import__("time").gmtime())
    costs = httpx.get(proxy.url + "/v1/organizations/cost_report", headers={"x-api-key": "admin-key"},
                      params={"starting_at": day, "group_by[]": "description"}).json()["data"][0]["results"]
    assert {c["service_tier"] for c in costs} == {"flex", "standard"}


def test_a_prompt_over_200k_tokens_is_priced_at_the_models_long_context_rates():
    totals = [sums(DEC_31, "gemini/gemini-2.5-pro", uncached_input_tokens=1_000_000, output_tokens=1_000_000,
                   cache_read_input_tokens=1_000_000) | {"long_context": False},
              sums(DEC_31, "gemini/gemini-2.5-pro", uncached_input_tokens=1_000_000, output_tokens=1_000_000,
                   cache_read_input_tokens=1_000_000) | {"long_context": True},
              sums(DEC_31, "gemini/gemini-2.5-flash", uncached_input_tokens=1_000_000) | {"long_context": True}]
    page = translator.cost_page(described(DEC_31, 1), totals, SPEC.prices, {})
    found = [(i["model"], i["token_type"], i["amount"], i["context_window"]) for i in page["data"][0]["results"]]
    assert found == [
        ("gemini/gemini-2.5-flash", "uncached_input_tokens", "30", "200k-1M"),   # no long-context tier: its price
        ("gemini/gemini-2.5-pro", "uncached_input_tokens", "125", "0-200k"),
        ("gemini/gemini-2.5-pro", "cache_read_input_tokens", "12.5", "0-200k"),
        ("gemini/gemini-2.5-pro", "output_tokens", "1000", "0-200k"),
        ("gemini/gemini-2.5-pro", "uncached_input_tokens", "250", "200k-1M"),   # $2.50 / M above 200k
        ("gemini/gemini-2.5-pro", "cache_read_input_tokens", "25", "200k-1M"),
        ("gemini/gemini-2.5-pro", "output_tokens", "1500", "200k-1M")]
    flex = translator.rates(SPEC.prices, "gemini-3-pro-preview", date(2026, 12, 1), "flex", long_context=True)
    assert flex.per_token["uncached_input_tokens"] == Decimal("2") / 1_000_000   # $4.00 / M, half


def test_a_request_whose_prompt_is_over_200k_tokens_is_booked_and_priced_as_long_context(make_proxy, gemini):
    import httpx
    proxy = make_proxy(PROXY_API_KEY="admin-key", BIG_MODEL="gemini-2.5-pro")
    body = {"model": "claude-sonnet-4-5", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}
    gemini.enqueue({"text": "long", "usage": {"promptTokenCount": 250_000, "candidatesTokenCount": 1000}},
                   {"text": "short", "usage": {"promptTokenCount": 200_000, "candidatesTokenCount": 1000}})
    for _ in range(2):
        answer = httpx.post(proxy.url + "/v1/messages", json=body, headers={"x-api-key": "admin-key"}, timeout=30)
        assert answer.status_code == 200, answer.text
    day = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime())
    costs = httpx.get(proxy.url + "/v1/organizations/cost_report", headers={"x-api-key": "admin-key"},
                      params={"starting_at": day, "group_by[]": "description"}).json()["data"][0]["results"]
    found = {(c["context_window"], c["token_type"]): c["amount"] for c in costs}
    assert found == {("0-200k", "uncached_input_tokens"): "25", ("0-200k", "output_tokens"): "1",       # $1.25, $10
                     ("200k-1M", "uncached_input_tokens"): "62.5", ("200k-1M", "output_tokens"): "1.5"}   # $2.50, $15


def test_an_alias_marked_flex_routes_its_requests_at_flex_and_a_direct_model_name_does_not(tmp_path):
    models = yaml.safe_load((translator.DEFAULT_SPEC_DIR / "models.yaml").read_text())
    models["aliases"][0]["service_tier"] = "flex"   # haiku
    (tmp_path / "models.yaml").write_text(yaml.safe_dump(models))
    for name in translator.spec.TABLES:
        if name != "models":
            (tmp_path / f"{name}.yaml").write_text((translator.DEFAULT_SPEC_DIR / f"{name}.yaml").read_text())
    table = load_spec(tmp_path).models
    assert translator.resolve_model("claude-haiku-4-5", table).service_tier == "flex"
    assert translator.resolve_model("claude-sonnet-4-5", table).service_tier is None
    assert translator.resolve_model("gemini-3.8-flash", table).service_tier is None
    models["aliases"][0]["service_tier"] = "priority"
    (tmp_path / "models.yaml").write_text(yaml.safe_dump(models))
    with pytest.raises(SpecError, match="models.yaml"):
        load_spec(tmp_path)


def test_a_flex_alias_asks_gemini_for_flex_unless_the_key_or_the_request_says_otherwise(make_proxy, gemini, tmp_path):
    import httpx
    spec = tmp_path / "spec"
    shutil.copytree(translator.DEFAULT_SPEC_DIR, spec)
    models = yaml.safe_load((spec / "models.yaml").read_text())
    for alias in models["aliases"]:
        alias.update({"service_tier": "flex"} if alias["contains"] == "haiku" else {})
    (spec / "models.yaml").write_text(yaml.safe_dump(models))
    keys = tmp_path / "keys.yaml"
    keys.write_text("keys:\n  - {name: agent, key: sk-background-agent-0001, service_tier: flex}\n"
                    "  - {name: human, key: sk-interactive-user-0002}\n")
    proxy = make_proxy(PROXY_API_KEY="admin-key", PROXY_KEYS_FILE=str(keys), SPEC_DIR=str(spec),
                       SMALL_MODEL="gemini-3.8-flash", BIG_MODEL="gemini-3.8-flash")
    human, agent = {"x-api-key": "sk-interactive-user-0002"}, {"x-api-key": "sk-background-agent-0001"}
    sent = [("claude-haiku-4-5", human, {}),                                # the alias: flex
            ("claude-haiku-4-5", human, {"service_tier": "standard_only"}),  # the request says otherwise
            ("claude-sonnet-4-5", human, {}),                               # an alias without a tier
            ("gemini-3.8-flash", human, {}),                                # no alias at all
            ("claude-sonnet-4-5", agent, {})]                               # the key's flex
    for model, headers, extra in sent:
        body = {"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}], **extra}
        answer = httpx.post(proxy.url + "/v1/messages", json=body, headers=headers, timeout=30)
        assert answer.status_code == 200, answer.text
    assert [r["body"].get("serviceTier") for r in gemini.requests if r["action"]] == ["flex", None, None, None, "flex"]
    day = time.strftime("%Y-%m-%dT00:00:00Z", time.gmtime())
    usage = httpx.get(proxy.url + "/v1/organizations/usage_report/messages", headers={"x-api-key": "admin-key"},
                      params={"starting_at": day, "group_by[]": ["service_tier", "api_key_id"]}).json()
    booked = {(r["api_key_id"], r["service_tier"]) for r in usage["data"][0]["results"]}
    assert booked == {("human", "flex"), ("human", "standard"), ("agent", "flex")}
