"""The shortcuts that make a long Claude Code turn cheap (issue 26) give what the slow path gives:
orjson's decoding == Python's checked decoding, json_bytes == json.dumps's value, and LiteLLM's
mapped parameters from the cache == a fresh mapping, on real Claude Code requests of a growing session."""
from __future__ import annotations

import copy
import json
from typing import Any

import pytest

import translator
from service.engines.litellm_adapter.gemini import optional_params
from service.engines.litellm_adapter.mapped_params import MappedParams
from translator.decoding import _checked

from .conftest import FIXTURES


def _requests() -> list[dict[str, Any]]:
    if not FIXTURES.is_dir():
        pytest.skip("no Claude Code fixtures")
    found = [json.loads(path.read_text()) for path in sorted(FIXTURES.glob("*-request.json"))]
    # (09 names a custom model, which the proxy does not serve.)
    return [body for body in found if isinstance(body, dict) and "messages" in body and "custom" not in body["model"]]


def _grown(body: dict[str, Any], rounds: int) -> dict[str, Any]:
    """``body`` with ``rounds`` more tool rounds before its last message: a later turn of its session."""
    grown = copy.deepcopy(body)
    extra: list[dict[str, Any]] = []
    for n in range(rounds):
        call = f"toolu_01grown{n:06d}"
        extra += [{"role": "assistant", "content": [{"type": "text", "text": f"Reading part {n}."},
                   {"type": "tool_use", "id": call, "name": "Read", "input": {"file_path": f"/p/f{n}.py"}}]},
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call,
                                                "content": f"{n}\tdef f_{n}(): return 'é' * {n}\n" * 20}]}]
    grown["messages"] = grown["messages"][:1] + extra + grown["messages"][1:]
    return grown


def _session() -> list[dict[str, Any]]:
    return [_grown(body, rounds) for body in _requests() for rounds in (0, 3, 12)]


def test_decoding_is_pythons_on_claude_code_requests() -> None:
    for body in _session():
        for data in (json.dumps(body).encode(), json.dumps(body, ensure_ascii=False, indent=1).encode()):
            assert translator.decode_json(data) == _checked(data)


@pytest.mark.parametrize("text, value", [
    (b'{"n": 123456789012345678901234567890}', {"n": 123456789012345678901234567890}),
    (b'[ -98765432109876543210, 1.5e300, 18446744073709551615]', [-98765432109876543210, 1.5e300, 18446744073709551615]),
    (b'{"id": "toolu_0123456789012345678901", "x": 1e-7}', {"id": "toolu_0123456789012345678901", "x": 1e-7}),
    # 19 digits: past int64 below zero (orjson reads that as a float), uint64 above it
    (b'[-9223372036854775809, -9223372036854775808, 9999999999999999999]',
     [-9223372036854775809, -9223372036854775808, 9999999999999999999]),
    (b'{"t": "at 1733560000000000000 ns", "n": -9999999999999999999}',
     {"t": "at 1733560000000000000 ns", "n": -9999999999999999999}),
])
def test_long_integers_stay_whole(text: bytes, value: Any) -> None:
    decoded = translator.decode_json(text)
    assert decoded == value and json.dumps(decoded) == json.dumps(value)


@pytest.mark.parametrize("text", [b'{"a": NaN}', b'{"a": 1e400}', b'{"a": "\\ud800"}', b'{"a": 1,}', b'\xff'])
def test_what_orjson_refuses_gets_pythons_message(text: bytes) -> None:
    with pytest.raises(translator.AnthropicError) as fast:
        translator.decode_json(text)
    with pytest.raises(translator.AnthropicError) as slow:
        _checked(text)
    assert fast.value.status == 400 and fast.value.message == slow.value.message


def test_json_bytes_is_the_same_value() -> None:
    for body in _session():
        assert json.loads(translator.json_bytes(body)) == body
        assert translator.json_bytes(body, sort_keys=True) == json.dumps(
            body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    big = {"n": 2 ** 70, "t": ["é"]}
    assert json.loads(translator.json_bytes(big)) == big


def _params(body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    spec = translator.load_spec()
    call = translator.translate_call(translator.plan_edits(body, spec.context).body, spec)
    kwargs = call.kwargs
    return kwargs["model"].split("/", 1)[1], {k: v for k, v in kwargs.items()
                                              if k not in ("model", "stream", "stream_options")}


def test_mapped_params_from_the_cache_are_litellms() -> None:
    cache = MappedParams(4, optional_params)
    for body in _session():
        model, params = _params(body)
        fresh = optional_params(model, "gemini", copy.deepcopy(params))
        first, again = cache.get(model, "gemini", params), cache.get(model, "gemini", params)
        assert json.dumps(first) == json.dumps(fresh) == json.dumps(again)
        again["tools"] = []  # a copy of its own: the next caller gets LiteLLM's mapping whole
        assert json.dumps(cache.get(model, "gemini", params)) == json.dumps(fresh)
    assert len(cache.entries) <= 4


def test_mapped_params_find_a_tool_list_seen_before_by_its_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """The translator hands out the same tool list for the same tools (its plan is kept): that list's
    mapping is found without writing the tools again; an equal list in other objects, by its JSON."""
    from service.engines.litellm_adapter import mapped_params

    cache = MappedParams(4, optional_params)
    model, params = _params(_session()[-1])
    fresh = optional_params(model, "gemini", copy.deepcopy(params))
    cache.get(model, "gemini", params)
    written: list[int] = []
    write = mapped_params.json_bytes
    monkeypatch.setattr(mapped_params, "json_bytes", lambda value, **kw: written.append(len(value)) or write(value, **kw))
    assert json.dumps(cache.get(model, "gemini", params)) == json.dumps(fresh)
    assert len(written) == 1   # the parameters but the tools
    other = copy.deepcopy(params)
    assert json.dumps(cache.get(model, "gemini", other)) == json.dumps(fresh)
    assert len(written) == 3 and len(cache.entries) == 1   # and then all of them: the same entry


def test_prefix_keys_and_sizes_are_those_of_the_canonical_json() -> None:
    """translator.prefixes writes each content once (orjson, sorted keys) for both the registry keys and
    the sizes: the same bytes as json.dumps's canonical form, so the keys are a SHA-256 of those."""
    import hashlib

    def canonical(value: Any) -> bytes:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    for body in _session():
        _, params = _params(body)
        gemini = {"system_instruction": {"parts": [{"text": "x"}]}, "tools": params.get("tools"),
                  "contents": [{"role": m["role"], "parts": [{"text": json.dumps(m.get("content"))}]}
                               for m in params["messages"]]}
        last = len(gemini["contents"]) - 1
        keys, sizes = translator.prefixes("tag", "m", gemini, last)
        head = [gemini.get(name) for name in translator.caching.HEAD_FIELDS]
        digest, size = hashlib.sha256(canonical(["m", *head])), len(canonical(head))
        assert keys[0] == f"tag:m:{digest.hexdigest()}" and sizes[0] == size
        for number, content in enumerate(gemini["contents"][:last], 1):
            digest.update(canonical(content))
            size += len(canonical(content))
            assert keys[number] == f"tag:m:{digest.hexdigest()}" and sizes[number] == size
        assert keys == translator.prefix_keys("tag", "m", gemini, last)


def test_json_pair_is_json_dumps() -> None:
    """A tool result's JSON for LiteLLM, written with orjson's strings, is json.dumps's to the character."""
    from translator.decoding import json_pair

    every = "".join(chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)
    texts = [every, "", "\ud800 lone", *(block.get("content") if isinstance(block.get("content"), str)
                                         else json.dumps(block.get("content"))
                                         for body in (_requests() if FIXTURES.is_dir() else [])
                                         for message in body["messages"]
                                         if isinstance(message["content"], list)
                                         for block in message["content"] if block.get("type") == "tool_result")]
    for key in ("output", "error"):
        for text in texts:
            assert json_pair(key, text) == json.dumps({key: text}, ensure_ascii=False)
