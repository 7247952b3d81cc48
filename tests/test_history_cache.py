"""The history converted on earlier turns (service.engines.litellm_adapter.history) gives the Gemini
body LiteLLM builds from scratch, byte for byte: on the turns of growing sessions (Claude Code's own
requests where the fixtures are present, synthetic ones always), on Vertex's provider and other
models, with images, with edits in the middle of the history, and with a budget too small to keep it."""
from __future__ import annotations

import copy
import json
from typing import Any, Iterator

import pytest
from litellm.llms.vertex_ai.gemini.transformation import transform_request_body

import translator
from service.engines.litellm_adapter import gemini
from service.engines.litellm_adapter import history as history_module
from service.engines.litellm_adapter.history import ConvertedHistory, segments

from .conftest import FIXTURES

SPEC = translator.load_spec()
PNG = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")


def _round(n: int, image: bool = False) -> list[dict[str, Any]]:
    call = f"toolu_01round{n:06d}"
    result: Any = f"{n}\tdef f_{n}(): return 'é' * {n}\n" * 8
    if image:
        result = [{"type": "text", "text": "a screenshot"},
                  {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]
    return [{"role": "assistant", "content": [{"type": "thinking", "thinking": "plan", "signature": "c2ln"},
                                              {"type": "text", "text": f"Reading part {n}."},
                                              {"type": "tool_use", "id": call, "name": "Read",
                                               "input": {"file_path": f"/p/f{n}.py", "limit": n}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call, "content": result},
                                         *([{"type": "text", "text": f"and then {n}"}] if n % 3 == 0 else [])]}]


def _synthetic(rounds: int, model: str = "claude-sonnet-4-5", images: tuple[int, ...] = ()) -> dict[str, Any]:
    tools = [{"name": "Read", "description": "Reads a file.", "input_schema": {
        "type": "object", "properties": {"file_path": {"type": "string"}, "limit": {"type": "integer"}},
        "required": ["file_path"]}}]
    messages = [{"role": "user", "content": "Look at the project."}]
    for n in range(rounds):
        messages += _round(n, image=n in images)
    messages.append({"role": "user", "content": "What did you find?"} if messages[-1]["role"] == "assistant"
                    else {"role": "assistant", "content": "Let me think."})
    if messages[-1]["role"] == "assistant":
        messages.append({"role": "user", "content": "Go on."})
    return {"model": model, "max_tokens": 1024, "system": "You are a careful engineer.", "tools": tools,
            "messages": messages}


def _claude_code(rounds: int) -> dict[str, Any]:
    path = FIXTURES / "04-tool-parallel-thinking-followup-request.json"
    if not path.exists():
        pytest.skip("no Claude Code fixtures")
    body = json.loads(path.read_text())
    body["messages"] = body["messages"][:1] + _synthetic(rounds)["messages"][1:-1] + body["messages"][1:]
    return body


def _kwargs(body: dict[str, Any]) -> dict[str, Any]:
    return translator.translate_request(body, SPEC).kwargs


def _fresh(kwargs: dict[str, Any], provider: str) -> bytes:
    model = kwargs["model"].split("/", 1)[1]
    params = {k: v for k, v in kwargs.items() if k not in ("model", "stream", "stream_options")}
    body = transform_request_body(messages=list(kwargs["messages"]), model=model,
                                  optional_params=dict(gemini.optional_params(model, provider, params)),
                                  custom_llm_provider=provider, litellm_params={}, cached_content=None)  # type: ignore[arg-type]
    return translator.json_bytes(body)


@pytest.fixture
def history(monkeypatch: pytest.MonkeyPatch) -> Iterator[ConvertedHistory]:
    kept = ConvertedHistory(8 << 20)
    monkeypatch.setattr(gemini, "HISTORY", kept)
    yield kept


def _same_on_every_turn(bodies: list[dict[str, Any]], provider: str = "gemini") -> None:
    for body in bodies:
        kwargs = _kwargs(body)
        _, _, built = gemini.gemini_body(kwargs, provider)
        assert translator.json_bytes(built) == _fresh(kwargs, provider)


@pytest.mark.parametrize("provider", ["gemini", "vertex_ai"])
def test_a_growing_session_gets_litellms_own_body(history: ConvertedHistory, provider: str) -> None:
    _same_on_every_turn([_synthetic(rounds) for rounds in (0, 1, 2, 5, 6, 9, 9)], provider)
    assert len(history.entries) >= 9   # the rounds were kept, not converted again


def test_a_warm_turn_converts_only_what_is_new(history: ConvertedHistory, monkeypatch: pytest.MonkeyPatch) -> None:
    _same_on_every_turn([_synthetic(12)])
    seen: list[int] = []
    convert = gemini._convert
    monkeypatch.setattr(gemini, "_convert", lambda messages, **kw: seen.append(len(messages)) or convert(messages, **kw))
    _same_on_every_turn([_synthetic(13)])
    # The 13th round alone (its call, the result, the user's words after it); the question after
    # it goes with the rest of the request.
    assert seen == [3]


def test_claude_codes_session_gets_litellms_own_body(history: ConvertedHistory) -> None:
    _same_on_every_turn([_claude_code(rounds) for rounds in (0, 4, 5, 20)])


def test_other_models_and_a_model_change_mid_session(history: ConvertedHistory) -> None:
    _same_on_every_turn([_synthetic(6, model) for model in ("claude-sonnet-4-5", "claude-haiku-4-5",
                                                               "gemini-2.5-pro", "claude-sonnet-4-5")])


def test_images_and_an_edited_history(history: ConvertedHistory) -> None:
    edited = _synthetic(8)
    edited["messages"][5]["content"][0]["content"] = "changed after the fact"
    _same_on_every_turn([_synthetic(8), _synthetic(8, images=(2,)), _synthetic(9, images=(7,)), edited,
                         _synthetic(8)])


def test_a_budget_too_small_to_keep_anything(history: ConvertedHistory) -> None:
    history.resize(600)
    _same_on_every_turn([_synthetic(5), _synthetic(6)])
    assert history.entries and history.held_bytes <= 600
    history.resize(0)
    _same_on_every_turn([_synthetic(6)])
    assert not history.entries


def test_segments_start_at_an_assistant_message_after_another_role() -> None:
    roles = ["user", "assistant", "tool", "tool", "user", "assistant", "assistant", "tool", "assistant"]
    cut = segments([{"role": role} for role in roles])
    assert [[m["role"] for m in segment] for segment in cut] == [
        ["user"], ["assistant", "tool", "tool", "user"], ["assistant", "assistant", "tool"], ["assistant"]]


def test_kept_contents_are_not_changed_by_the_requests_that_use_them(history: ConvertedHistory) -> None:
    _same_on_every_turn([_synthetic(4)])
    before = copy.deepcopy([held.contents for held in history.entries.values()])
    for provider in ("gemini", "vertex_ai"):
        _same_on_every_turn([_synthetic(5)], provider)
    assert [held.contents for held in list(history.entries.values())[:len(before)]] == before


def test_prefix_keys_from_kept_contents_are_the_canonical_ones(history: ConvertedHistory) -> None:
    for rounds in (6, 7, 7):
        _, _, body = gemini.gemini_body(_kwargs(_synthetic(rounds)))
        last = len(body["contents"]) - 1
        keys, sizes = translator.prefixes("tag", "m", body, last)
        assert translator.prefixes("tag", "m", body, last, history.canonical) == (keys, sizes)
        keyed = {0, 2, last}   # only these prefixes are finished into keys
        assert translator.prefixes("tag", "m", body, last, history.canonical, keyed) == (
            [key if n in keyed else "" for n, key in enumerate(keys)], sizes)
    assert sum(data is not None for data in history.written.values()) >= 7   # written once, kept


def test_the_budget_counts_what_is_written_and_eviction_gives_it_back(history: ConvertedHistory) -> None:
    _, _, body = gemini.gemini_body(_kwargs(_synthetic(8)))
    for content in body["contents"]:
        history.canonical(content)
    counted = sum(held.size for held in history.entries.values()) + sum(
        len(data or b"") for data in history.written.values())
    assert history.held_bytes == counted
    history.resize(history.held_bytes // 3)
    assert history.held_bytes == sum(held.size for held in history.entries.values()) + sum(
        len(data or b"") for data in history.written.values()) <= history.max_bytes
    assert len(history.written) == sum(len(held.contents) for held in history.entries.values())
    assert len(history.by_identity) == len(history.entries)


def test_the_translators_kept_turns_are_found_by_identity(history: ConvertedHistory,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    turns = translator.TurnCache(8 << 20)
    for rounds in (10, 11, 11):
        kwargs = translator.translate_request(_synthetic(rounds), SPEC, turn_cache=turns).kwargs
        _, _, built = gemini.gemini_body(kwargs)
        assert translator.json_bytes(built) == _fresh(kwargs, "gemini")
    hashed: list[int] = []
    write = history_module.json_bytes
    monkeypatch.setattr(history_module, "json_bytes", lambda value: hashed.append(1) or write(value))
    kwargs = translator.translate_request(_synthetic(11), SPEC, turn_cache=turns).kwargs
    _, _, built = gemini.gemini_body(kwargs)
    assert translator.json_bytes(built) == _fresh(kwargs, "gemini")
    assert len(hashed) <= 1   # at most the segment whose messages the translator built anew


def test_equal_messages_in_other_objects_are_found_by_their_bytes(history: ConvertedHistory) -> None:
    kwargs = _kwargs(_synthetic(6))
    gemini.gemini_body(kwargs)
    again = copy.deepcopy(kwargs)
    _, _, built = gemini.gemini_body(again)
    assert translator.json_bytes(built) == _fresh(again, "gemini")
    assert len(history.entries) == len(history.by_identity)   # no second entry for the same bytes


def _warm(turns: translator.TurnCache, rounds: int) -> dict[str, Any]:
    """The kwargs of a turn translated with ``turns``, its body built (the history's trail left)."""
    kwargs = translator.translate_request(_synthetic(rounds), SPEC, turn_cache=turns).kwargs
    gemini.gemini_body(kwargs)
    return kwargs


def test_the_next_turn_takes_the_trail_in_one_look(history: ConvertedHistory, monkeypatch: pytest.MonkeyPatch) -> None:
    turns = translator.TurnCache(8 << 20)
    _warm(turns, 10)
    looked: list[int] = []
    converted = ConvertedHistory._converted
    monkeypatch.setattr(ConvertedHistory, "_converted",
                        lambda self, segment, *rest: looked.append(len(segment)) or converted(self, segment, *rest))
    kwargs = translator.translate_request(_synthetic(11), SPEC, turn_cache=turns).kwargs
    _, _, built = gemini.gemini_body(kwargs)
    assert translator.json_bytes(built) == _fresh(kwargs, "gemini")
    assert len(looked) == 1   # the new round alone; the ten before it came with the trail
    assert len(history.trails) == 1


def test_a_trail_is_taken_only_as_far_as_its_messages_are_the_same_objects(history: ConvertedHistory) -> None:
    turns = translator.TurnCache(8 << 20)
    kwargs = _warm(turns, 8)
    messages = kwargs["messages"]
    system = sum(message["role"] == "system" for message in messages)
    (trail,) = history.trails.values()
    variants = []
    for end in trail.ends[:-1]:
        at = system + end
        variants += [messages[:at] + [{"role": "user", "content": "and one more thing"}] + messages[at:],  # no segment begins here now
                     messages[:at] + [copy.deepcopy(messages[at])] + messages[at + 1:],                   # equal, another object
                     messages[:at - 1] + [{"role": "user", "content": "said otherwise"}] + messages[at:]]  # changed before an end
    for variant in variants:
        changed = dict(kwargs, messages=variant)
        _, _, built = gemini.gemini_body(changed)
        assert translator.json_bytes(built) == _fresh(changed, "gemini")
        gemini.gemini_body(kwargs)   # the trail of the original, again


def test_a_trail_whose_segments_were_evicted(history: ConvertedHistory) -> None:
    turns = translator.TurnCache(8 << 20)
    _warm(turns, 9)
    history.resize(history.held_bytes // 2)   # the oldest half: the trail's first segments
    kwargs = translator.translate_request(_synthetic(10), SPEC, turn_cache=turns).kwargs
    _, _, built = gemini.gemini_body(kwargs)
    assert translator.json_bytes(built) == _fresh(kwargs, "gemini")
    history.resize(0)
    _, _, built = gemini.gemini_body(kwargs)
    assert translator.json_bytes(built) == _fresh(kwargs, "gemini") and not history.entries


def _keyed(last: int) -> set[int]:
    return {0, *range(max(0, last - translator.CACHE_LOOKBACK), last + 1)}


def test_prefix_hashes_go_on_from_the_last_turns(history: ConvertedHistory, monkeypatch: pytest.MonkeyPatch) -> None:
    """The keys and sizes are translator.prefixes' own on every turn; a turn after the first hashes only
    from the first prefix it looks up (before it, the contents are the same objects as the last turn's)."""
    turns = translator.TurnCache(8 << 20)
    hashed: list[int] = []
    write = history.canonical
    monkeypatch.setattr(history, "canonical", lambda content: hashed.append(1) or write(content))
    for rounds in (70, 71, 72, 72):
        kwargs = translator.translate_request(_synthetic(rounds), SPEC, turn_cache=turns).kwargs
        _, _, body = gemini.gemini_body(kwargs)
        last = len(body["contents"]) - 1
        hashed.clear()
        assert history.prefixes("tag", "m", body, last, _keyed(last)) == translator.prefixes(
            "tag", "m", body, last, keyed=_keyed(last))
        if rounds > 70:   # the hash resumed at the last turn's first looked-up prefix
            assert len(hashed) <= translator.CACHE_LOOKBACK + 4 < last
    assert len(history.hashes) == 1


def test_prefix_hashes_start_over_where_the_body_differs(history: ConvertedHistory) -> None:
    turns = translator.TurnCache(8 << 20)
    kwargs = translator.translate_request(_synthetic(70), SPEC, turn_cache=turns).kwargs
    _, _, body = gemini.gemini_body(kwargs)
    last = len(body["contents"]) - 1
    history.prefixes("tag", "m", body, last, _keyed(last))
    edited = dict(body, contents=[*body["contents"][:5], copy.deepcopy(body["contents"][5]), *body["contents"][6:]])
    edited["contents"][5]["parts"] = [{"text": "changed"}]
    other_tools = dict(body, tools=[{"functionDeclarations": [{"name": "Other", "description": "x"}]}])
    early = {*_keyed(last), 3}   # a breakpoint before the hash's state: every prefix hashed again
    for changed, keyed in ((body, early), (body, _keyed(last)), (edited, _keyed(last)), (other_tools, _keyed(last)),
                           (body, _keyed(last))):
        assert history.prefixes("tag", "m", changed, last, keyed) == translator.prefixes(
            "tag", "m", changed, last, keyed=keyed)
    history.resize(history.held_bytes // 2)   # an eviction forgets the states
    assert not history.hashes
    assert history.prefixes("tag", "m", body, last, _keyed(last)) == translator.prefixes(
        "tag", "m", body, last, keyed=_keyed(last))


def test_a_resumed_prefix_hash_is_the_whole_ones() -> None:
    _, _, body = gemini.gemini_body(_kwargs(_synthetic(12)))
    last = len(body["contents"]) - 1
    whole_keys, whole_sizes = translator.prefixes("tag", "m", body, last)
    for stop in (1, 5, last):
        keys, sizes, kept = translator.hashed_prefixes("tag", "m", body, last, stop=stop)
        assert (keys, sizes) == (whole_keys, whole_sizes) and kept is not None and kept.through == stop
        keyed = set(range(stop, last + 1)) | {0}
        resumed_keys, resumed_sizes, _ = translator.hashed_prefixes("tag", "m", body, last, keyed=keyed, start=kept)
        assert resumed_sizes == whole_sizes
        assert [resumed_keys[n] for n in sorted(keyed)] == [whole_keys[n] for n in sorted(keyed)]
        assert resumed_keys[1:stop] == [""] * (stop - 1)   # not hashed again
