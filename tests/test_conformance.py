"""spec/conformance.yaml against the installed Anthropic SDK's types, and the 400s it gives.

The walk reads ``MessageCreateParams`` of both ``anthropic.types`` and ``anthropic.types.beta``: every
top-level field, every message field, every content block ``type`` a message (or a tool_result's
content) may hold. A new SDK that adds one fails here, naming it, until the table says what the
proxy does with it.
"""
from __future__ import annotations

import re
import typing
from typing import Any, Iterator, Literal, get_args, get_origin

import pytest
import typing_extensions
from anthropic.types import message_create_params as stable
from anthropic.types.beta import message_create_params as beta

import translator
from translator import AnthropicError, translate_request

SPEC = translator.load_spec()
TABLE = SPEC.conformance


# --- walking the SDK's TypedDicts ------------------------------------------------------------------

def _hints(typed_dict: type) -> dict[str, Any]:
    return typing.get_type_hints(typed_dict)


def _leaves(annotation: Any) -> Iterator[Any]:
    """The types inside Required / Optional / Union / Iterable / Literal wrappers."""
    if get_origin(annotation) is None or get_origin(annotation) is Literal:
        yield annotation
        return
    for arg in get_args(annotation):
        yield from _leaves(arg)


def _typed_dicts(annotation: Any) -> list[type]:
    return [t for t in _leaves(annotation) if isinstance(t, type) and typing_extensions.is_typeddict(t)]


def _tags(typed_dict: type) -> list[str]:
    kind = _hints(typed_dict).get("type")
    return [v for leaf in _leaves(kind) if get_origin(leaf) is Literal for v in get_args(leaf)] if kind else []


def sdk_surface() -> tuple[set[str], set[str], set[str]]:
    """(top-level fields, message fields, content block types) of both MessageCreateParams."""
    fields: set[str] = set()
    message_fields: set[str] = set()
    blocks: set[str] = set()
    for module in (stable, beta):
        for params in (module.MessageCreateParamsNonStreaming, module.MessageCreateParamsStreaming):
            fields |= set(_hints(params))
        for message in _typed_dicts(_hints(module.MessageCreateParamsBase)["messages"]):
            message_fields |= set(_hints(message))
            for block in _typed_dicts(_hints(message)["content"]):
                blocks.update(_tags(block))
                if "tool_result" in _tags(block):
                    for inner in _typed_dicts(_hints(block).get("content", type(None))):
                        blocks.update(_tags(inner))
    return fields, message_fields, blocks


def test_the_walk_sees_what_the_sdk_is_known_to_have():
    fields, message_fields, blocks = sdk_surface()
    assert {"model", "messages", "max_tokens", "stream", "tools", "context_management", "fallbacks"} <= fields
    assert {"role", "content", "clear_at", "output_config"} <= message_fields
    assert {"text", "tool_use", "tool_result", "tool_addition", "tool_removal", "compaction", "fallback",
            "web_fetch_tool_result", "tool_reference"} <= blocks


@pytest.mark.parametrize(("part", "rows"), [("fields", TABLE.fields), ("message_fields", TABLE.message_fields),
                                            ("blocks", TABLE.blocks)])
def test_every_sdk_field_and_block_type_has_a_row(part, rows):
    surface = dict(zip(("fields", "message_fields", "blocks"), sdk_surface()))[part]
    missing = sorted(surface - set(rows))
    assert not missing, (f"spec/conformance.yaml `{part}` has no row for {', '.join(missing)} (new in the SDK): "
                         "say whether the proxy serves each natively, emulates, ignores (why) or refuses (message)")


def test_counts_by_status():
    """The numbers the issue's note reports; each status is used."""
    counts = {status: sum(row.status == status for rows in (TABLE.fields, TABLE.message_fields, TABLE.blocks)
                          for row in rows.values()) for status in ("native", "emulated", "ignored", "refused")}
    assert all(counts.values()), counts
    assert sum(counts.values()) == len(TABLE.fields) + len(TABLE.message_fields) + len(TABLE.blocks)


def test_served_blocks_are_exactly_content_yamls_blocks():
    served = {name for name, row in TABLE.blocks.items() if row.status != "refused"}
    assert served == set(SPEC.content.blocks), "conformance.yaml and content.yaml disagree on which blocks are served"


# --- the 400s ----------------------------------------------------------------------------------------

def refusal(**body) -> str:
    request = {"model": "gemini-3.8-flash", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}], **body}
    with pytest.raises(AnthropicError) as caught:
        translate_request(request, SPEC)
    assert caught.value.status == 400 and caught.value.type == "invalid_request_error"
    return caught.value.message


# Claude Code 2.1.332's own checks, copied from its bundled cli (the native binary of
# @anthropic-ai/claude-code-linux-x64; `grep -ao` for the text), where a 400 makes it drop a beta and retry:
#   function rrs(e,n){let o=/^(?:[\w.]+: )?Input tag '[\w.-]+'/.exec(_Lt(n));return o!==null&&rhe(e,o[0])}
#   function rhe(e,n){let o=ors.get(e);return o!==void 0&&[...n.matchAll(/Input tag '([\w.-]+)'/g)].some(...)}
#     with ors: mid-conversation-tool-changes-2026-07-01 → /^tool_(addition|removal)$/, ... ("block_type_unknown")
#   var iA=/(Input tag ')(?:([^]*)' found using 'type' does not match any of the expected tags:
#          ('[\w.-]{1,64}'(?:, '[\w.-]{1,64}')*|<tags\.\d{1,4}>)$|[^]*)/
#   function Ojn(e,n){return e.includes(n)&&/anthropic[-_]beta/.test(e)}   ("header_rejected": beta dropped)
#   Pje: /\btool_addition\b/ and "references" → "unknown_tool_reference"; xje: "is already used by a" → "name_conflict"
CC_INPUT_TAG = r"^(?:[\w.]+: )?Input tag '[\w.-]+'"
CC_TAG = r"Input tag '([\w.-]+)'"
CC_EXPECTED = (r"(Input tag ')(?:([\s\S]*)' found using 'type' does not match any of the expected tags: "
               r"('[\w.-]{1,64}'(?:, '[\w.-]{1,64}')*|<tags\.\d{1,4}>)$|[\s\S]*)")
CC_BETA = r"anthropic[-_]beta"
CC_SOURCES = ["/^(?:[\\w.]+: )?Input tag '[\\w.-]+'/", "/Input tag '([\\w.-]+)'/g",
              "function Ojn(e,n){return e.includes(n)&&/anthropic[-_]beta/.test(e)}",
              "[av,/^tool_(addition|removal)$/]", "' found using 'type' does not match any of the expected tags: "]


def header_rejected(message: str, header: str) -> bool:
    """Claude Code's Ojn: the message names the beta header value and anthropic-beta."""
    return header in message and re.search(CC_BETA, message) is not None


def test_unknown_block_in_the_form_claude_code_parses():
    message = refusal(messages=[{"role": "user", "content": [{"type": "hologram_2027", "x": 1}]}])
    assert re.match(CC_INPUT_TAG, message) and re.findall(CC_TAG, message) == ["hologram_2027"]
    expected = re.fullmatch(CC_EXPECTED, message[message.index("Input tag '"):])
    assert expected and expected.group(3), message  # the whole list of expected tags, as Anthropic ends it
    assert "'tool_addition'" in expected.group(3) and "'mcp_tool_use'" not in expected.group(3)


@pytest.mark.parametrize("block", ["mcp_tool_use", "mcp_tool_result", "mcp_tool_listing"])
def test_a_refused_beta_block_names_its_header_for_claude_code(block):
    row = TABLE.blocks[block]
    message = refusal(messages=[{"role": "assistant", "content": [{"type": block, "id": "x"}]},
                                {"role": "user", "content": "hi"}])
    assert message.startswith("messages.0.content.0: ") and block in message
    assert header_rejected(message, row.beta) and f"`{row.beta}`" in message


def test_a_refused_block_without_a_beta_says_why():
    message = refusal(messages=[{"role": "user", "content": "hi"},
                                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "B", "input": {}}]},
                                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                                                              "content": [{"type": "browser_state"}]}]}])
    assert "browser_state" in message and "anthropic-beta" not in message


def test_unknown_and_refused_fields():
    assert refusal(brand_new=1) == "brand_new: Extra inputs are not permitted"
    assert refusal(messages=[{"role": "user", "content": "hi", "mood": "x"}]) == \
        "messages.0.mood: Extra inputs are not permitted"
    message = refusal(mcp_servers=[{"type": "url", "url": "https://mcp.example", "name": "m"}])
    assert message.startswith("mcp_servers: ") and header_rejected(message, TABLE.fields["mcp_servers"].beta)


def test_every_sdk_field_the_table_accepts_is_accepted():
    accepted = {"container": "c", "inference_geo": "us", "diagnostics": {}, "billing_policy": {},
                "fallback_credit_token": "f", "cache_control": {"type": "ephemeral"}, "metadata": {"user_id": "u"}}
    assert set(accepted) <= {n for n, row in TABLE.fields.items() if row.status == "ignored"}
    translate_request({"model": "gemini-3.8-flash", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}],
                       **accepted}, SPEC)
