"""The turn memo (``translator.TurnCache``, ``turn_cache=``): a session translated turn after turn with one
cache gives, byte for byte, the calls a translation without it gives, and refuses what it refuses with
the same message; whatever changes between turns (tools, model, an edited message, cleared system
messages, images, eviction)."""
from __future__ import annotations

import base64
import copy
import hashlib
import threading
from typing import Any, Callable

import pytest

import translator
from bench import big_turn
from service.engines.litellm_adapter import gemini_body

SPEC = translator.load_spec(translator.DEFAULT_SPEC_DIR)
MODELS = ("gemini-2.5-pro", "gemini-2.5-flash")
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 64).decode()


def _tagged(signature: str, model: str) -> str:
    """A signature as the proxy tags it for ``model`` (translator/signatures.py: only that model gets it back)."""
    tag = base64.urlsafe_b64encode(hashlib.sha256(model.encode()).hexdigest().encode()).decode().rstrip("=")[:8]
    return f"{tag}:{signature}"


def _tool(name: str) -> dict[str, Any]:
    return {"name": name, "description": f"The {name} tool.",
            "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}


def _round(n: int, model: str = MODELS[0]) -> list[dict[str, Any]]:
    """An assistant turn (thinking carrying a signature, text, two parallel calls) and its results."""
    first = translator.encode_tool_id(f"call-{n}-a", _tagged(f"sig{n}", model), f"f{n}")
    second = translator.encode_tool_id(f"call-{n}-b", None, f"g{n}")
    return [
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": f"Round {n}.", "signature": "gm1:" + _tagged(f"think{n}", model)},
            {"type": "text", "text": f"Reading file_{n}."},
            {"type": "tool_use", "id": first, "name": "Read", "input": {"path": f"/src/file_{n}.py", "n": n}},
            {"type": "tool_use", "id": second, "name": "9lives", "input": {"path": f"/src/other_{n}.py"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": second, "content": [{"type": "text", "text": f"other {n}"}]},
            {"type": "tool_result", "tool_use_id": first, "content": f"{n}\tdef f_{n}(): return 'é'\n" * 5,
             "is_error": n % 3 == 0}]},
    ]


def _session(rounds: int, model: str = MODELS[0]) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Fix the handlers."}]
    for n in range(rounds):
        messages += _round(n, model)
    messages.append({"role": "user", "content": [{"type": "text", "text": "Now run the tests."}]})
    return {"model": model, "max_tokens": 4096, "stream": True, "system": "You are a coding agent.",
            "thinking": {"type": "adaptive"}, "tools": [_tool("Read"), _tool("9lives"), _tool("Bash")],
            "messages": messages}


def _fields(call: translator.UpstreamCall) -> tuple:
    return (translator.json_bytes(call.kwargs), call.route, call.stream, call.tools, call.max_tokens,
            call.stop_sequences)


def _same(body: dict[str, Any], cache: translator.TurnCache, **options: Any) -> translator.UpstreamCall | None:
    """Translate ``body`` without a cache and with ``cache``: the same call, or the same refusal."""
    translate: Callable[..., translator.UpstreamCall] = translator.translate_call
    try:
        fresh = translate(copy.deepcopy(body), SPEC, **options)
    except translator.AnthropicError as refused:
        with pytest.raises(translator.AnthropicError) as again:
            translate(body, SPEC, turn_cache=cache, **options)
        assert (again.value.status, again.value.type, again.value.message) == \
            (refused.status, refused.type, refused.message)
        return None
    memoised = translate(body, SPEC, turn_cache=cache, **options)
    assert _fields(memoised) == _fields(fresh)
    return memoised


def test_a_growing_session_is_translated_the_same_and_from_memory() -> None:
    cache = translator.TurnCache(32 << 20)
    previous = None
    for rounds in range(8):
        call = _same(_session(rounds), cache)
        assert call is not None and call.tools.aliases  # "9lives" is renamed for Gemini
        if previous is not None and rounds > 1:  # the history's turns are the very messages kept before
            assert call.kwargs["messages"][2] is previous.kwargs["messages"][2]
        previous = call
    assert 0 < cache.size <= cache.max_bytes and len(cache) > 8


def test_tools_added_and_removed_mid_session() -> None:
    cache = translator.TurnCache(32 << 20)
    body = _session(4)
    _same(body, cache)
    body["tools"] = [_tool("Read"), _tool("9lives")]                     # Bash gone
    _same(body, cache)
    body["tools"].append(_tool("Grep"))
    _same(body, cache)
    body["tools"] = [_tool("Read"), _tool("9lives"), _tool("Grep"), _tool("x" * 70)]  # refused: a bad name
    assert _same(body, cache) is None
    body["tools"] = [_tool("Read"), _tool("9lives"), _tool("Grep")]
    body["tools"].append(_tool("t_9lives"))           # takes 9lives' alias: its calls in history get another
    call = _same(body, cache)
    assert call is not None and call.tools.to_gemini("9lives").startswith("t_9lives_")
    changes = {"role": "system", "content": [
        {"type": "tool_removal", "tool": {"type": "tool_reference", "name": "Grep"}}]}
    body["messages"].insert(5, changes)                                   # a mid-conversation tool change
    _same(body, cache)
    body["messages"].insert(-1, {"role": "system", "content": [
        {"type": "tool_addition", "tool": {"type": "tool_reference", "name": "Grep"}}]})
    _same(body, cache)


def test_another_model_gets_only_its_own_signatures() -> None:
    cache = translator.TurnCache(32 << 20)
    body = _session(5)
    first = _same(body, cache)
    second = _same({**body, "model": MODELS[1]}, cache)
    assert first is not None and second is not None
    # The memo is keyed by the signer: the other model's turns lack the first one's signatures.
    assert first.kwargs["messages"][2] != second.kwargs["messages"][2]
    _same(body, cache)
    _same(_session(5, MODELS[1]), cache)


def test_edited_cleared_and_moved_messages() -> None:
    cache = translator.TurnCache(32 << 20)
    body = _session(6)
    _same(body, cache)
    body["messages"][6]["content"][1]["content"] = "edited output"       # a tool result in the middle
    _same(body, cache)
    body["messages"][3]["content"][1]["text"] = "Edited text."            # an assistant turn in the middle
    _same(body, cache)
    body["messages"][5]["content"][0]["cache_control"] = {"type": "ephemeral"}
    _same(body, cache)
    note = {"role": "system", "content": "Be brief.", "clear_at": "next_user_message"}
    body["messages"].insert(4, note)                     # cleared: a later user message exists
    body["messages"].append({"role": "system", "content": "Only this turn.", "clear_at": "next_user_message"})
    _same(body, cache)
    body["messages"].append({"role": "assistant", "content": "Running them."})
    body["messages"].append({"role": "user", "content": "Go on."})       # now the last note is cleared too
    _same(body, cache)
    body["messages"].insert(3, {"role": "user", "content": "An extra user message merged into a turn."})
    _same(body, cache)


def test_a_left_out_system_message_merges_the_turns_around_it() -> None:
    """An empty system message (only an output_config) is left out: the assistant messages around it are
    one turn, which neither may be kept as."""
    cache = translator.TurnCache(32 << 20)
    body = _session(2)
    body["messages"][-1:] = [
        {"role": "user", "content": "Explain."}, {"role": "assistant", "content": "First part."},
        {"role": "system", "content": "", "output_config": {"effort": "low"}},
        {"role": "assistant", "content": "Second part."}, {"role": "user", "content": "Thanks."}]
    for _ in range(3):
        call = _same(body, cache)
        assert call is not None and call.kwargs["messages"][-2]["content"] == "First part.\n\nSecond part."
    body["messages"][-3]["content"] = "Shown between them."               # now three turns
    _same(body, cache)
    body["messages"][-3:] = [{"role": "system", "content": "", "output_config": {"effort": "low"}}]
    cache = translator.TurnCache(32 << 20)
    _same(body, cache)                                                    # "First part." then a left-out one:
    body["messages"] += [{"role": "assistant", "content": "Second part."}, {"role": "user", "content": "Ok."}]
    call = _same(body, cache)                                             # the next merges with it
    assert call is not None and call.kwargs["messages"][-2]["content"] == "First part.\n\nSecond part."


def test_equal_messages_are_found_whatever_objects_hold_them() -> None:
    cache = translator.TurnCache(32 << 20)
    body = _session(3)
    shared = "the same string object, twice in one message"
    body["messages"][3]["content"][1]["text"] = shared
    body["messages"][3]["content"][0]["thinking"] = shared
    first = _same(body, cache)
    second = _same(translator.decode_json(translator.json_bytes(body)), cache)  # equal, no object shared
    assert first is not None and second is not None
    assert second.kwargs["messages"][3] is first.kwargs["messages"][3]


def test_images_and_the_media_budget() -> None:
    cache = translator.TurnCache(32 << 20)
    body = _session(4)
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}
    body["messages"][2]["content"].append({"type": "text", "text": "See the screenshot."})
    body["messages"][2]["content"].append(image)
    body["messages"][4]["content"][0]["content"].append(image)          # inside a tool_result
    _same(body, cache)
    _same(body, cache)
    _same(body, cache, limits={"media_per_request": 1})                   # the second image is refused
    _same(body, cache, limits={"media_per_request": 2})
    del body["messages"][4]["content"][0]["content"][-1]
    _same(body, cache, limits={"media_per_request": 1})
    _same(body, cache, limits={"media_per_request": 1})                   # its image turn is not kept ...
    body["messages"][6]["content"].append({"type": "text", "text": "And this one."})
    body["messages"][6]["content"].append(image)
    assert _same(body, cache, limits={"media_per_request": 1}) is None    # ... so the second one is counted
    del body["messages"][6]["content"][-2:]
    body["messages"][-1:] = _round(4)
    _same(body, cache, limits={"media_per_request": 1})
    body["messages"] += [{"role": "assistant", "content": "Done."},
                         {"role": "user", "content": [{"type": "text", "text": "And now?"}, image]}]
    assert _same(body, cache, limits={"media_per_request": 1}) is None    # after the leading turns, too


def test_eviction_under_a_tiny_budget() -> None:
    cache = translator.TurnCache(3000)
    for rounds in (3, 4, 5, 5, 6, 2, 6):
        _same(_session(rounds), cache)
        assert cache.size <= 3000
    assert len(cache) > 0
    lone = translator.TurnCache(1)                                        # every turn is larger than the cache
    _same(_session(3), lone)
    assert len(lone) == 0


def test_count_tokens_and_fallbacks_take_the_cache() -> None:
    cache = translator.TurnCache(32 << 20)
    body = {k: v for k, v in _session(3).items() if k not in ("max_tokens", "stream")}
    for _ in range(2):
        fresh = translator.translate_count_tokens(copy.deepcopy(body), SPEC)
        assert _fields(translator.translate_count_tokens(body, SPEC, turn_cache=cache)) == _fields(fresh)
    body = {**_session(3), "fallbacks": [{"model": MODELS[1]}]}
    call = _same(body, cache)
    assert call is not None
    hops = translator.plan_fallbacks(body, SPEC, call=call, turn_cache=cache)
    fresh_hops = translator.plan_fallbacks(copy.deepcopy(body), SPEC, call=call)
    assert [_fields(h.call) for h in hops] == [_fields(h.call) for h in fresh_hops]


def test_refusals_are_the_same_with_a_warm_cache() -> None:
    cache = translator.TurnCache(32 << 20)
    base = _session(5)
    _same(base, cache)
    _same(base, cache)

    def variant(change: Callable[[list[dict[str, Any]]], None]) -> dict[str, Any]:
        body = copy.deepcopy(base)
        change(body["messages"])
        return body

    cases = [
        lambda m: m[5]["content"].pop(),                                  # a tool_use left without its result
        lambda m: m[5]["content"].pop(2),                                 # a tool_result without its tool_use
        lambda m: m[6]["content"].append({"type": "tool_result", "tool_use_id": "toolu_nothere", "content": "x"}),
        lambda m: m[6]["content"].append({"type": "mystery", "text": "x"}),   # a bad block between cached turns
        lambda m: m[6]["content"].append({"type": "text", "text": 5}),
        lambda m: m[4]["content"].__setitem__(1, {"type": "text", "text": ["a"]}),
        lambda m: m[7].__setitem__("role", "narrator"),                   # a bad role after cached turns
        lambda m: m[-2]["content"].pop(),                                 # a result missing after the chain
        lambda m: (m[2]["content"].pop(), m[9].__setitem__("role", "narrator")),  # two faults: the first wins
        lambda m: m[3].__setitem__("clear_at", "never"),                  # a system-only field on a cached turn
        lambda m: m.insert(3, {"role": "assistant", "content": "Two assistant turns in a row."}),
        lambda m: m.__setitem__(slice(1, None), [{"role": "assistant", "content": []}]),  # nothing to send
        lambda m: m.__setitem__(slice(len(m) - 1, None), []),             # ends on tool results: accepted
        lambda m: m.__setitem__(slice(len(m) - 2, None), []),             # ends on tool calls: refused
    ]
    for change in cases:
        _same(variant(change), cache)
    _same(variant(lambda m: m.append({"role": "user", "content": [{"type": "text"}]})), cache)


def test_a_kept_chain_ending_on_tool_calls() -> None:
    """The leading turns come back whole (a chain); what they leave pending is answered, or refused naming
    the turn that asked, as without the cache."""
    cache = translator.TurnCache(32 << 20)
    body = _session(4)
    body["messages"][-1:] = _round(4)[:1]                                 # ends on the assistant's calls
    _same(body, cache)
    asked = copy.deepcopy(body)
    asked["messages"].append({"role": "user", "content": "Never mind those."})
    _same(asked, cache)                                                   # refused: messages.9 asked
    answered = copy.deepcopy(body)
    answered["messages"] += _round(4)[1:] + [{"role": "user", "content": "Go on."}]
    call = _same(answered, cache)
    again = _same(answered, cache)
    assert call is not None and again is not None and again.kwargs["messages"][-2] is call.kwargs["messages"][-2]
    answered["messages"] += _round(5) + [{"role": "user", "content": "And again."}]
    _same(answered, cache)
    _same(answered, cache, limits={"media_per_request": 3})               # another context: no chain found


def _chains(cache: translator.TurnCache) -> int:
    """How many chains of leading turns the cache holds (white-box: under keys that begin with "chain",
    the chains of the conversations opening with one first message)."""
    return len(_kept_chains(cache))


def test_claude_codes_sessions_open_with_a_system_message() -> None:
    """Claude Code sends its agent list as a system message after the first user message: the chain of
    leading turns holds it, whether it is cleared or not."""
    cache = translator.TurnCache(32 << 20)
    for clear_at in (None, "next_user_message"):
        previous = None
        for rounds in range(1, 7):
            body = _session(rounds)
            note: dict[str, Any] = {"role": "system", "content": "Available agent types: claude."}
            if clear_at:
                note["clear_at"] = clear_at
            body["messages"].insert(1, note)
            call = _same(body, cache)
            assert call is not None
            if previous is not None:
                assert call.kwargs["messages"][1] is previous.kwargs["messages"][1]
            previous = call
    assert _chains(cache) == 2  # one per session: each longer chain replaced the one it was found from


def test_a_chain_knows_which_system_messages_were_cleared() -> None:
    cache = translator.TurnCache(32 << 20)
    body = _session(2)
    body["messages"][-1:] = [{"role": "assistant", "content": "Reading."},
                             {"role": "system", "content": "Just this turn.", "clear_at": "next_user_message"},
                             {"role": "assistant", "content": "Read."}]
    _same(body, cache)                                                    # shown: no user message after it
    _same(body, cache)
    body["messages"].append({"role": "user", "content": "Next."})        # now cleared, and the turns merge
    call = _same(body, cache)
    assert call is not None and call.kwargs["messages"][-2]["content"] == "Reading.\n\nRead."


def test_non_json_values_are_never_taken_for_json_ones() -> None:
    """A Python caller's tuple is not the list it serialises as (marshal tells them apart)."""
    cache = translator.TurnCache(32 << 20)
    body = _session(3)
    _same(body, cache)
    tupled = copy.deepcopy(body)
    tupled["messages"][2]["content"][0]["content"] = tuple(tupled["messages"][2]["content"][0]["content"])
    _same(tupled, cache)

    class Text(str):
        pass

    subclassed = copy.deepcopy(body)
    subclassed["messages"][3]["content"][1]["text"] = Text("Reading file_1.")
    _same(subclassed, cache)


def test_litellm_leaves_the_kept_messages_unchanged() -> None:
    cache = translator.TurnCache(32 << 20)
    body = _session(4)
    call = _same(body, cache)
    assert call is not None
    before = translator.json_bytes(call.kwargs)
    gemini_body({**call.kwargs, "model": "gemini/" + MODELS[0]})
    assert translator.json_bytes(call.kwargs) == before
    _same(body, cache)


def test_threads_share_one_cache() -> None:
    cache = translator.TurnCache(20_000)
    failures: list[BaseException] = []

    def work(model: str) -> None:
        try:
            for rounds in range(2, 9):
                _same(_session(rounds, model), cache)
        except BaseException as failure:  # noqa: BLE001 - reported by the main thread
            failures.append(failure)

    threads = [threading.Thread(target=work, args=(MODELS[n % 2],)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and cache.size <= 20_000


def test_another_spec_empties_the_cache() -> None:
    cache = translator.TurnCache(32 << 20)
    _same(_session(3), cache)
    other = translator.load_spec(translator.DEFAULT_SPEC_DIR)
    kept = len(cache)
    call = translator.translate_call(_session(3), other, turn_cache=cache)
    assert _fields(call) == _fields(translator.translate_call(_session(3), other))
    assert 0 < len(cache) <= kept


@pytest.mark.skipif(not big_turn.FIXTURE.exists(), reason="the Claude Code fixtures are not here")
def test_grown_claude_code_sessions() -> None:
    cache = translator.TurnCache(32 << 20)
    for rounds in (0, 1, 2, 5, 6, 30, 31, 31):
        body = big_turn.grown(rounds)
        _same(body, cache)
        _same({**body, "model": MODELS[1]}, cache)
    body = big_turn.grown(31)
    body["messages"][11]["content"][1]["input"]["file_path"] = "/elsewhere.py"
    _same(body, cache)
    tiny = translator.TurnCache(20_000)
    for rounds in (5, 6, 7, 30):
        _same(big_turn.grown(rounds), tiny)


def test_the_service_sizes_its_cache_from_history_cache_mb() -> None:
    from service import reload
    from service.config import load_settings
    from service.engines.litellm_adapter import HISTORY

    assert (cache := reload.history_caches(load_settings({}, None))) is not None and cache.max_bytes == 32 << 20
    assert (cache := reload.history_caches(load_settings({"HISTORY_CACHE_MB": "3"}, None))) is not None
    assert cache.max_bytes == 3 << 20 == HISTORY.max_bytes   # LiteLLM's history cache is sized with it
    assert reload.history_caches(load_settings({"HISTORY_CACHE_MB": "0"}, None)) is None
    assert HISTORY.max_bytes == 0
    reload.history_caches(load_settings({}, None))   # as the other tests' proxies have it
    with pytest.raises(ValueError, match="HISTORY_CACHE_MB must not be negative"):
        load_settings({"HISTORY_CACHE_MB": "-1"}, None)


def test_every_byte_of_a_kept_chain_counts() -> None:
    """A change in the very last value of a kept chain's last message (the last call's input), or at the
    start of the first message, is a different chain, even when the bytes keep their length."""
    cache = translator.TurnCache(32 << 20)
    for rounds in (4, 5):
        _same(_session(rounds), cache)
    last_call = _session(5)   # the chain ends after this turn; each edit keeps the bytes' length
    last_call["messages"][-3]["content"][-1]["input"]["path"] = "/src/other_4.pz"
    first = _session(5)
    first["messages"][0]["content"] = "Mix the handlers."
    for body in (last_call, first):
        _same(body, cache)


def _kept_chains(cache: translator.TurnCache) -> list[Any]:
    return [chain for key, (kept, _) in cache._entries.items() if key[0] == "chain" for chain in kept]  # type: ignore[union-attr]


def test_conversations_that_open_alike_keep_a_chain_each() -> None:
    """Sessions opening with the same first message, served in turn, each find their own chain (up to
    TurnCache.FORKS of them); a fifth takes the place of the one least recently kept."""
    FORKS = translator.TurnCache.FORKS
    cache = translator.TurnCache(32 << 20)
    openings = [f"Then look at part {n}." for n in range(FORKS + 1)]

    def turn(fork: str, rounds: int) -> dict[str, Any]:
        body = _session(rounds)
        body["messages"][1:1] = [{"role": "assistant", "content": "Where?"}, {"role": "user", "content": fork}]
        return body

    previous: dict[str, translator.UpstreamCall] = {}
    for rounds in (2, 3, 4):
        for fork in openings[:FORKS]:
            call = _same(turn(fork, rounds), cache)
            assert call is not None
            if fork in previous:   # the leading turns came from this session's own chain
                assert call.kwargs["messages"][3] is previous[fork].kwargs["messages"][3]
            previous[fork] = call
    assert len(_kept_chains(cache)) == FORKS
    _same(turn(openings[FORKS], 2), cache)
    assert len(_kept_chains(cache)) == FORKS


def test_a_chain_is_taken_only_where_a_turn_of_the_request_begins() -> None:
    """The same leading messages, followed by one of the role their last turn has: that turn is longer
    now, and the chain (which ends inside it) is not used."""
    cache = translator.TurnCache(32 << 20)
    for rounds in (3, 4):
        _same(_session(rounds), cache)
    (chain,) = _kept_chains(cache)
    longer = _session(4)
    role = longer["messages"][chain.end - 1]["role"]
    content: Any = ("More about it." if role == "assistant"
                    else [{"type": "text", "text": "And the logs say nothing."}])
    longer["messages"].insert(chain.end, {"role": role, "content": content})
    _same(longer, cache)
    _same(_session(5), cache)
