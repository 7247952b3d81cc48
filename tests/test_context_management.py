"""context_management through the proxy, real Hypercorn, LiteLLM and the strict fake Gemini, with the
Anthropic SDK: edits shrink what Gemini gets, answers report applied_edits (streams in message_delta),
count_tokens reports original_input_tokens, compact_20260112 asks the same model for a summary."""
from __future__ import annotations

import json

import anthropic
import httpx
import pytest

import translator
from tests.conftest import claude_code_fixtures
from tests.e2e.claude_records import last_text, model_calls
from tests.fake_gemini.answers import prompt_token_count
from tests.teams import ADMIN, ledger_rows

BASH = {"name": "Bash", "description": "Run a shell command.",
        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}
CLEAR = {"type": "clear_tool_uses_20250919", "trigger": {"type": "input_tokens", "value": 1000},
         "keep": {"type": "tool_uses", "value": 1}}
BETAS = ["context-management-2025-06-27", "compact-2026-01-12"]
PROMPT_MARK = "Write a continuation summary"


@pytest.fixture
def client(proxy):
    return anthropic.Anthropic(base_url=proxy.url, api_key="sk-test", max_retries=0)


def tool_session(rounds: int, output: str = "o" * 2000) -> list[dict]:
    messages: list[dict] = [{"role": "user", "content": "Run the commands."}]
    for n in range(rounds):
        messages += [{"role": "assistant", "content": [{"type": "tool_use", "id": f"toolu_{n}", "name": "Bash",
                                                        "input": {"command": f"echo {n}"}}]},
                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"toolu_{n}",
                                                   "content": output}]}]
    return messages


def sent_responses(record: dict) -> list[str]:
    return [json.dumps(p["functionResponse"]["response"]) for c in record["normalized"]["contents"]
            for p in c["parts"] if "functionResponse" in p]


@pytest.mark.parametrize("stream", [False, True])
def test_clear_tool_uses_shrinks_what_gemini_gets_and_is_reported(client, gemini, stream):
    gemini.enqueue({"text": "Done."})
    params = dict(model="claude-sonnet-4-5", max_tokens=100, tools=[BASH], messages=tool_session(4),
                  betas=BETAS, context_management={"edits": [CLEAR]})
    if stream:
        with client.beta.messages.stream(**params) as events:
            kinds = [e.type for e in events]
            message = events.get_final_message()
        assert kinds[-1] == "message_stop"
    else:
        message = client.beta.messages.create(**params)
    [applied] = message.context_management.applied_edits
    assert applied.type == "clear_tool_uses_20250919" and applied.cleared_tool_uses == 3
    assert applied.cleared_input_tokens > 3 * 400
    [call] = model_calls(gemini)
    sent = sent_responses(call)
    assert len(sent) == 4 and sum("o" * 2000 in s for s in sent) == 1
    assert sum("[Old tool result content cleared]" in s for s in sent) == 3


def test_without_edits_the_answer_has_no_context_management(client, gemini):
    gemini.enqueue({"text": "Done."})
    message = client.beta.messages.create(model="claude-sonnet-4-5", max_tokens=100, tools=[BASH],
                                          messages=tool_session(4), betas=BETAS)
    assert message.context_management is None
    assert sum("o" * 2000 in s for s in sent_responses(model_calls(gemini)[0])) == 4


def test_a_hostile_edit_gets_a_400_naming_the_field(client, gemini):
    with pytest.raises(anthropic.BadRequestError) as caught:
        client.beta.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=tool_session(1),
                                    betas=BETAS, extra_body={"context_management": {"edits": [
                                        {"type": "compact_20260112", "trigger": {"type": "input_tokens",
                                                                                 "value": 10}}]}})
    assert "context_management.edits.0.trigger.value: Input should be greater than or equal to 50000" in str(
        caught.value)
    assert model_calls(gemini) == []


def test_count_tokens_reports_the_original_count(client, gemini):
    params = dict(model="claude-sonnet-4-5", tools=[BASH], messages=tool_session(4))
    plain = client.beta.messages.count_tokens(**params, betas=BETAS)
    edited = client.beta.messages.count_tokens(**params, betas=BETAS, context_management={"edits": [CLEAR]})
    assert plain.context_management is None
    assert edited.input_tokens < plain.input_tokens
    original = edited.context_management.original_input_tokens
    assert abs(original - plain.input_tokens) <= plain.input_tokens * 0.2


def summarising(text: str = "Done."):
    """The fake's answers: a summary when asked for one (the prompt is the last turn), else ``text``."""
    def answer(record: dict) -> dict:
        if PROMPT_MARK in last_text(record) or "Keep names." in last_text(record):
            return {"text": "<summary>The user ran four echo commands; all printed o.</summary>",
                    "usage": {"promptTokenCount": 60000, "candidatesTokenCount": 40}}
        return {"text": text}
    return answer


def ask(client, stream: bool, **params):
    """The SDK's Message for ``params``, streamed (and accumulated by the SDK) or not."""
    if not stream:
        return client.beta.messages.create(**params)
    with client.beta.messages.stream(**params) as events:
        for _ in events:
            pass
        return events.get_final_message()


COMPACT = {"type": "compact_20260112", "trigger": {"type": "input_tokens", "value": 50000}}
BIG = tool_session(4, output="o" * 60_000)


@pytest.mark.parametrize("stream", [False, True])
def test_compaction_summarises_then_answers(client, gemini, stream):
    gemini.enqueue(summarising(), summarising())
    message = ask(client, stream, model="claude-sonnet-4-5", max_tokens=200, tools=[BASH], messages=BIG,
                  betas=BETAS, context_management={"edits": [COMPACT]})
    assert [b.type for b in message.content] == ["compaction", "text"]
    assert message.content[0].content == "The user ran four echo commands; all printed o."
    assert message.content[1].text == "Done." and message.stop_reason == "end_turn"
    assert [i.type for i in message.usage.iterations] == ["compaction", "message"]
    assert message.usage.iterations[0].input_tokens == 60000
    summary_call, answer_call = model_calls(gemini)
    assert PROMPT_MARK in last_text(summary_call)
    assert summary_call["model"] == answer_call["model"]
    assert len(json.dumps(answer_call["normalized"])) < 2000  # the conversation is the summary now
    assert "four echo commands" in json.dumps(answer_call["normalized"])


@pytest.mark.parametrize("stream", [False, True])
def test_pause_after_compaction_answers_the_block_alone(client, gemini, stream):
    gemini.enqueue(summarising())
    edit = {**COMPACT, "pause_after_compaction": True, "instructions": "Keep names."}
    message = ask(client, stream, model="claude-sonnet-4-5", max_tokens=200, tools=[BASH], messages=BIG,
                  betas=BETAS, context_management={"edits": [edit]})
    assert [b.type for b in message.content] == ["compaction"] and message.stop_reason == "compaction"
    [summary_call] = model_calls(gemini)
    assert last_text(summary_call) == "Keep names."
    # The client sends the block back: everything before it is gone.
    gemini.enqueue({"text": "Continuing."})
    after = client.beta.messages.create(model="claude-sonnet-4-5", max_tokens=200, tools=[BASH], betas=BETAS,
                                        messages=[*BIG, {"role": "assistant", "content": message.content},
                                                  {"role": "user", "content": "Go on."}],
                                        context_management={"edits": [edit]})
    assert after.content[0].text == "Continuing."
    last = model_calls(gemini)[-1]["normalized"]["contents"]
    assert len(last) == 1 and "four echo commands" in json.dumps(last) and "Go on." in json.dumps(last)


def test_a_loop_with_compaction_stays_bounded(client, gemini):
    """A tool loop (as the SDK's tool runner drives it) with compact_20260112: what reaches Gemini
    never grows past about one trigger's worth, however long the loop runs."""
    messages: list = [{"role": "user", "content": "Run echo until told to stop."}]
    sizes = []
    for n in range(12):
        gemini.enqueue(lambda rec, n=n: summarising()(rec) if PROMPT_MARK in last_text(rec)
                       else {"tool_calls": [("Bash", {"command": f"echo {n}"})]}, summarising())
        message = client.beta.messages.create(model="claude-sonnet-4-5", max_tokens=100, tools=[BASH],
                                              messages=messages, betas=BETAS,
                                              context_management={"edits": [COMPACT]})
        sizes.append(len(json.dumps(model_calls(gemini)[-1]["normalized"])))
        messages += [{"role": "assistant", "content": [b.to_dict() for b in message.content]}]
        calls = [b for b in message.content if b.type == "tool_use"]
        messages += [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": c.id,
                                                   "content": "o" * 60_000} for c in calls]}]
        gemini.requests.clear()
    assert max(sizes) < 50000 * 4 + 70_000
    assert any(b.get("type") == "compaction" for m in messages if m["role"] == "assistant" for b in m["content"])


# Claude Code 2.1.332's own clear_tool_uses edit (its "tool result clearing after idle", behind the
# remote flag tengu_jiggly_blossom): trigger 27 tool uses, keep 12, clear at least 20,000 tokens.
CLAUDE_CODE_EDITS = [{"type": "clear_thinking_20251015", "keep": "all"},
                     {"type": "clear_tool_uses_20250919", "trigger": {"type": "tool_uses", "value": 27},
                      "keep": {"type": "tool_uses", "value": 12},
                      "clear_at_least": {"type": "input_tokens", "value": 20000}}]


def test_a_claude_code_bash_session_sends_gemini_less_with_clearing(proxy, gemini):
    """The same Claude Code session (its fixture's system prompt, 24 tools, then 40 Bash rounds of
    ~4 KB output), sent with Claude Code's default edits (clear_thinking keep all: nothing changes)
    and with its clear_tool_uses edit: the tokens Gemini is sent (the fake's promptTokenCount)."""
    base = next(iter(claude_code_fixtures("02-tool-followup-request.json")), None)
    if base is None:
        pytest.skip("no Claude Code fixtures")
    request = json.loads(base.read_text())
    rounds = [m for n in range(40) for m in (
        {"role": "assistant", "content": [{"type": "tool_use", "id": f"toolu_r{n}", "name": "Bash",
                                           "input": {"command": f"cat log{n}.txt", "description": "Show"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": f"toolu_r{n}",
                                      "content": f"line {n}\n" * 500}]})]
    messages = [*request["messages"], *rounds]
    sent = {}
    for label, edits in (("default", CLAUDE_CODE_EDITS[:1]), ("clearing", CLAUDE_CODE_EDITS)):
        gemini.enqueue({"text": "Done."})
        answer = httpx.post(f"{proxy.url}/v1/messages", json={**request, "messages": messages, "stream": False,
                                                              "context_management": {"edits": edits}},
                            headers={"x-api-key": "sk-test", "anthropic-version": "2023-06-01",
                                     "anthropic-beta": "context-management-2025-06-27"}, timeout=60).json()
        sent[label] = (prompt_token_count(model_calls(gemini)[-1]["normalized"]), answer["context_management"])
    (before, none), (after, cleared) = sent["default"], sent["clearing"]
    assert none == {"applied_edits": []}
    assert cleared["applied_edits"][0]["cleared_tool_uses"] == 29  # 41 tool uses, 12 kept
    print(f"\ntokens sent to Gemini: {before} without clearing, {after} with ({100 * (before - after) / before:.0f}% "
          f"less); reported cleared_input_tokens {cleared['applied_edits'][0]['cleared_input_tokens']}")
    assert after < before * 0.75


def test_a_compaction_block_with_nothing_before_it(client, gemini):
    gemini.enqueue({"text": "Continuing."})
    message = client.beta.messages.create(
        model="claude-sonnet-4-5", max_tokens=100, betas=BETAS,
        messages=[{"role": "assistant", "content": [{"type": "compaction", "content": "We listed files."}]},
                  {"role": "user", "content": "Go on."}])
    assert message.content[0].text == "Continuing."
    [turn] = model_calls(gemini)[0]["normalized"]["contents"]
    assert turn["role"] == "user" and "We listed files." in json.dumps(turn) and "Go on." in json.dumps(turn)


def test_the_estimate_against_the_count_on_claude_code_fixtures(proxy, gemini):
    """Triggers use the proxy's estimate (request JSON / 4); the count Gemini gets for the same
    request (the fake counts Gemini's request JSON / 4, as a stand-in: no real Gemini here)."""
    paths = claude_code_fixtures("0*-request.json")
    if not paths:
        pytest.skip("no Claude Code fixtures")
    ratios = []
    for path in paths:
        request = json.loads(path.read_text())
        counted = {key: request[key] for key in ("system", "tools", "messages") if key in request}
        counted["model"] = "claude-sonnet-4-5"  # one fixture names a model the proxy does not serve
        answer = httpx.post(f"{proxy.url}/v1/messages/count_tokens", json={
            **counted, "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}},
            headers={"x-api-key": "sk-test", "anthropic-version": "2023-06-01"}, timeout=60).json()
        estimate = translator.edits_estimate(request, translator.load_spec().context)
        assert "input_tokens" in answer, (path.name, answer)
        ratios.append(estimate / answer["input_tokens"])
        assert answer["context_management"] == {"original_input_tokens": answer["input_tokens"]}
    print(f"\nestimate / count on {len(ratios)} fixtures: {min(ratios):.2f} .. {max(ratios):.2f}")
    assert all(0.5 < r < 2 for r in ratios)


def test_the_sdk_tool_runner_with_compaction_stays_bounded(client, gemini):
    """The Python SDK's own tool runner (it sends each answer back, compaction blocks included) over
    a long loop of a tool with large output: what reaches Gemini stays bounded."""
    @anthropic.beta_tool
    def dump(n: int) -> str:
        """Print a large log.

        Args:
            n: which log.
        """
        return f"log {n}\n" + "o" * 60_000

    def answer(record: dict) -> dict:
        if PROMPT_MARK in last_text(record):
            return {"text": "<summary>Logs dumped so far; keep going.</summary>"}
        done = sum("functionResponse" in p for c in record["normalized"]["contents"] for p in c["parts"])
        return {"text": "Finished."} if len(answer.calls) >= 14 else {"tool_calls": [("dump", {"n": done})]}
    answer.calls = []

    def counted(record: dict) -> dict:
        answer.calls.append(len(json.dumps(record["normalized"])))
        return answer(record)
    gemini.enqueue(*[counted] * 40)
    runner = client.beta.messages.tool_runner(model="claude-sonnet-4-5", max_tokens=200, tools=[dump],
                                              messages=[{"role": "user", "content": "Dump the logs."}],
                                              betas=BETAS, context_management={"edits": [COMPACT]})
    messages = list(runner)
    assert messages[-1].content[-1].text == "Finished."
    assert any(b.type == "compaction" for m in messages for b in m.content)
    assert max(answer.calls) < 50000 * 4 + 130_000, answer.calls


def test_the_compaction_call_is_booked_in_the_ledger(make_proxy, gemini, tmp_path):
    url = f"sqlite:///{tmp_path / 'usage.db'}"
    server = make_proxy(PROXY_API_KEY=ADMIN, DATABASE_URL=url)
    client = anthropic.Anthropic(base_url=server.url, api_key=ADMIN, max_retries=0)
    gemini.enqueue(summarising(), summarising(), summarising(), summarising())
    told = [ask(client, stream, model="claude-sonnet-4-5", max_tokens=200, tools=[BASH], messages=BIG,
                betas=BETAS, context_management={"edits": [COMPACT]}).usage for stream in (False, True)]
    server.stop()
    rows = ledger_rows(url)
    assert sorted(r["uncached_input_tokens"] for r in rows) == sorted(
        u.input_tokens + u.iterations[0].input_tokens for u in told)
    assert all(r["uncached_input_tokens"] > 60000 for r in rows)
