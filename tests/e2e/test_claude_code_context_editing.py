"""Claude Code's context editing behind the proxy, with the real Claude Code.

Claude Code 2.1.332 sends ``clear_thinking_20251015`` with ``keep: "all"`` on every request (a no-op).
It sends ``clear_tool_uses_20250919`` (trigger 27 tool uses, keep 12, clear at least 20,000 tokens)
only behind its remote flag ``tengu_jiggly_blossom`` (read from the flags it caches in
``~/.claude.json``; with its traffic off, only when ``CLAUDE_CODE_GB_DISK_CACHE_WHEN_TELEMETRY_OFF=1``),
and only when a session comes back after more than 65 minutes idle (its prompt cache gone cold). A long Bash session is run, its transcript aged two hours, and the session resumed
twice from the same state: with the flag off and on. The tokens sent to Gemini (the fake's
promptTokenCount) on the resumed request are compared.
"""
from __future__ import annotations

import datetime
import json
import shutil
from pathlib import Path

import pytest

from tests.e2e.claude_records import assert_ok, function_responses, model_calls
from tests.fake_gemini.answers import prompt_token_count

pytestmark = pytest.mark.e2e

ROUNDS = 32
PLACEHOLDER = "[Old tool result content cleared]"
# With its network traffic off, Claude Code reads its cached flags from ~/.claude.json only with this.
FLAGS_FROM_DISK = {"CLAUDE_CODE_GB_DISK_CACHE_WHEN_TELEMETRY_OFF": "1"}


def _long_bash_session(gemini) -> None:
    """ROUNDS Bash calls, each printing ~9 KB, then an answer."""
    def answer(record: dict) -> dict:
        done = sum(1 for c in record["normalized"]["contents"] for p in c["parts"] if "functionResponse" in p)
        if done >= ROUNDS:
            return {"text": "All printed."}
        return {"tool_calls": [("Bash", {"command": f"seq {done} 2000", "description": "Print numbers"})]}
    gemini.enqueue(*[answer] * (ROUNDS + 1))


def _age_transcripts(home: Path, hours: float) -> None:
    """Move every timestamp of the session transcripts ``hours`` into the past."""
    for path in (home / ".claude" / "projects").glob("*/*.jsonl"):
        lines = []
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            if isinstance(entry.get("timestamp"), str):
                when = datetime.datetime.fromisoformat(entry["timestamp"].replace("Z", "+00:00"))
                entry["timestamp"] = (when - datetime.timedelta(hours=hours)).isoformat().replace("+00:00", "Z")
            lines.append(json.dumps(entry))
        path.write_text("\n".join(lines) + "\n")


def _set_flag(home: Path, value: str) -> None:
    config_path = home / ".claude.json"
    config = json.loads(config_path.read_text()) if config_path.exists() else {}
    for key in ("cachedFeatureFlags", "cachedGrowthBookFeatures"):
        config.setdefault(key, {})["tengu_jiggly_blossom"] = value
    config_path.write_text(json.dumps(config))


def _sent_tokens(gemini) -> tuple[int, int]:
    """(promptTokenCount, cleared results) of the last request Gemini got."""
    last = model_calls(gemini)[-1]
    cleared = sum(PLACEHOLDER in json.dumps(p) for c in last["normalized"]["contents"] for p in c["parts"])
    return prompt_token_count(last["normalized"]), cleared


def test_clear_tool_uses_after_idle_reduces_what_reaches_gemini(claude, proxy, gemini, home):
    _long_bash_session(gemini)
    first = claude(proxy.url, "Print numbers with seq many times.", "--allowedTools", "Bash")
    assert_ok(first)
    assert len(model_calls(gemini)) == ROUNDS + 1
    assert len(function_responses(model_calls(gemini)[-1])) == 1
    _age_transcripts(home, hours=2)
    saved = home.parent / "home-saved"
    shutil.copytree(home, saved, symlinks=True)
    sent = {}
    for flag in ("off", "on"):
        shutil.rmtree(home)
        shutil.copytree(saved, home, symlinks=True)
        _set_flag(home, flag)
        gemini.requests.clear()
        gemini.enqueue({"text": "Back."})
        again = claude(proxy.url, "One more summary line, please.", "--resume", first.result["session_id"],
                       "--allowedTools", "Bash", env=FLAGS_FROM_DISK)
        assert_ok(again)
        sent[flag] = _sent_tokens(gemini)
    (tokens_off, cleared_off), (tokens_on, cleared_on) = sent["off"], sent["on"]
    print(f"\n[e2e] tokens sent to Gemini on the resumed request: {tokens_off} (no clearing), {tokens_on} "
          f"(clear_tool_uses, {cleared_on} results cleared): {100 * (tokens_off - tokens_on) / tokens_off:.0f}% less")
    assert cleared_off == 0
    assert cleared_on > 0 and tokens_on < tokens_off
