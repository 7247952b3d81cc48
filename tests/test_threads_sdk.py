"""Message threads through the real Anthropic Python SDK, the proxy and the strict fake Gemini;
across replicas through a real Redis."""
from __future__ import annotations

import json

import anthropic
import pytest
from anthropic import beta_tool
from anthropic.types import (ThreadAlreadyContinuedError, ThreadContinueInFlightError, ThreadNotFoundError,
                             ThreadUnsupportedRequestError)

from tests.conftest import proxy_env
from tests.servers import REDIS_SERVER, HypercornProcess, RedisServer

BETA = "message-threads-2026-08-12"
HAIKU = "claude-haiku-4-5"                  # → gemini-3.8-flash
SONNET = "claude-sonnet-5"                  # → gemini-3.1-pro-preview: thought signatures required


class Sent:
    """What the SDK sent (request bodies) and what came back (statuses), as seen on its HTTP client."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.statuses: list[int] = []

    def client(self, url: str) -> anthropic.Anthropic:
        hooks = {"request": [lambda r: self.bodies.append(json.loads(r.content))],
                 "response": [lambda r: self.statuses.append(r.status_code)]}
        return anthropic.Anthropic(base_url=url, api_key="sk-test", max_retries=0,
                                   http_client=anthropic.DefaultHttpxClient(event_hooks=hooks))


@pytest.fixture
def sent() -> Sent:
    return Sent()


@pytest.fixture
def client(proxy, sent):
    return sent.client(proxy.url)


def cont(message_id: str) -> dict:
    return {"type": "continue", "previous_message_id": message_id}


def create(client, messages, **fields):
    fields.setdefault("thread", {"type": "create"})
    return client.beta.messages.create(model=HAIKU, max_tokens=200, messages=messages, betas=[BETA], **fields)


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def conversation(record: dict) -> list[tuple[str, str]]:
    """A Gemini request's turns as (role, what each part is), text parts by their text."""
    return [(turn["role"], " + ".join(part.get("text") or next(k for k in part if k != "thoughtSignature")
                                      for part in turn["parts"]))
            for turn in record["normalized"]["contents"]]


@beta_tool
def get_weather(city: str) -> str:
    """The weather in a city.

    Args:
        city: the city's name.
    """
    return f"Sunny in {city}."


@pytest.mark.parametrize("stream", [False, True])
def test_the_tool_runner_with_its_defaults(client, sent, gemini, stream):
    gemini.enqueue({"text": "Let me check.", "tool_calls": [("get_weather", {"city": "Paris"})]},
                   {"text": "It is sunny in Paris."})
    runner = client.beta.messages.tool_runner(model=SONNET, max_tokens=1000, tools=[get_weather], stream=stream,
                                              messages=[user("What is the weather in Paris?")])
    replies = [item.get_final_message() if stream else item for item in runner]
    assert [r.stop_reason for r in replies] == ["tool_use", "end_turn"]
    assert replies[-1].content[-1].text == "It is sunny in Paris."

    create_body, continue_body = sent.bodies
    assert create_body["thread"] == {"type": "create"} and create_body["tools"][0]["name"] == "get_weather"
    assert continue_body["thread"] == cont(replies[0].id) and "tools" not in continue_body
    assert [block["type"] for m in continue_body["messages"] for block in m["content"]] == ["tool_result"]
    last = gemini.requests[-1]
    assert last["status"] == 200 and not last["used_dummy_signature"]   # the signature came back through the thread
    assert conversation(last) == [("user", "What is the weather in Paris?"),
                                  ("model", "Let me check. + functionCall"), ("user", "functionResponse")]
    assert "thoughtSignature" in last["normalized"]["contents"][1]["parts"][-1]
    assert last["normalized"]["tools"][0]["functionDeclarations"][0]["name"] == "get_weather"


@pytest.mark.parametrize("stream", [False, True])
def test_a_thread_continued_with_text(client, sent, gemini, stream):
    gemini.enqueue({"text": "First answer."}, {"text": "Second answer."})
    thread = client.beta.messages.thread(model=HAIKU, max_tokens=200, system="Be brief.")

    def turn(text: str):
        if not stream:
            return thread.send(user(text))
        with thread.stream(user(text)) as events:
            return events.get_final_message()

    one, two = turn("Question one?"), turn("Question two?")
    assert two.content[0].text == "Second answer."
    assert sent.bodies[1]["thread"] == cont(one.id)
    assert sent.bodies[1]["messages"] == [user("Question two?")] and "system" not in sent.bodies[1]
    last = gemini.requests[-1]
    assert conversation(last) == [("user", "Question one?"), ("model", "First answer."), ("user", "Question two?")]
    assert last["normalized"]["systemInstruction"]["parts"][0]["text"] == "Be brief."


def test_an_unknown_thread_is_not_found(client):
    with pytest.raises(ThreadNotFoundError) as caught:
        create(client, [user("hi")], thread=cont("msg_unknown"))
    assert caught.value.status_code == 404
    assert caught.value.body["error"]["details"] == {"error_code": "thread_not_found"}
    assert "'msg_unknown'" in caught.value.body["error"]["message"]


def test_a_lost_thread_is_recovered_by_the_replay(make_proxy, sent, gemini):
    # Room for one thread: storing the second drops the first, as expiry would.
    client = sent.client(make_proxy(THREAD_STORE_MAX_BYTES="3000").url)
    gemini.enqueue({"text": "A."}, {"text": "B."}, {"text": "A again."})
    first = client.beta.messages.thread(model=HAIKU, max_tokens=200)
    first.send(user("a" * 2000))
    client.beta.messages.thread(model=HAIKU, max_tokens=200).send(user("b" * 2000))
    reply = first.send(user("And now?"))
    assert reply.content[0].text == "A again."
    assert sent.statuses == [200, 200, 404, 200]
    assert sent.bodies[2]["thread"]["type"] == "continue" and sent.bodies[3]["thread"] == {"type": "create"}
    assert conversation(gemini.requests[-1]) == [("user", "a" * 2000), ("model", "A."), ("user", "And now?")]


def test_a_reply_is_continued_once(client, gemini):
    first = create(client, [user("one")])
    second = create(client, [user("two")], thread=cont(first.id))
    with pytest.raises(ThreadAlreadyContinuedError) as caught:
        create(client, [user("two, again")], thread=cont(first.id))
    assert caught.value.status_code == 400
    assert caught.value.body["error"]["details"] == {"error_code": "thread_already_continued"}
    create(client, [user("three")], thread=cont(second.id))
    assert [turn[0] for turn in conversation(gemini.requests[-1])] == ["user", "model"] * 2 + ["user"]


def test_a_continue_in_flight_and_a_stream_that_fails(make_proxy, sent, gemini):
    client = sent.client(make_proxy(STREAM_GRACE_SECONDS="0.2", FIRST_BYTE_TIMEOUT_SECONDS="1").url)
    first = create(client, [user("one")])
    gemini.enqueue({"hang": True})
    events = iter(create(client, [user("two")], thread=cont(first.id), stream=True))
    failed_id = next(events).message.id                       # the answer has begun, and holds `first`
    with pytest.raises(ThreadContinueInFlightError) as caught:
        create(client, [user("two, meanwhile")], thread=cont(first.id))
    assert caught.value.body["error"]["details"] == {"error_code": "thread_continue_in_flight"}
    with pytest.raises(anthropic.APIStatusError, match="did not answer in time"):
        list(events)                                          # Gemini never answered: an error event
    with pytest.raises(ThreadNotFoundError):
        create(client, [user("three")], thread=cont(failed_id))   # the failed turn kept nothing
    gemini.enqueue({"text": "Two, at last."})
    create(client, [user("two, again")], thread=cont(first.id))   # and no longer holds `first`
    assert conversation(gemini.requests[-1]) == [("user", "one"), ("model", "Hello from the fake Gemini."),
                                                 ("user", "two, again")]


def test_a_stream_cut_after_its_content_began_keeps_nothing(client, gemini):
    first = create(client, [user("one")])
    gemini.enqueue({"text": "A long answer, cut short.", "text_chunks": 4, "cut_after_chunks": 2})
    events = create(client, [user("two")], thread=cont(first.id), stream=True)
    with pytest.raises(anthropic.APIStatusError):
        list(events)
    create(client, [user("two, again")], thread=cont(first.id))
    assert conversation(gemini.requests[-1])[-1] == ("user", "two, again")


def test_count_tokens_counts_the_whole_thread(client):
    first = create(client, [user("one")], system="Be brief.")
    threaded = client.beta.messages.count_tokens(model=HAIKU, messages=[user("two")],
                                                 extra_body={"thread": cont(first.id)})
    whole = client.beta.messages.count_tokens(
        model=HAIKU, system="Be brief.",
        messages=[user("one"), {"role": "assistant", "content": first.content}, user("two")])
    alone = client.beta.messages.count_tokens(model=HAIKU, messages=[user("two")])
    assert threaded.input_tokens == whole.input_tokens > alone.input_tokens
    with pytest.raises(ThreadNotFoundError):
        client.beta.messages.count_tokens(model=HAIKU, messages=[user("two")], extra_body={"thread": cont("msg_no")})


def test_what_a_thread_cannot_hold(client):
    with pytest.raises(ThreadUnsupportedRequestError) as caught:
        create(client, [user("one")], compaction={"type": "summarize"})
    assert caught.value.body["error"]["details"] == {"error_code": "thread_unsupported_request",
                                                     "unsupported": ["compaction"]}
    first = create(client, [user("one")], system="Be brief.")
    with pytest.raises(anthropic.BadRequestError, match="system: a thread continue takes these"):
        create(client, [user("two")], system="Be brief.", thread=cont(first.id))
    with pytest.raises(anthropic.BadRequestError, match="messages.2.content.0"):   # after the two kept messages
        create(client, [{"role": "user", "content": [{"type": "bogus"}]}], thread=cont(first.id))
    create(client, [user("two")], thread=cont(first.id))   # a refused continue does not hold the reply


# -- replicas sharing threads through Redis ----------------------------------------------------------

needs_redis = pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")


@pytest.fixture
def redis_server():
    server = RedisServer().start()
    yield server
    server.stop()


@pytest.fixture
def replicas(fake, redis_server, tmp_path):
    """Start proxy processes (the README's hypercorn command) sharing ``redis_server``."""
    started: list[HypercornProcess] = []

    def start(count: int) -> list[HypercornProcess]:
        env = proxy_env(fake, REDIS_URL=redis_server.url, STREAM_GRACE_SECONDS="0.2", FIRST_BYTE_TIMEOUT_SECONDS="2")
        for i in range(count):
            (tmp_path / str(i)).mkdir()
            started.append(HypercornProcess(env, directory=tmp_path / str(i)))
        return [process.start() for process in started]

    yield start
    for process in started:
        process.stop()


@needs_redis
def test_a_thread_continues_on_another_replica(replicas, gemini):
    a, b = (Sent().client(p.url) for p in replicas(2))
    first = create(a, [user("one")], system="Be brief.")
    second = create(b, [user("two")], thread=cont(first.id))
    last = gemini.requests[-1]
    assert conversation(last) == [("user", "one"), ("model", "Hello from the fake Gemini."), ("user", "two")]
    assert last["normalized"]["systemInstruction"]["parts"][0]["text"] == "Be brief."
    with pytest.raises(ThreadAlreadyContinuedError):
        create(a, [user("two, on a")], thread=cont(first.id))

    gemini.enqueue({"hang": True})
    events = iter(create(b, [user("three")], thread=cont(second.id), stream=True))
    next(events)
    with pytest.raises(ThreadContinueInFlightError):
        create(a, [user("three, on a")], thread=cont(second.id))
    with pytest.raises(anthropic.APIStatusError):
        list(events)
    create(a, [user("three, again")], thread=cont(second.id))
    assert len(conversation(gemini.requests[-1])) == 5


@needs_redis
def test_requests_are_answered_when_redis_goes_away(replicas, redis_server, gemini):
    (process,) = replicas(1)
    sent = Sent()
    client = sent.client(process.url)
    gemini.enqueue({"text": "R1."}, {"text": "R2."}, {"text": "R3."})
    thread = client.beta.messages.thread(model=HAIKU, max_tokens=200)
    thread.send(user("one"))                              # kept in Redis
    redis_server.stop()
    thread.send(user("two"))                              # not found in the process: the SDK replays
    assert thread.send(user("three")).content[0].text == "R3."   # kept in the process meanwhile
    assert sent.statuses == [200, 404, 200, 200]
    assert conversation(gemini.requests[-1]) == [("user", "one"), ("model", "R1."), ("user", "two"),
                                                 ("model", "R2."), ("user", "three")]
    client.messages.create(model=HAIKU, max_tokens=50, messages=[user("no thread")])
    log = process.stop()
    assert log.count("is unreachable") == 1 and "Traceback" not in log, log
