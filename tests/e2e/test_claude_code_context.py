"""The context-window and output knobs Claude Code honours behind the proxy (README, "Use with Claude Code").

Claude Code decides when to auto-compact from the window it believes the model has and the input
tokens of the last answer (the proxy reports Gemini's promptTokenCount). The fake is scripted to
report a large prompt on a tool call: whether Claude Code compacts before sending the tool's result
shows the window it used; the result JSON's ``modelUsage`` names that window too.
"""
from __future__ import annotations

import json

import pytest

from tests.e2e.claude_records import assert_ok, compactions, function_responses, last_text, model_calls, statuses

pytestmark = pytest.mark.e2e

GEMINI_WINDOW = 1048576  # every Gemini model in spec/models.yaml
SUMMARY = "<summary>The user ran echo.</summary>"


def _script_large_prompt(gemini, prompt_tokens: int) -> None:
    """A Bash call whose answer reports ``prompt_tokens`` of input; the summary when asked; then an answer."""
    def answer(rec):
        if "<summary>" in last_text(rec):  # Claude Code's compaction prompt
            return {"text": "<analysis>Short.</analysis>\n" + SUMMARY}
        if function_responses(rec) or "The user ran echo." in json.dumps(rec["normalized"]["contents"]):
            return {"text": "done"}
        return {"tool_calls": [("Bash", {"command": "echo big", "description": "Print"})],
                "usage": {"promptTokenCount": prompt_tokens}}

    gemini.enqueue(answer, answer, answer, answer)


PRO, FLASH, BIG = "gemini-2.5-pro", "gemini-3.8-flash", "gemini-3.1-pro-preview"


@pytest.mark.parametrize(("flags", "env", "prompt_tokens", "window", "compacts", "gemini_model"), [
    # Claude Code's own model names (the default Opus, --model sonnet/haiku) get a 1M window.
    ([], {}, 940_000, 1_000_000, False, BIG),
    ([], {}, 980_000, 1_000_000, True, BIG),
    (["--model", "sonnet"], {}, 980_000, 1_000_000, True, BIG),
    (["--model", "haiku"], {}, 980_000, 1_000_000, True, FLASH),
    # A name it does not know (a Gemini model) is assumed to hold 1M as well ...
    (["--model", PRO], {}, 980_000, 1_000_000, True, PRO),
    ([], {"ANTHROPIC_MODEL": PRO}, 980_000, 1_000_000, True, PRO),
    (["--model", "opus"], {"ANTHROPIC_DEFAULT_OPUS_MODEL": PRO}, 980_000, 1_000_000, True, PRO),
    # ... and CLAUDE_CODE_MAX_CONTEXT_TOKENS sets its window: Gemini's own, or a smaller one.
    (["--model", PRO], {"CLAUDE_CODE_MAX_CONTEXT_TOKENS": str(GEMINI_WINDOW)}, 980_000, GEMINI_WINDOW, False, PRO),
    (["--model", PRO], {"CLAUDE_CODE_MAX_CONTEXT_TOKENS": "300000"}, 290_000, 300_000, True, PRO),
    # For Claude Code's own names the variable is ignored.
    ([], {"CLAUDE_CODE_MAX_CONTEXT_TOKENS": str(GEMINI_WINDOW)}, 980_000, 1_000_000, True, BIG),
], ids=["alias-940k", "alias-980k", "sonnet-980k", "haiku-980k", "gemini-980k", "ANTHROPIC_MODEL-980k", "DEFAULT_OPUS-model-opus-980k",
        "gemini-max-context-gemini-window", "gemini-max-context-300k", "alias-max-context-ignored"])
def test_context_window(claude, proxy, gemini, flags, env, prompt_tokens, window, compacts, gemini_model):
    _script_large_prompt(gemini, prompt_tokens)
    run = claude(proxy.url, "run echo big", "--allowedTools", "Bash", *flags, env=env)
    assert_ok(run)
    calls = model_calls(gemini)
    assert all(c["status"] == 200 for c in calls), statuses(calls)
    assert {c["model"] for c in calls} == {gemini_model}
    assert [usage["contextWindow"] for usage in run.result["modelUsage"].values()] == [window]
    asked = ["<summary>" in last_text(c) for c in calls]
    if compacts:
        assert [m["trigger"] for m in compactions(run.home)] == ["auto"]
        # the call, the compaction (conversation + the tool's result + instructions), the turn after it
        assert asked == [False, True, False] and function_responses(calls[1]) == []
        assert SUMMARY.removeprefix("<summary>").removesuffix("</summary>") in json.dumps(calls[2]["normalized"])
    else:
        assert compactions(run.home) == [] and asked == [False, False]
        assert [r["name"] for r in function_responses(calls[1])] == ["Bash"]
    assert run.result["result"] == "done"


@pytest.mark.parametrize(("flags", "env"), [
    (["--model", "gemini-2.5-pro[1m]"], {}),
    # Without --model, Claude Code adds [1m] to ANTHROPIC_DEFAULT_OPUS_MODEL itself.
    ([], {"ANTHROPIC_DEFAULT_OPUS_MODEL": "gemini-2.5-pro"}),
], ids=["model-1m-suffix", "DEFAULT_OPUS"])
def test_1m_suffix_compacts_only_after_prompt_too_long(claude, proxy, gemini, flags, env):
    """With ``[1m]`` Claude Code strips the suffix (the proxy would too), shows a 1M window, and does not
    compact ahead of time whatever the input grows to: it sends the request, and compacts when the
    proxy answers Gemini's over-long-prompt 400 as "prompt is too long"."""
    def answer(rec):
        if "<summary>" in last_text(rec):
            return {"text": "<analysis>Short.</analysis>\n" + SUMMARY}
        return {"text": "done"}

    gemini.enqueue({"tool_calls": [("Bash", {"command": "echo big", "description": "Print"})],
                    "usage": {"promptTokenCount": 1_500_000}},
                   {"input_limit": 1000},  # Gemini refuses the next request as too long
                   answer, answer)
    run = claude(proxy.url, "run echo big", "--allowedTools", "Bash", *flags, env=env)
    assert_ok(run)
    calls = model_calls(gemini)
    assert [c["model"] for c in calls] == ["gemini-2.5-pro"] * 4
    assert [c["status"] for c in calls] == [200, 400, 200, 200], statuses(calls)
    assert [r["name"] for r in function_responses(calls[1])] == ["Bash"]  # sent at 1.5M tokens, not compacted
    assert "exceeds the maximum number of tokens" in calls[1]["error"]
    assert ["<summary>" in last_text(c) for c in calls] == [False, False, True, False]
    assert [m["trigger"] for m in compactions(run.home)] == ["auto"]
    assert [usage["contextWindow"] for usage in run.result["modelUsage"].values()] == [1_000_000]
    assert run.result["result"] == "done"


@pytest.mark.parametrize(("flags", "env", "max_output"), [
    ([], {}, 65536),  # Claude Code asks 128000 for its own models; the proxy clamps to the Gemini model's limit
    ([], {"CLAUDE_CODE_MAX_OUTPUT_TOKENS": "20000"}, 20000),
    (["--model", "gemini-2.5-pro"], {}, 32000),  # its default for a name it does not know
    (["--model", "gemini-2.5-pro"], {"CLAUDE_CODE_MAX_OUTPUT_TOKENS": "65536"}, 65536),
    (["--model", "gemini-2.5-pro"], {"CLAUDE_CODE_MAX_OUTPUT_TOKENS": "100000"}, 65536),
], ids=["alias", "alias-20000", "gemini", "gemini-65536", "gemini-100000"])
def test_max_output_tokens(claude, proxy, gemini, flags, env, max_output):
    run = claude(proxy.url, "say hello", *flags, env=env)
    assert_ok(run)
    calls = model_calls(gemini)
    assert [c["normalized"]["generationConfig"]["maxOutputTokens"] for c in calls] == [max_output], statuses(calls)
