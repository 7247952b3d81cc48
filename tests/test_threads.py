"""Message threads, the parts below HTTP: the translator's rules, and both thread stores."""
from __future__ import annotations

import asyncio
import logging
import shutil

import pytest

import translator
from service.state import SharedState, redis_client
from service.state.thread_store import CONTINUED, IN_FLIGHT, MISSING, WAS_CONTINUED, LocalThreads, RedisThreads, Threads
from tests.servers import REDIS_SERVER, RedisServer, free_port

SPEC = translator.load_spec()
CREATE = {"type": "create"}
TOOL = {"name": "t", "input_schema": {"type": "object"}}


def cont(message_id: str = "msg_1") -> dict:
    return {"type": "continue", "previous_message_id": message_id}


# -- the translator's rules ------------------------------------------------------------------------

def test_requests_without_thread_have_no_turn():
    assert translator.thread_turn({"model": "m", "messages": []}, SPEC) is None
    assert translator.thread_turn({"thread": None}, SPEC) is None
    assert translator.thread_turn(["not", "a", "body"], SPEC) is None


def test_create_and_continue():
    assert translator.thread_turn({"thread": CREATE, "system": "s", "tools": []}, SPEC) == translator.ThreadTurn()
    turn = translator.thread_turn({"thread": cont("msg_9"), "messages": []}, SPEC)
    assert turn.continues and turn.previous_message_id == "msg_9"


@pytest.mark.parametrize(("thread", "says"), [
    ({"type": "fork"}, "thread: Input tag 'fork'"),
    ({"type": "continue"}, "thread.previous_message_id: Field required"),
    ({"type": "continue", "previous_message_id": ""}, "thread.previous_message_id: String should have at least 1"),
    ({"type": "continue", "previous_message_id": "m" * 257},
     "thread.previous_message_id: String should have at most"),
    ("create", "thread: Input should be a valid dictionary"),
])
def test_a_malformed_thread_is_a_400_naming_it(thread, says):
    with pytest.raises(translator.AnthropicError) as caught:
        translator.thread_turn({"thread": thread, "messages": []}, SPEC)
    assert caught.value.status == 400 and caught.value.message.startswith(says)


def test_a_continue_leaves_the_held_fields_to_the_thread():
    with pytest.raises(translator.AnthropicError) as caught:
        translator.thread_turn({"thread": cont(), "system": "again", "tools": [], "messages": []}, SPEC)
    assert (caught.value.status, caught.value.type, caught.value.details) == (400, "invalid_request_error", None)
    assert caught.value.message.startswith("system, tools: a thread continue takes these")
    with pytest.raises(translator.AnthropicError, match="messages: a thread continue needs the list"):
        translator.thread_turn({"thread": cont()}, SPEC)


def test_an_unsupported_field_is_named_in_the_details():
    body = {"thread": CREATE, "compaction": {"type": "compact_20260112"}, "messages": []}
    with pytest.raises(translator.AnthropicError) as caught:
        translator.thread_turn(body, SPEC)
    error = caught.value.body("req_1")["error"]
    assert error["type"] == "invalid_request_error"
    assert error["details"] == {"error_code": "thread_unsupported_request", "unsupported": ["compaction"]}
    assert "compaction: a compaction request replaces the conversation" in error["message"]
    assert translator.thread_turn({**body, "compaction": None}, SPEC) == translator.ThreadTurn()


@pytest.mark.parametrize(("name", "status", "kind"), [
    (MISSING, 404, "not_found_error"), (WAS_CONTINUED, 400, "invalid_request_error"),
    (IN_FLIGHT, 400, "invalid_request_error")])
def test_store_errors_carry_their_code(name, status, kind):
    error = translator.thread_error(SPEC, name, message_id="msg_x" * 100)
    assert (error.status, error.type, error.details) == (status, kind, {"error_code": name})
    assert "'" + ("msg_x" * 20) + "'" in error.message  # the id, cut to 100 characters


def test_a_continue_is_answered_as_the_whole_conversation_and_kept_with_the_reply():
    create = {"model": "m", "max_tokens": 10, "system": "Be brief.", "tools": [TOOL],
              "thread": CREATE, "messages": [{"role": "user", "content": "one"}]}
    reply = {"id": "msg_1", "content": [{"type": "text", "text": "1"}]}
    held = translator.read_thread(translator.kept_thread(create, reply, SPEC))
    assert held.fields == {"system": "Be brief.", "tools": [TOOL]}
    assert held.messages == [{"role": "user", "content": "one"}, {"role": "assistant", "content": reply["content"]}]

    follow = {"model": "claude-haiku-4-5", "max_tokens": 20, "thread": cont(), "messages": [{"role": "user", "content": "two"}]}
    request = translator.continued_request(held, follow)
    assert request == {"model": "claude-haiku-4-5", "max_tokens": 20, "system": "Be brief.", "tools": [TOOL],
                       "messages": [*held.messages, {"role": "user", "content": "two"}]}
    call = translator.translate_request(request, SPEC)
    assert [m["role"] for m in call.kwargs["messages"]] == ["system", "user", "assistant", "user"]
    empty = translator.read_thread(translator.kept_thread(request, {"id": "msg_2", "content": []}, SPEC))
    assert empty.messages == request["messages"]  # a reply without content adds no message


def test_a_broken_threads_table_is_named(tmp_path):
    spec_dir = tmp_path / "spec"
    shutil.copytree(translator.DEFAULT_SPEC_DIR, spec_dir)
    table = spec_dir / "threads.yaml"
    table.write_text(table.read_text().replace("held_fields: [system, tools]", "held_fields: [system, model]"))
    with pytest.raises(translator.SpecError, match=r"threads.yaml: at held_fields\[1\]: 'model' is not one of"):
        translator.load_spec(spec_dir)


def test_error_details_are_in_the_body_only_when_given():
    assert "details" not in translator.AnthropicError(400, "invalid_request_error", "x").body()["error"]


def test_the_kept_stream_has_its_reply_only_once_complete():
    call = translator.translate_request({"model": "claude-haiku-4-5", "max_tokens": 10, "stream": True,
                                         "messages": [{"role": "user", "content": "hi"}]}, SPEC)
    stream = translator.KeptStreamTranslator(call, SPEC, "msg_k")
    events = stream.start()
    events += stream.feed({"choices": [{"delta": {"content": "Hel"}}]})
    assert stream.reply is None
    events += stream.feed({"choices": [{"delta": {"content": "lo"}, "finish_reason": "stop"}],
                           "usage": {"prompt_tokens": 3, "completion_tokens": 2}})
    assert stream.reply is None
    events += stream.finish()
    assert stream.reply == translator.collect(events)
    assert stream.reply["content"] == [{"type": "text", "text": "Hello"}]


# -- the stores ------------------------------------------------------------------------------------

class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _rules(store, clock=None) -> None:
    """The rules every store keeps: held once, continued once, a failed turn frees the reply."""
    await store.put("msg_a", b"thread-a", None, None)
    assert await store.begin("msg_none", "h0", 60) == (MISSING, b"")
    assert await store.begin("msg_a", "h1", 60) == ("held", b"thread-a")
    assert await store.begin("msg_a", "h2", 60) == (IN_FLIGHT, b"")
    assert await store.peek("msg_a") == ("found", b"thread-a")
    await store.release("msg_a", "h2")             # not its hold: nothing changes
    assert await store.begin("msg_a", "h3", 60) == (IN_FLIGHT, b"")
    await store.release("msg_a", "h1")             # the turn failed
    assert await store.begin("msg_a", "h4", 60) == ("held", b"thread-a")
    await store.put("msg_b", b"thread-b", "msg_a", "h4")
    assert await store.begin("msg_a", "h5", 60) == (WAS_CONTINUED, b"")
    assert await store.peek("msg_a") == (WAS_CONTINUED, b"")
    assert await store.begin("msg_b", "h6", 60) == ("held", b"thread-b")


def test_local_rules():
    asyncio.run(_rules(LocalThreads(300, 10_000)))


def test_local_expiry_and_holds_follow_the_clock():
    async def scenario():
        clock = Clock()
        store = LocalThreads(300, 10_000, clock)
        await store.put("msg_a", b"a", None, None)
        assert await store.begin("msg_a", "h1", 60) == ("held", b"a")
        clock.now += 61                             # a hold whose turn never ended runs out
        assert await store.begin("msg_a", "h2", 60) == ("held", b"a")
        clock.now += 238                            # 299 s after it was stored
        assert (await store.peek("msg_a"))[0] == "found"
        clock.now += 1
        assert await store.peek("msg_a") == (MISSING, b"")
        assert store.size == 0
    asyncio.run(scenario())


def test_local_store_is_bounded_by_bytes_oldest_first():
    async def scenario():
        entry = 100 + 5 + 1000                      # ENTRY_OVERHEAD + id + thread
        store = LocalThreads(300, 2 * entry)
        for name in ("msg_1", "msg_2", "msg_3"):
            await store.put(name, b"x" * 1000, None, None)
        assert [await store.peek(n) for n in ("msg_1", "msg_2", "msg_3")] == \
            [(MISSING, b""), ("found", b"x" * 1000), ("found", b"x" * 1000)]
        assert store.size == 2 * entry
        await store.put("msg_4", b"y" * 5000, "msg_3", None)  # too large to keep: only the mark is stored
        assert await store.peek("msg_4") == (MISSING, b"")
        assert await store.peek("msg_3") == (WAS_CONTINUED, b"")
        assert store.size <= 2 * entry
    asyncio.run(scenario())


needs_redis = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")


@pytest.fixture(scope="module")
def redis_url():
    server = RedisServer().start()
    yield server.url
    server.stop()


@needs_redis
def test_redis_rules_and_expiry(redis_url):
    async def scenario():
        client = redis_client(redis_url)
        try:
            await client.flushdb()
            await _rules(RedisThreads(client, 300, 10_000))
            ttl = await client.pttl("anthropic-proxy:thread:msg_b")
            assert 299_000 < ttl <= 300_000          # expiry restarts with each stored reply
            assert await client.get("anthropic-proxy:thread:msg_a") == CONTINUED
            assert 0 < await client.pttl("anthropic-proxy:thread:msg_b:held") <= 60_000
            assert await client.exists("anthropic-proxy:thread:msg_a:held") == 0
        finally:
            await client.aclose()
    asyncio.run(scenario())


@needs_redis
def test_redis_holds_one_turn_of_many_at_once(redis_url):
    async def scenario():
        clients = [redis_client(redis_url) for _ in range(8)]
        try:
            stores = [RedisThreads(c, 300, 10_000) for c in clients]
            await stores[0].put("msg_race", b"t", None, None)
            answers = await asyncio.gather(*(s.begin("msg_race", f"h{i}", 60) for i, s in enumerate(stores)))
            assert sorted(state for state, _ in answers) == ["held"] + [IN_FLIGHT] * 7
        finally:
            for c in clients:
                await c.aclose()
    asyncio.run(scenario())


@needs_redis
def test_a_thread_too_large_for_redis_is_not_kept(redis_url):
    async def scenario():
        client = redis_client(redis_url)
        try:
            store = RedisThreads(client, 300, 100)
            await store.put("msg_big", b"z" * 101, None, None)
            assert await store.peek("msg_big") == (MISSING, b"")
        finally:
            await client.aclose()
    asyncio.run(scenario())


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_an_unreachable_redis_is_said_once_and_the_process_serves():
    async def scenario():
        clock = Clock()
        state = SharedState(f"redis://127.0.0.1:{free_port()}/0", clock)
        threads = Threads(state, LocalThreads(300, 10_000, clock), RedisThreads(state.client, 300, 10_000))
        records = Records()
        logging.getLogger("proxy").addHandler(records)
        try:
            store, _ = await threads.run("put", "msg_a", b"a", None, None)
            assert store is threads.local
            store, answer = await threads.run("begin", "msg_a", "h1", 60)
            assert store is threads.local and answer == ("held", b"a")
            clock.now += 10                         # Redis is tried again, and fails again
            store, answer = await threads.run("peek", "msg_a")
            assert store is threads.local and answer == ("found", b"a")
        finally:
            logging.getLogger("proxy").removeHandler(records)
            await state.close()
        assert len(records.lines) == 1 and "is unreachable (ConnectionError" in records.lines[0], records.lines
    asyncio.run(scenario())
