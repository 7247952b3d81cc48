"""Reading what Claude Code sent: the fake Gemini's records of it, and Claude Code's own transcript."""
from __future__ import annotations

import json
from typing import Any


def model_calls(fake) -> list[dict]:
    """The fake's log of generate/stream calls (no countTokens, no stray paths)."""
    return [r for r in fake.requests if r["action"] in ("generateContent", "streamGenerateContent")]


def statuses(calls: list[dict]) -> list[tuple]:
    return [(c["path"], c["status"], c["error"]) for c in calls]


def function_responses(record: dict) -> list[dict]:
    """Every functionResponse in the last user turn of a request the fake received."""
    last = record["normalized"]["contents"][-1]
    return [p["functionResponse"] for p in last["parts"] if "functionResponse" in p]


def every_function_response(record: dict) -> list[dict]:
    """Every functionResponse of a request, in order (a turn may be split: results, then text)."""
    return [p["functionResponse"] for c in record["normalized"]["contents"] for p in c["parts"] if "functionResponse" in p]


def first_call_part(record: dict) -> dict:
    model_turn = record["normalized"]["contents"][-2]
    assert model_turn["role"] == "model", model_turn
    return next(p for p in model_turn["parts"] if "functionCall" in p)


def declared(record: dict) -> list[str]:
    """The names of the functions a request declared to Gemini."""
    return [f["name"] for tool in record["normalized"].get("tools", []) for f in tool.get("functionDeclarations", [])]


def last_text(record: dict) -> str:
    """The text parts of the request's last turn, joined."""
    return "".join(p.get("text", "") for p in record["normalized"]["contents"][-1]["parts"])


def transcript(home) -> list[dict[str, Any]]:
    """Every entry of the session transcripts Claude Code wrote under ``home``."""
    entries = []
    for path in sorted((home / ".claude" / "projects").glob("*/*.jsonl")):
        entries += [json.loads(line) for line in path.read_text().splitlines()]
    return entries


def compactions(home) -> list[dict]:
    """The ``compactMetadata`` of every compaction Claude Code recorded (``trigger``: manual or auto)."""
    return [e["compactMetadata"] for e in transcript(home) if e.get("subtype") == "compact_boundary"]


def assert_ok(run) -> None:
    assert run.returncode == 0, run.describe()
    assert run.result.get("is_error") is False, run.describe()
    assert run.result.get("subtype") == "success", run.describe()
