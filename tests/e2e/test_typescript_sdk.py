"""The Anthropic TypeScript SDK (npm @anthropic-ai/sdk, pinned in package.json): messages.stream().finalMessage()."""
from __future__ import annotations

import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.fake_gemini import prompt_token_count
from tests.sse_grammar import check_stream

pytestmark = pytest.mark.e2e

SCRIPT = Path(__file__).resolve().parent / "ts_sdk_stream.cjs"


@pytest.fixture
def ts_stream(node_modules: Path, ts_sdk_version: str):
    node = shutil.which("node")

    def run(base_url: str, params: dict) -> dict:
        done = subprocess.run([node, str(SCRIPT), base_url, json.dumps(params)], capture_output=True, text=True,
                              timeout=60, stdin=subprocess.DEVNULL,
                              env={"PATH": "/usr/local/bin:/usr/bin:/bin", "NODE_PATH": str(node_modules),
                                   "HOME": "/nonexistent"})
        assert done.returncode == 0, f"exit {done.returncode}\nstdout: {done.stdout}\nstderr: {done.stderr}"
        out = json.loads(done.stdout)
        assert out["sdk_version"] == ts_sdk_version
        assert len(out["raw"]) == 1, out["raw"]
        check_stream(out["raw"][0])
        return out

    return run


def test_text_final_message(proxy, gemini, ts_stream):
    text = "Hello from Gemini, via the TypeScript SDK."
    gemini.enqueue({"text": text, "text_chunks": 3})
    out = ts_stream(proxy.url, {"model": "claude-sonnet-5", "max_tokens": 300,
                                "messages": [{"role": "user", "content": "Say hello."}]})
    message = out["message"]
    assert message["type"] == "message" and message["role"] == "assistant"
    assert message["model"] == "claude-sonnet-5"
    assert message["id"].startswith("msg_")
    assert message["content"] == [{"type": "text", "text": text}]
    assert "".join(out["texts"]) == text and len(out["texts"]) >= 2
    assert message["stop_reason"] == "end_turn" and message["stop_sequence"] is None
    record = gemini.requests[-1]
    assert record["path"] == "/v1beta/models/gemini-3.1-pro-preview:streamGenerateContent"
    assert message["usage"]["input_tokens"] == prompt_token_count(record["normalized"])
    assert message["usage"]["output_tokens"] == math.ceil(len(text) / 4)


def test_tool_use_final_message(proxy, gemini, ts_stream):
    args = {"command": "grep -rn 'TODO' src | head -5", "timeout": 20000,
            "options": {"flags": ["-r", "-n"], "nested": {"deep": True, "n": 3.5, "none": None}}}
    gemini.enqueue({"tool_calls": [("Bash", args)]})
    tool = {"name": "Bash", "description": "Run a shell command.",
            "input_schema": {"type": "object", "required": ["command"],
                             "properties": {"command": {"type": "string"}, "timeout": {"type": "integer"},
                                            "options": {"type": "object"}}}}
    out = ts_stream(proxy.url, {"model": "claude-haiku-4-5-20251001", "max_tokens": 1000, "tools": [tool],
                                "messages": [{"role": "user", "content": "find the TODOs"}]})
    message = out["message"]
    assert message["stop_reason"] == "tool_use"
    assert [b["type"] for b in message["content"]] == ["tool_use"]
    block = message["content"][0]
    assert block["name"] == "Bash" and block["input"] == args
    assert block["id"].startswith("toolu_")
    record = gemini.requests[-1]
    assert record["model"] == "gemini-3.8-flash"
    assert message["usage"]["input_tokens"] == prompt_token_count(record["normalized"])
    assert message["usage"]["output_tokens"] > 0
