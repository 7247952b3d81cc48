"""The pure pieces the service used to hold: body decoding, model pages, the input estimate, and
folding stream events into a Message."""
from __future__ import annotations

import httpx
import pytest

from translator import AnthropicError, collect, decode_json, input_estimate, model_page


@pytest.mark.parametrize(("raw", "says"), [
    (b'{"a": NaN}', "a: not a finite JSON number"),
    (b'{"a": [1, Infinity]}', "a.1: not a finite JSON number"),
    (b'{"a": 1e999}', "a: not a finite JSON number"),
    (b'{"m": [{"t": "\\ud800"}]}', "m.0.t: not a finite JSON number or not valid Unicode"),
    (b'{"\\udfff": 1}', "(body): not a finite"),
    (b"[" * 100000 + b"]" * 100000, "nested too deeply"),
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
])
def test_bodies_the_api_cannot_take_are_400s_that_say_where(raw, says):
    with pytest.raises(AnthropicError) as caught:
        decode_json(raw)
    assert caught.value.status == 400 and says in caught.value.message


def test_depth_bound():
    assert decode_json(b'{"a": {"b": [1]}}', max_depth=4) == {"a": {"b": [1]}}  # the 1 is level 4
    with pytest.raises(AnthropicError, match="deeper than 3 levels"):
        decode_json(b'{"a": {"b": [1]}}', max_depth=3)


def test_valid_text_and_numbers_pass():
    assert decode_json('{"t": "😀 \\ud83d\\ude00", "n": 1.5e10}'.encode()) == {"t": "😀 😀", "n": 1.5e10}


ENTRIES = [{"id": f"m{i}"} for i in range(5)]


@pytest.mark.parametrize(("limit", "after", "before", "ids", "more"), [
    (None, None, None, ["m0", "m1", "m2", "m3", "m4"], False),
    (2, None, None, ["m0", "m1"], True),
    (2, "m1", None, ["m2", "m3"], True),
    (2, None, "m3", ["m1", "m2"], False),
    (5, "m0", "m3", ["m1", "m2"], False),
    (0, "unknown", None, ["m0", "m1", "m2", "m3", "m4"], False),
    (-4, None, None, ["m0"], True),
])
def test_model_pages_follow_anthropics_cursors(limit, after, before, ids, more):
    page = model_page(ENTRIES, limit, after, before, default_limit=20, max_limit=1000)
    assert [e["id"] for e in page["data"]] == ids and page["has_more"] is more
    assert (page["first_id"], page["last_id"]) == (ids[0], ids[-1])


def test_model_pages_take_their_sizes_from_the_caller():
    entries = [{"id": f"m{i}"} for i in range(30)]
    assert len(model_page(entries, None, None, None, default_limit=3, max_limit=10)["data"]) == 3
    assert len(model_page(entries, 50, None, None, default_limit=3, max_limit=10)["data"]) == 10


def test_the_input_estimate_is_a_quarter_of_the_request():
    assert input_estimate(4001) == 1000


def test_collect_folds_a_stream_into_its_message():
    start = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "content": [],
             "stop_reason": None, "stop_sequence": None, "usage": {"input_tokens": 9, "output_tokens": 1}}
    events = [
        {"type": "message_start", "message": start},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hm"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "sig"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "a"}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "b"}},
        {"type": "content_block_stop", "index": 1},
        {"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": '{"x":'}},
        {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": " 1}"}},
        {"type": "content_block_stop", "index": 2},
        {"type": "content_block_start", "index": 3, "content_block": {"type": "tool_use", "id": "u", "name": "g", "input": {}}},
        {"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": "[1"}},
        {"type": "content_block_stop", "index": 3},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
         "usage": {"input_tokens": 20, "output_tokens": 7}},
        {"type": "message_stop"},
    ]
    message = collect(events)
    assert message["content"] == [{"type": "thinking", "thinking": "hm", "signature": "sig"},
                                  {"type": "text", "text": "ab"},
                                  {"type": "tool_use", "id": "t", "name": "f", "input": {"x": 1}},
                                  {"type": "tool_use", "id": "u", "name": "g", "input": {}}]
    assert message["stop_reason"] == "tool_use" and message["usage"] == {"input_tokens": 20, "output_tokens": 7}
    assert start["content"] == [], "the events are not changed"
    with pytest.raises(ValueError):
        collect(events[1:])


def test_provider_prefixes_come_from_the_environment(make_proxy):
    plain = make_proxy()
    assert httpx.get(plain.url + "/v1/models/vertex_ai/gemini-2.5-pro").status_code == 400
    opened = make_proxy(PROVIDER_PREFIXES="gemini/, vertex_ai/")
    answer = httpx.get(opened.url + "/v1/models/vertex_ai/gemini-2.5-pro")
    assert answer.status_code == 200 and answer.json()["id"] == "vertex_ai/gemini-2.5-pro"
    assert httpx.get(opened.url + "/v1/models/gemini/gemini-2.5-pro").status_code == 200
