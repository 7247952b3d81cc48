"""The session-growth benchmark's body builder (bench/growth_body.py): the grown Claude Code turns are the
sizes asked for and still a valid Anthropic Messages conversation. No servers."""
from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

import translator
from bench import growth_body
from bench.answer_check import peer_form
from bench.growth_body import _blocks


@pytest.fixture(scope="module", params=["capture", "synthetic"])
def grown(request: pytest.FixtureRequest) -> dict[str, dict]:
    """The grown turns from the real capture (skipped when absent) and from bench/claude_code_request.py."""
    saved = growth_body.FIXTURES
    if request.param == "capture" and not (saved / growth_body.BASE_FIXTURE).exists():
        pytest.skip(f"no Claude Code captures at {saved}")
    if request.param == "synthetic":
        growth_body.FIXTURES = Path("/nonexistent/claude-code-captures")
    try:
        yield {**growth_body.grown_requests(), "base": growth_body.base_request()[0]}
    finally:
        growth_body.FIXTURES = saved


@pytest.mark.parametrize("label", list(growth_body.SIZES))
def test_grown_turn_is_within_ten_percent_of_its_target(grown: dict[str, dict], label: str) -> None:
    size = len(growth_body.encode(grown[label]))
    target = growth_body.SIZES[label]
    assert 0.9 * target <= size <= 1.1 * target, (label, size)


def test_bigger_targets_carry_more_rounds(grown: dict[str, dict]) -> None:
    counts = [(len(grown[label]["messages"]) - len(grown["base"]["messages"])) // 2 for label in growth_body.SIZES]
    assert counts == sorted(counts) and counts[0] < counts[-1], counts
    assert counts[-1] > 300  # ~2.4 KB a round: 1.1 MB is some hundreds of rounds


@pytest.mark.parametrize("label", list(growth_body.SIZES))
def test_grown_turn_alternates_and_answers_every_tool_use(grown: dict[str, dict], label: str) -> None:
    messages = [m for m in grown[label]["messages"] if m["role"] != "system"]
    roles = [m["role"] for m in messages]
    assert roles[0] == "user" and roles[-1] == "user"
    assert all(a != b for a, b in itertools.pairwise(roles)), roles
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        calls = [b["id"] for b in _blocks(message) if b.get("type") == "tool_use"]
        answered = [b["tool_use_id"] for b in _blocks(messages[i + 1]) if b.get("type") == "tool_result"]
        assert sorted(calls) == sorted(answered), (i, calls, answered)
    ids = [b["id"] for m in messages for b in _blocks(m) if b.get("type") == "tool_use"]
    assert len(ids) == len(set(ids))


def test_rounds_carry_thinking_signatures_when_the_base_has_them(grown: dict[str, dict]) -> None:
    base = grown["base"]
    assert growth_body._has_signed_thinking(base)  # both the capture and the synthetic request think
    for message in grown["49 KB"]["messages"][len(base["messages"]):]:
        if message["role"] == "assistant":
            thinking = [b for b in _blocks(message) if b["type"] == "thinking"]
            assert thinking and thinking[0]["signature"].startswith("gm1:")


def test_one_cache_mark_in_the_history_on_the_newest_block(grown: dict[str, dict]) -> None:
    body = grown["300 KB"]
    marked = [(i, j) for i, m in enumerate(body["messages"]) for j, b in enumerate(_blocks(m)) if "cache_control" in b]
    assert marked == [(len(body["messages"]) - 1, len(_blocks(body["messages"][-1])) - 1)]


def test_grown_turn_translates_and_peer_form_drops_the_carrier(grown: dict[str, dict]) -> None:
    body = grown["49 KB"]
    call = translator.translate_request(json.loads(growth_body.encode(body)), translator.load_spec())
    assert call.kwargs["messages"]
    peer = peer_form(body, "ccr")
    signatures = [b["signature"] for m in peer["messages"] for b in _blocks(m) if b.get("type") == "thinking"]
    assert signatures and not any(s.startswith("gm1:") for s in signatures)
