"""Claude Code (the real CLI) adds an MCP tool mid-conversation, through the proxy, to the strict fake Gemini.

The flow that makes Claude Code 2.1.332 send ``tool_addition``: a multi-turn headless session
(``--input-format stream-json``, as the Agent SDK drives it) with ToolSearch disallowed, and a stdio
MCP server (tests/e2e/late_mcp_server.py) that lists no tools until after the first turn, then sends
``notifications/tools/list_changed``. Claude Code's next request declares the tool (``defer_loading``)
and announces it in a ``role: "system"`` message: ``[{"type": "text", "text": "The following tools just
became available ..."}, {"type": "tool_addition", "tool": {"type": "tool_reference", "name":
"mcp__late__late_echo"}}]``. Plain ``claude -p`` waits for MCP servers and sends no tool changes.
"""
from __future__ import annotations

import json
import os
import selectors
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.claude_records import declared, every_function_response, model_calls
from tests.e2e.conftest import CLAUDE_TIMEOUT_S, claude_env

pytestmark = pytest.mark.e2e

SERVER = Path(__file__).resolve().parent / "late_mcp_server.py"
ROOT = Path(__file__).resolve().parent.parent.parent
TOOL = "mcp__late__late_echo"
ECHO = "Echo the word zebra with late_echo."


class Session:
    """One ``claude -p --input-format stream-json`` process: user turns in, JSON lines out."""

    def __init__(self, command: list[str], cwd: Path, env: dict[str, str]):
        self.process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.DEVNULL)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.process.stdout, selectors.EVENT_READ)
        self.buffer = b""
        self.deadline = time.monotonic() + CLAUDE_TIMEOUT_S

    def say(self, text: str) -> dict:
        """Send a user turn; Claude Code's ``result`` line for it."""
        line = {"type": "user", "message": {"role": "user", "content": text}}
        self.process.stdin.write(json.dumps(line).encode() + b"\n")
        self.process.stdin.flush()
        while True:
            while b"\n" not in self.buffer:
                if not self.selector.select(max(0.0, self.deadline - time.monotonic())):
                    pytest.fail(f"claude gave no result for {text!r} in time")
                chunk = os.read(self.process.stdout.fileno(), 65536)
                if not chunk:
                    pytest.fail(f"claude exited before answering {text!r}")
                self.buffer += chunk
            raw, self.buffer = self.buffer.split(b"\n", 1)
            message = json.loads(raw) if raw.strip() else {}
            if message.get("type") == "result":
                return message

    def close(self) -> None:
        self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def wait_for_line(fd: int, deadline: float) -> bytes:
    selector = selectors.DefaultSelector()
    selector.register(fd, selectors.EVENT_READ)
    data = b""
    while not data.endswith(b"\n"):
        if not selector.select(max(0.0, deadline - time.monotonic())):
            pytest.fail("Claude Code did not list the MCP server's tools again after list_changed")
        data += os.read(fd, 64)
    return data


def late_tool_session(node_modules: Path, home: Path, project: Path, tmp_path: Path, base_url: str) -> tuple[dict, dict]:
    """Two turns of one session; the MCP server's tool becomes ready between them. The two results."""
    ready, listed = tmp_path / "ready.fifo", tmp_path / "listed.fifo"
    os.mkfifo(ready)
    os.mkfifo(listed)
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"late": {"type": "stdio", "command": sys.executable,
                                                          "args": [str(SERVER), str(ready), str(listed)]}}}))
    command = [str(node_modules / ".bin" / "claude"), "-p", "--input-format", "stream-json", "--output-format",
               "stream-json", "--verbose", "--mcp-config", str(config), "--disallowedTools", "ToolSearch",
               "--allowedTools", TOOL, "--debug-file", str(tmp_path / "claude-debug.log")]
    session = Session(command, project, claude_env(home, base_url))
    listened = os.open(listed, os.O_RDONLY | os.O_NONBLOCK)  # before the server can write to it
    try:
        first = session.say("Say anything.")
        assert first["subtype"] == "success" and not first["is_error"], first
        with open(ready, "w", encoding="utf-8") as fifo:  # the MCP server's tool becomes ready now
            fifo.write("go\n")
        wait_for_line(listened, session.deadline)
        second = session.say(ECHO)
        for _ in range(2):  # Claude Code reads the new list in the background: a turn may begin before it has it
            if "echo:zebra" in second.get("result", ""):
                break
            second = session.say(ECHO)
    finally:
        os.close(listened)
        session.close()
    assert second["subtype"] == "success" and not second["is_error"], second
    return first, second


def answer(record: dict) -> dict:
    """Gemini's part: call the tool once it is declared, then report what it said."""
    if TOOL not in declared(record):
        return {"text": "Nothing to echo yet."}
    echoed = [r for r in every_function_response(record) if r["name"] == TOOL]
    if not echoed:
        return {"text": "Echoing.", "tool_calls": [(TOOL, {"word": "zebra"})]}
    return {"text": "The tool said " + json.dumps(echoed[-1])}


def script(gemini) -> None:
    gemini.enqueue(*[answer] * 8)


def answered(proxy, status: str) -> float:
    """How many requests the proxy answered with ``status`` (its /metrics; an open proxy needs no key)."""
    text = httpx.get(proxy.url + "/metrics", timeout=30).text
    return sum(float(line.rpartition(" ")[2]) for line in text.splitlines()
               if line.startswith("proxy_requests_total{") and f'status="{status}"' in line)


def test_mcp_tool_added_mid_conversation_reaches_gemini_and_round_trips(node_modules, home, project, tmp_path,
                                                                        proxy, gemini):
    script(gemini)
    _, second = late_tool_session(node_modules, home, project, tmp_path, proxy.url)
    assert "echo:zebra" in second["result"]
    calls = model_calls(gemini)
    assert all(c["status"] == 200 for c in calls), [(c["status"], c["error"]) for c in calls]
    assert TOOL not in declared(calls[0])                 # the session started without it
    added = next(i for i, call in enumerate(calls) if TOOL in declared(call))
    assert added >= 1 and all(TOOL in declared(call) for call in calls[added:])
    # Claude Code's announcement (the system message's text beside its tool_addition) reached Gemini.
    assert TOOL in json.dumps(calls[added]["normalized"]["contents"][-1])
    responses = every_function_response(calls[-1])
    assert responses[-1]["name"] == TOOL and "echo:zebra" in json.dumps(responses[-1]["response"])


def test_claude_code_switches_a_refused_beta_off_and_retries(node_modules, home, project, tmp_path, make_proxy,
                                                             gemini):
    """With conformance.yaml refusing tool_addition, the proxy's 400 names the block's beta and
    anthropic-beta; Claude Code recognises it (header_rejected), drops mid-conversation-tool-changes
    for the session and retries: the session goes on."""
    spec = tmp_path / "spec"
    shutil.copytree(ROOT / "spec", spec)
    table = yaml.safe_load((spec / "conformance.yaml").read_text())
    table["blocks"]["tool_addition"].update(status="refused", message="tool_addition blocks are refused here")
    (spec / "conformance.yaml").write_text(yaml.safe_dump(table))
    content = yaml.safe_load((spec / "content.yaml").read_text())
    del content["blocks"]["tool_addition"]
    (spec / "content.yaml").write_text(yaml.safe_dump(content))
    proxy = make_proxy(SPEC_DIR=str(spec))
    script(gemini)
    late_tool_session(node_modules, home, project, tmp_path, proxy.url)
    assert answered(proxy, "400") >= 1                    # the tool_addition request was refused ...
    calls = model_calls(gemini)
    assert len(calls) >= 2 and all(c["status"] == 200 for c in calls)  # ... and its retry went through
    # Claude Code's own debug log: it read the 400 as the beta being refused (not as some other error),
    # which it only does when the message names the beta's header value and anthropic-beta.
    log = (tmp_path / "claude-debug.log").read_text()
    assert "[late-tool-additions] tool_addition rejected (header_rejected)" in log, log[-3000:]
