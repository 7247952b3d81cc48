"""``speed``: fast asks Gemini for its priority tier where models.yaml lists it, and the ledger books the tier
that served; through the strict fake Gemini."""
from __future__ import annotations

import httpx
import pytest

import translator
from tests.conftest import TEST_KEY
from tests.teams import ADMIN, ledger_rows, post

SPEC = translator.load_spec()
BODY = {"model": "claude-sonnet-5", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("model, speed, tier", [
    ("claude-sonnet-5", "fast", "priority"),     # gemini-3.1-pro-preview has priority
    ("claude-sonnet-5", "standard", None),       # standard sends nothing
    ("claude-sonnet-5", None, None),
    ("gemini-2.5-flash", "fast", None),          # no priority tier: runs at standard
])
def test_speed_becomes_the_service_tier_where_the_model_has_it(model, speed, tier):
    body = {**BODY, "model": model, **({"speed": speed} if speed else {})}
    assert translator.translate_call(body, SPEC).kwargs.get("service_tier") == tier


def test_an_unknown_speed_is_refused(proxy, gemini):
    answer = httpx.post(proxy.url + "/v1/messages", json={**BODY, "speed": "turbo"}, timeout=30)
    assert answer.status_code == 400 and "speed: Input should be 'standard' or 'fast'" in answer.text
    assert not [r for r in gemini.requests if r["action"]]


@pytest.mark.parametrize("stream", [False, True])
def test_fast_reaches_gemini_and_the_ledger(make_proxy, gemini, tmp_path, stream):
    url = f"sqlite:///{tmp_path / 'usage.db'}"
    proxy = make_proxy(PROXY_API_KEY=ADMIN, DATABASE_URL=url)
    assert post(proxy, ADMIN, stream=stream, speed="fast", model="claude-sonnet-5").status_code == 200
    sent = gemini.requests[-1]
    assert sent["body"]["serviceTier"] == "priority" and sent["service_tier"] == "priority"
    gemini.priority_downgrade = True   # Gemini serves it at standard and says so in x-gemini-service-tier
    assert post(proxy, ADMIN, stream=stream, speed="fast", model="claude-sonnet-5").status_code == 200
    assert gemini.requests[-1]["service_tier"] == "standard"
    assert post(proxy, ADMIN, stream=stream, speed="standard").status_code == 200
    assert "serviceTier" not in gemini.requests[-1]["body"]
    proxy.stop()  # the shutdown writes what is still queued
    assert [r["service_tier"] for r in sorted(ledger_rows(url), key=lambda r: r["time_ms"])] == [
        "priority", "standard", "standard"]


@pytest.mark.parametrize("tier, status", [("priority", 200), ("SERVICE_TIER_FLEX", 200), ("fast", 400),
                                          ("PRIORITY", 400)])
def test_the_fake_takes_only_geminis_service_tiers(gemini, tier, status):
    answer = httpx.post(f"{gemini.base_url}/models/gemini-3.8-flash:generateContent",
                        json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}], "serviceTier": tier},
                        headers={"x-goog-api-key": TEST_KEY}, timeout=30)
    assert answer.status_code == status, answer.text
    if status == 400:
        assert "Invalid value at 'service_tier'" in answer.json()["error"]["message"]
    elif tier == "priority":
        assert answer.headers["x-gemini-service-tier"] == "priority"
