"""Thinking configuration per model family, and the thought-signature carrier in tool ids."""
from __future__ import annotations

import pytest

from translator import decode_tool_id, encode_tool_id, load_spec, resolve_model
from translator.signatures import signature_from_thinking, thinking_signature
from translator.thinking import thinking_config

SPEC = load_spec()


def config(model, thinking, effort=None, max_tokens=32000):
    facts = resolve_model(model, SPEC.models).facts
    return thinking_config(thinking, effort, facts, SPEC.models, max_tokens)


@pytest.mark.parametrize(("model", "thinking", "effort", "expected"), [
    ("gemini-3.8-flash", {"type": "adaptive"}, "high", {"thinkingLevel": "high", "includeThoughts": True}),
    ("gemini-3.8-flash", {"type": "adaptive"}, "xhigh", {"thinkingLevel": "high", "includeThoughts": True}),
    ("gemini-3.8-flash", {"type": "adaptive"}, None, {"thinkingLevel": "high", "includeThoughts": True}),
    ("gemini-3.8-flash", {"type": "adaptive", "display": "omitted"}, "medium",
     {"thinkingLevel": "medium", "includeThoughts": False}),
    # 3.8 Flash refuses MINIMAL: disabled goes to its lowest level, LOW.
    ("gemini-3.8-flash", {"type": "disabled"}, None, {"thinkingLevel": "low", "includeThoughts": False}),
    ("gemini-3.6-flash", {"type": "disabled"}, None, {"thinkingLevel": "minimal", "includeThoughts": False}),
    ("gemini-3.8-flash", {"type": "enabled", "budget_tokens": 1024}, None, {"thinkingLevel": "low", "includeThoughts": True}),
    ("gemini-3.8-flash", {"type": "enabled", "budget_tokens": 31999}, None, {"thinkingLevel": "high", "includeThoughts": True}),
    ("gemini-2.5-pro", {"type": "enabled", "budget_tokens": 31999}, None, {"thinkingBudget": 31999, "includeThoughts": True}),
    ("gemini-2.5-flash", {"type": "enabled", "budget_tokens": 31999}, None, {"thinkingBudget": 24576, "includeThoughts": True}),
    ("gemini-2.5-pro", {"type": "adaptive"}, "low", {"thinkingBudget": 2048, "includeThoughts": True}),
    ("gemini-2.5-pro", {"type": "disabled"}, None, {"thinkingBudget": 128, "includeThoughts": False}),
    ("gemini-2.5-flash", {"type": "disabled"}, None, {"thinkingBudget": 0, "includeThoughts": False}),
    ("gemini-2.0-flash", {"type": "adaptive"}, "high", None),
    ("gemini-3.8-flash", {"type": "enabled", "budget_tokens": 10**12}, None, {"thinkingLevel": "high", "includeThoughts": True}),
    ("gemini-3-pro-preview", {"type": "adaptive"}, "medium", {"thinkingLevel": "high", "includeThoughts": True}),
    ("gemini-3.8-flash", None, "high", None),
])
def test_thinking_config(model, thinking, effort, expected):
    assert config(model, thinking, effort) == expected


def test_budget_keeps_room_for_the_answer():
    assert config("gemini-2.5-pro", {"type": "enabled", "budget_tokens": 8000}, max_tokens=4000) == \
        {"thinkingBudget": 3999, "includeThoughts": True}


@pytest.mark.parametrize(("model", "max_tokens", "budget"), [
    # 2.5 Flash-Lite takes 0 or 512..24576: 299 (max_tokens - 1) is nearer 512, 200 nearer 0, 256 as near both.
    ("gemini-2.5-flash-lite", 300, 512),
    ("gemini-2.5-flash-lite", 201, 0),
    ("gemini-2.5-flash-lite", 257, 0),
    ("gemini-2.5-flash-lite", 32000, 24576),
    # 2.5 Pro never takes 0: 99 goes up to its lowest, 128.
    ("gemini-2.5-pro", 100, 128),
])
def test_a_budget_the_model_cannot_take_goes_to_the_nearest_it_can(model, max_tokens, budget):
    assert config(model, {"type": "enabled", "budget_tokens": 30000}, max_tokens=max_tokens) == \
        {"thinkingBudget": budget, "includeThoughts": True}


def test_disabled_sends_the_lowest_budget_the_model_takes():
    assert config("gemini-2.5-flash-lite", {"type": "disabled"}) == {"thinkingBudget": 0, "includeThoughts": False}


@pytest.mark.parametrize(("call_id", "signature"), [
    ("call_0123456789abcdef", "c2lnLUFBQUEtdGhvdWdodC1zaWduYXR1cmUtMQ=="),
    ("fc_server_1", None),
    ("call_abc__thought__c2ln", "c2ln+/=="),
    ("id with spaces/and+symbols", "x" * 3000),
])
def test_tool_id_round_trip(call_id, signature):
    tool_id = encode_tool_id(call_id, signature, "fallback")
    assert all(c.isalnum() or c in "_-" for c in tool_id)
    expected_id = call_id.split("__thought__")[0]
    assert decode_tool_id(tool_id) == (expected_id, signature)


@pytest.mark.parametrize("foreign", ["toolu_01A09q90qw90lq917835lq9", "toolu_gm5_abc", "toolu_gm3_!!!", "call_1"])
def test_foreign_ids_pass_through(foreign):
    assert decode_tool_id(foreign) == (foreign, None)


def test_thinking_signature_carrier():
    assert signature_from_thinking(thinking_signature("abc+/=")) == "abc+/="
    assert signature_from_thinking(thinking_signature(None)) is None
    assert signature_from_thinking("EqQBCgIYAhIM-from-claude") is None


def test_a_signature_goes_back_only_to_the_model_that_issued_it():
    from translator.signatures import signature_for, tag_signature
    tagged = tag_signature("c2ln+/==", "gemini-3.1-pro-preview")
    assert signature_for(tagged, "gemini-3.1-pro-preview") == "c2ln+/=="
    assert signature_for(tagged, "gemini-3.8-flash") is None
    assert signature_for("c2ln+/==", "gemini-3.8-flash") == "c2ln+/=="  # untagged (older ids): as it is
    assert signature_for(None, "gemini-3.8-flash") is None and tag_signature(None, "x") is None
