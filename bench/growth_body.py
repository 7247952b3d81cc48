"""A Claude Code turn late in a session: the captured request grown by N tool rounds to a target size.

Claude Code re-sends the whole conversation on every turn, so a long session's request is its first one
plus every tool round since: an assistant message (thinking with its signature, a line of text, one
``tool_use``) and the user message answering it (one ``tool_result`` of command or file output), about
2.4 KB each. The base is the real capture ``04-tool-parallel-thinking-followup`` (Claude Code 2.1.197:
thinking + two parallel tool calls) from ``/work/shared/fixtures/claude-code`` when it is there, else the
synthetic ``claude_code_request()``. Its tools are cut to 12, as Claude Code 2.1.330 sends (that version's
bodies are not among the captures; its summary says 12 tools, 49 KB for "say hello").

The rounds are in the proxy's own form: tool ids carry a Gemini thought signature
(``translator.encode_tool_id``) and thinking signatures the ``gm1:`` carrier, as the proxy hands them out;
Gemini's documented "skip validation" signature stands in for a real one, which the fake accepts for any
model. ``peers.peer_form`` turns it into what a peer would have handed out. Deterministic (seeded).
"""
from __future__ import annotations

import json
import random
from typing import Any

from translator import encode_tool_id

from .claude_code_request import DUMMY_SIGNATURE, _sentence, _text, claude_code_request
from .common import FIXTURES

BASE_FIXTURE = "04-tool-parallel-thinking-followup-request.json"
TOOLS_KEPT = 12
SIZES = {"49 KB": 49_000, "300 KB": 300_000, "1.1 MB": 1_100_000}
STALL_SIZES = {"900 KB": 900_000, "1.1 MB": 1_100_000}
_COMMANDS = ("pytest -x -q tests/", "git diff --stat", "ls -la src/", "rg -n 'def parse' src/", "make lint")


def encode(body: dict[str, Any]) -> bytes:
    """The body as Claude Code sends it: compact JSON, UTF-8."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def base_request() -> tuple[dict[str, Any], str]:
    """(the turn the growth starts from, where it came from), tools cut to ``TOOLS_KEPT``."""
    path = FIXTURES / BASE_FIXTURE
    if path.exists():
        body, source = json.loads(path.read_text()), f"Claude Code 2.1.197 capture {BASE_FIXTURE}"
        _as_if_proxied(body["messages"])
    else:
        body, source = claude_code_request(stream=True), "bench/claude_code_request.py (no captures here)"
    body["tools"] = body["tools"][:TOOLS_KEPT]
    body["stream"] = True
    return body, source


def _blocks(message: dict[str, Any]) -> list[dict[str, Any]]:
    return message["content"] if isinstance(message["content"], list) else []


def _as_if_proxied(messages: list[dict[str, Any]]) -> None:
    """The captured turns as if this proxy had answered them (the capture server's signature would be
    "Corrupted" to Gemini): thinking signatures in the ``gm1:`` carrier, tool ids carrying a signature on
    each step's first call, and the tool results naming the new ids."""
    new_ids: dict[str, str] = {}
    for message in messages:
        first = True
        for block in _blocks(message):
            if block.get("type") == "thinking" and block.get("signature"):
                block["signature"] = "gm1:" + DUMMY_SIGNATURE
            elif block.get("type") == "tool_use":
                new_ids[block["id"]] = block["id"] = encode_tool_id(
                    f"capture-call-{len(new_ids)}", DUMMY_SIGNATURE if first else None, "msg_capture")
                first = False
            elif block.get("type") == "tool_result":
                block["tool_use_id"] = new_ids.get(block["tool_use_id"], block["tool_use_id"])


def tool_round(index: int, rng: random.Random, signed: bool) -> list[dict[str, Any]]:
    """One tool round as Claude Code re-sends it: the assistant's call and the user's result (~2.4 KB)."""
    tool_id = encode_tool_id(f"growth-call-{index}", DUMMY_SIGNATURE, f"msg_growth_{index}")
    if index % 2:
        name, tool_input = "Read", {"file_path": f"/home/user/project/src/module_{index}.py"}
    else:
        name, tool_input = "Bash", {"command": rng.choice(_COMMANDS), "description": _sentence(rng, 3, 6)}
    assistant: list[dict[str, Any]] = []
    if signed:
        assistant.append({"type": "thinking", "thinking": _text(rng, 240), "signature": "gm1:" + DUMMY_SIGNATURE})
    assistant += [{"type": "text", "text": _sentence(rng, 6, 12)},
                  {"type": "tool_use", "id": tool_id, "name": name, "input": tool_input}]
    result = {"tool_use_id": tool_id, "type": "tool_result", "content": _text(rng, 1600)}
    return [{"role": "assistant", "content": assistant}, {"role": "user", "content": [result]}]


def _has_signed_thinking(body: dict[str, Any]) -> bool:
    return any(b.get("type") == "thinking" and b.get("signature")
               for m in body["messages"] if m["role"] == "assistant" for b in _blocks(m))


def _move_message_cache_marks(messages: list[dict[str, Any]]) -> None:
    """Claude Code marks the newest turn for caching: the history's markers move to the last block."""
    marks = 0
    for message in messages:
        for block in _blocks(message):
            marks += block.pop("cache_control", None) is not None
    if marks:
        messages[-1]["content"][-1]["cache_control"] = {"type": "ephemeral"}


def grown_request(target_bytes: int, seed: int = 26) -> dict[str, Any]:
    """The base turn plus as many tool rounds as bring its encoded size nearest ``target_bytes``."""
    body, _ = base_request()
    rng = random.Random(seed)
    signed = _has_signed_thinking(body)
    messages = body["messages"]
    size = len(encode(body))
    index = 0
    while True:
        pair = tool_round(index, rng, signed)
        step = len(encode(pair)) - 1  # the list's brackets out, a comma in
        if size + step / 2 > target_bytes:
            break
        messages += pair
        size += step
        index += 1
    _move_message_cache_marks(messages)
    return body


def rounds(body: dict[str, Any]) -> int:
    """How many tool rounds a grown turn carries beyond its base."""
    base, _ = base_request()
    return (len(body["messages"]) - len(base["messages"])) // 2


def grown_requests(sizes: dict[str, int] = SIZES) -> dict[str, dict[str, Any]]:
    """label → grown turn, for each target size."""
    return {label: grown_request(target) for label, target in sizes.items()}


if __name__ == "__main__":
    base, where = base_request()
    print(f"base: {where}, {len(encode(base))} bytes, {len(base['tools'])} tools")
    for label, grown in grown_requests().items():
        print(f"{label}: {len(encode(grown))} bytes, {rounds(grown)} rounds")
