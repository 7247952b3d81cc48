"""Model resolution (models.yaml): aliases, prefixes, listed Gemini names, and 404s.

Refused name shapes are in test_model_names.py."""
from __future__ import annotations

import pytest

from translator import AnthropicError, load_spec, model_list, resolve_model

SPEC = load_spec(big_model="gemini-3.1-pro-preview", small_model="gemini-3.8-flash")


@pytest.mark.parametrize(("requested", "target"), [
    ("claude-haiku-4-5-20251001", "gemini/gemini-3.8-flash"),
    ("claude-sonnet-5", "gemini/gemini-3.1-pro-preview"),
    ("claude-opus-4-8", "gemini/gemini-3.1-pro-preview"),
    ("claude-opus-4-8[1m]", "gemini/gemini-3.1-pro-preview"),
    ("CLAUDE-SONNET-4-6", "gemini/gemini-3.1-pro-preview"),
    ("gemini-3.8-flash", "gemini/gemini-3.8-flash"),
    ("gemini-2.5-pro-preview-03-25", "gemini/gemini-2.5-pro-preview-03-25"),
    ("gemini/gemini-9-experimental", "gemini/gemini-9-experimental"),
])
def test_resolution(requested, target):
    route = resolve_model(requested, SPEC.models)
    assert route.target == target
    assert route.requested == requested


@pytest.mark.parametrize("requested", ["vertex_ai/gemini-2.5-pro", "openai/gpt-x"])
def test_other_providers_only_when_the_operator_enables_them(requested):
    opted_in = load_spec(provider_prefixes=["gemini/", "vertex_ai/", "openai/"])
    assert resolve_model(requested, opted_in.models).target == requested
    with pytest.raises(AnthropicError) as caught:
        resolve_model(requested, SPEC.models)
    assert (caught.value.status, caught.value.type) == (400, "invalid_request_error")


def test_environment_override_and_prefixed_targets():
    spec = load_spec(big_model="vertex_ai/gemini-2.5-pro", small_model="gemini-2.0-flash",
                     provider_prefixes=["gemini/", "vertex_ai/"])
    assert resolve_model("claude-opus-4-8", spec.models).target == "vertex_ai/gemini-2.5-pro"
    small = resolve_model("claude-haiku-4-5", spec.models)
    assert small.target == "gemini/gemini-2.0-flash"
    assert small.facts.max_output_tokens == 8192


def test_unknown_model_is_a_404_naming_it_and_the_aliases():
    with pytest.raises(AnthropicError) as caught:
        resolve_model("gpt-4o", SPEC.models)
    error = caught.value
    assert (error.status, error.type) == (404, "not_found_error")
    assert "gpt-4o" in error.message and "*haiku*" in error.message and "*sonnet*" in error.message


def test_model_list_has_claude_aliases_and_gemini_models():
    entries = model_list(SPEC.models)
    ids = [e["id"] for e in entries]
    assert "claude-haiku" in ids and "gemini-3.8-flash" in ids
    haiku = entries[ids.index("claude-haiku")]
    assert "gemini-3.8-flash" in haiku["display_name"]
    assert all(e["type"] == "model" and e["max_tokens"] > 0 for e in entries)
