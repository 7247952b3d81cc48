"""Server-side fallbacks (a request's ``fallbacks``): the translator's hand-over, and the proxy through the
strict fake Gemini, where one model refuses and the next answers, streamed and not."""
from __future__ import annotations

import json

import anthropic
import httpx
import pytest

import translator
from tests.sse_grammar import check_stream

SPEC = translator.load_spec()
BETA = "server-side-fallback-2026-06-01"
PRO, FLASH = "gemini-3.1-pro-preview", "gemini-3.8-flash"   # what claude-sonnet-* and claude-haiku-* reach
BODY = {"model": "claude-sonnet-5", "max_tokens": 200, "messages": [{"role": "user", "content": "Tell me."}]}
BASH = {"name": "Bash", "description": "Run a shell command.",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}


def chunk(text=None, finish=None, native=None, usage=None, model=PRO):
    choice = {"index": 0, "delta": {"content": text} if text else {}, "finish_reason": finish}
    if native:
        choice["provider_specific_fields"] = {"native_finish_reason": native}
    return {"model": model, "choices": [choice], "usage": usage}


# --- the translator ---------------------------------------------------------------------------------

def test_a_declined_answer_hands_over_with_a_fallback_block_and_iterations():
    call = translator.translate_call(BODY, SPEC)
    hop = translator.plan_fallbacks({**BODY, "fallbacks": [{"model": "claude-haiku-4-5"}]}, SPEC, call=call)[0]
    stream = translator.StreamTranslator(call, SPEC, "msg_1")
    events = stream.start() + stream.feed(chunk("Part"))
    events += stream.feed(chunk(finish="content_filter", native="SAFETY",
                                usage={"prompt_tokens": 10, "completion_tokens": 2}))
    assert stream.declined
    events += stream.hand_over(hop.call, hop.model)
    events += stream.feed(chunk("Answer.", model=FLASH)) + stream.feed(
        chunk(finish="stop", native="STOP", usage={"prompt_tokens": 12, "completion_tokens": 3}, model=FLASH))
    events += stream.finish()
    check_stream("".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events))
    message = translator.collect(events)
    assert [b["type"] for b in message["content"]] == ["text", "fallback", "text"]
    assert message["content"][1] == {"type": "fallback", "from": {"model": "claude-sonnet-5"},
                                     "to": {"model": FLASH}, "trigger": {"type": "refusal", "category": None}}
    assert message["stop_reason"] == "end_turn"
    usage = message["usage"]
    assert [(i["type"], i["model"], i["input_tokens"], i["output_tokens"]) for i in usage["iterations"]] == [
        ("message", "claude-sonnet-5", 10, 2), ("fallback_message", FLASH, 12, 3)]
    assert (usage["input_tokens"], usage["output_tokens"]) == (22, 5)
    parsed = anthropic.types.beta.BetaMessage.model_validate(message)  # as the SDK types it
    assert parsed.content[1].from_.model == "claude-sonnet-5" and parsed.usage.iterations[1].type == "fallback_message"


@pytest.mark.parametrize("native, finish, declined", [
    ("SAFETY", "content_filter", True), ("PROHIBITED_CONTENT", "content_filter", True),
    (None, "content_filter", True),          # a blocked prompt: LiteLLM's reason only
    ("RECITATION", "content_filter", False),  # would refuse the same way anywhere
    ("STOP", "stop", False), ("MAX_TOKENS", "length", False)])
def test_which_refusals_fall_back(native, finish, declined):
    stream = translator.StreamTranslator(translator.translate_call(BODY, SPEC), SPEC, "msg_1")
    stream.start()
    stream.feed(chunk(finish=finish, native=native))
    assert stream.declined is declined


def test_fallback_entries_take_their_overrides_and_default_takes_the_chain():
    body = {**BODY, "thinking": {"type": "enabled", "budget_tokens": 2048}, "output_config": {"effort": "low"},
            "speed": "fast", "fallbacks": [{"model": "gemini-2.5-flash", "max_tokens": 50, "thinking": None,
                                             "output_config": {"effort": None}, "speed": None}]}
    call = translator.translate_call(body, SPEC)
    hop, = translator.plan_fallbacks(body, SPEC, call=call)
    assert hop.body["max_tokens"] == 50 and "thinking" not in hop.body and "speed" not in hop.body
    assert "output_config" not in hop.body and hop.call.kwargs["max_tokens"] == 50 and hop.model == "gemini-2.5-flash"
    default, = translator.plan_fallbacks({**BODY, "fallbacks": "default"}, SPEC, call=call)
    assert default.model == FLASH   # models.yaml: gemini-3.1-pro-preview falls back to gemini-3.8-flash
    assert translator.plan_fallbacks(BODY, SPEC, call=call) == ()


@pytest.mark.parametrize("fallbacks, status, fragment", [
    ([{"model": "no-such-model"}], 404, "fallbacks.0.model: no-such-model is not served"),
    ([{"model": "openai/gpt-5"}], 400, "fallbacks.0.model: provider prefix 'openai/' is not enabled"),
    ([{"model": "gemini/../x"}], 400, "fallbacks.0.model: 'gemini/../x' is not a valid model name"),
    ([{"model": FLASH, "temperature": 1}], 400, "fallbacks.0.temperature: Extra inputs are not permitted"),
    ([{}], 400, "fallbacks.0.model: Field required"),
    ([], 400, "fallbacks: a list of 1 to 8"),
    ("all", 400, "fallbacks: Input should be a list"),
    ([{"model": FLASH, "max_tokens": -1}], 400, "max_tokens"),
])
def test_a_bad_fallbacks_entry_is_refused_before_any_call(proxy, gemini, fallbacks, status, fragment):
    answer = httpx.post(proxy.url + "/v1/messages", json={**BODY, "fallbacks": fallbacks}, timeout=30)
    assert answer.status_code == status, answer.text
    assert fragment in answer.json()["error"]["message"]
    assert not [r for r in gemini.requests if r["action"]]


# --- through the proxy --------------------------------------------------------------------------------

@pytest.fixture
def client(proxy):
    return anthropic.Anthropic(base_url=proxy.url, api_key="sk-test", max_retries=0)


def ask(client, stream, **extra):
    params = {**BODY, "betas": [BETA], **extra}
    if stream:
        with client.beta.messages.stream(**params) as events:
            return events.get_final_message()
    return client.beta.messages.create(**params)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("refusal", [{"finish_reason": "SAFETY"}, {"finish_reason": "PROHIBITED_CONTENT"},
                                     {"prompt_blocked": "PROHIBITED_CONTENT"}])
def test_a_refusal_is_answered_by_the_next_model(client, gemini, stream, refusal):
    gemini.refuse(PRO, **refusal)
    gemini.enqueue({"text": "The fallback answers."})
    message = ask(client, stream, fallbacks=[{"model": "claude-haiku-4-5"}])
    assert [b.type for b in message.content] == ["fallback", "text"]
    hop = message.content[0]
    assert (hop.from_.model, hop.to.model, hop.trigger.type) == ("claude-sonnet-5", FLASH, "refusal")
    assert message.content[1].text == "The fallback answers." and message.stop_reason == "end_turn"
    assert [(i.type, i.model) for i in message.usage.iterations] == [("message", "claude-sonnet-5"),
                                                                    ("fallback_message", FLASH)]
    assert message.usage.input_tokens == sum(i.input_tokens for i in message.usage.iterations)
    assert [r["model"] for r in gemini.requests if r["action"]] == [PRO, FLASH]


@pytest.mark.parametrize("stream", [False, True])
def test_default_falls_back_along_the_models_chain(client, gemini, stream):
    gemini.refuse(PRO)
    message = ask(client, stream, fallbacks="default")
    assert message.content[0].type == "fallback" and message.content[0].to.model == FLASH
    assert message.content[1].text == "Hello from the fake Gemini."


def test_every_model_declining_ends_in_the_last_refusal(client, gemini):
    gemini.refuse(PRO)
    gemini.refuse(FLASH)
    message = ask(client, False, fallbacks=[{"model": FLASH}])
    assert [b.type for b in message.content] == ["fallback"] and message.stop_reason == "refusal"
    assert [i.type for i in message.usage.iterations] == ["message", "fallback_message"]


def test_without_fallbacks_a_refusal_stays_a_refusal(client, gemini):
    gemini.refuse(PRO)
    message = ask(client, False)
    assert message.stop_reason == "refusal" and message.content == [] and message.usage.iterations is None
    assert len([r for r in gemini.requests if r["action"]]) == 1


def test_an_answer_is_not_handed_over(client, gemini):
    message = ask(client, True, fallbacks=[{"model": FLASH}])
    assert [b.type for b in message.content] == ["text"] and message.usage.iterations is None
    assert [r["model"] for r in gemini.requests if r["action"]] == [PRO]


def test_the_fallback_model_gets_its_own_translation_and_signatures(client, gemini):
    """Pro declines both turns; Flash answers them. Flash's tool call comes back signed for Flash: the next
    turn sends Flash its own signature, and Pro (which may not see it) the dummy."""
    gemini.refuse(PRO)
    gemini.enqueue({"tool_calls": [("Bash", {"command": "ls"})]}, {"text": "Done."})
    first = ask(client, False, tools=[BASH], fallbacks=[{"model": FLASH, "max_tokens": 64}])
    assert [b.type for b in first.content] == ["fallback", "tool_use"]
    flash_call = [r for r in gemini.requests if r["model"] == FLASH][-1]
    assert flash_call["normalized"]["generationConfig"]["maxOutputTokens"] == 64
    history = [BODY["messages"][0], {"role": "assistant", "content": [b.to_dict() for b in first.content]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": first.content[1].id,
                                             "content": "a.txt"}]}]
    second = ask(client, False, tools=[BASH], messages=history, fallbacks=[{"model": FLASH}])
    assert second.content[-1].text == "Done."
    pro, flash = [r for r in gemini.requests if r["action"]][-2:]
    assert (pro["model"], pro["status"], flash["model"], flash["status"]) == (PRO, 200, FLASH, 200)
    assert pro["used_dummy_signature"] and not flash["used_dummy_signature"]


def test_a_fallback_block_sent_back_is_accepted_and_not_rendered(client, gemini):
    hop = {"type": "fallback", "from": {"model": "claude-sonnet-5"}, "to": {"model": FLASH},
           "trigger": {"type": "refusal", "category": None}}
    history = [BODY["messages"][0], {"role": "assistant", "content": [hop, {"type": "text", "text": "Earlier."}]},
               {"role": "user", "content": "And now?"}]
    message = ask(client, False, messages=history)
    assert message.content[0].text == "Hello from the fake Gemini."
    sent = gemini.requests[-1]["normalized"]["contents"]
    assert [c["role"] for c in sent] == ["user", "model", "user"] and "fallback" not in str(sent)


@pytest.mark.parametrize("stream", [False, True])
def test_a_thread_keeps_the_fallbacks_reply_and_its_signatures(client, gemini, stream):
    """A message thread whose first turn Flash answered after Pro declined: the kept reply (fallback block
    and all) is the history of the continue, where Flash gets its own signature back."""
    gemini.refuse(PRO)
    gemini.enqueue({"tool_calls": [("Bash", {"command": "ls"})]}, {"text": "Listed."})
    betas = [BETA, "message-threads-2026-08-12"]
    first = ask(client, stream, tools=[BASH], fallbacks=[{"model": FLASH}], betas=betas, thread={"type": "create"})
    assert [b.type for b in first.content] == ["fallback", "tool_use"]
    result = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": first.content[1].id,
                                           "content": "a.txt"}]}
    second = ask(client, stream, messages=[result], fallbacks=[{"model": FLASH}], betas=betas,
                 thread={"type": "continue", "previous_message_id": first.id})
    assert second.content[-1].text == "Listed."
    flash = [r for r in gemini.requests if r["action"]][-1]
    assert flash["model"] == FLASH and flash["status"] == 200 and not flash["used_dummy_signature"]
    assert [c["role"] for c in flash["normalized"]["contents"]] == ["user", "model", "user"]


def test_the_handed_over_stream_keeps_the_grammar(proxy, gemini):
    gemini.refuse(PRO, prompt_blocked="SAFETY")
    raw = httpx.post(proxy.url + "/v1/messages", json={**BODY, "stream": True, "fallbacks": "default"}, timeout=30)
    assert raw.status_code == 200
    events = check_stream(raw.content)
    started = [e["content_block"]["type"] for e in events if e["type"] == "content_block_start"]
    assert started == ["fallback", "text"]
    final = [e for e in events if e["type"] == "message_delta"][0]
    assert [i["type"] for i in final["usage"]["iterations"]] == ["message", "fallback_message"]
