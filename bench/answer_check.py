"""Whether an answer is a valid Anthropic stream, and a Claude Code request in the form each server would get
it: shared by the peers suite (bench/peers.py) and the session-growth suite (bench/session_growth.py)."""
from __future__ import annotations

import json
import re
from typing import Any


def parse_sse_lenient(raw: str) -> tuple[list[tuple[str, Any]], list[str]]:
    """(event name, JSON data) of each SSE frame, accepting what the SSE format allows (CRLF, ``data:`` without
    a space, comments, several data lines); the second list names what departs from the canonical framing."""
    events, remarks = [], []
    for frame in raw.replace("\r\n", "\n").split("\n\n"):
        name, data = "?", []
        for line in frame.split("\n"):
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                data.append(value)
            elif line and field:
                remarks.append(f"unknown line {line[:60]!r}")
        if data:
            events.append((name, json.loads("\n".join(data))))
    return events, sorted(set(remarks))


def stream_summary(events: list[tuple[str, Any]]) -> dict[str, Any]:
    """What a stream held, valid or not: events, block types, the last stop_reason and output token count."""
    datas = [data for _, data in events if isinstance(data, dict)]
    finals = [d for d in datas if d.get("type") == "message_delta"]
    usage = (finals[-1].get("usage") or {}) if finals else {}
    return {"events": len(events),
            "blocks": ",".join(str((d.get("content_block") or {}).get("type")) for d in datas
                               if d.get("type") == "content_block_start"),
            "stop_reason": (finals[-1].get("delta") or {}).get("stop_reason") if finals else None,
            "output_tokens": usage.get("output_tokens") if isinstance(usage, dict) else None}


def check_answer(status: int, content_type: str, raw: bytes) -> dict[str, Any]:
    """Whether an answer is a valid Anthropic stream (tests/sse_grammar.py's checker on the frames, then a
    non-zero output usage), and what was wrong when not."""
    from tests.sse_grammar import GrammarError, check_stream

    out: dict[str, Any] = {"status": status, "bytes": len(raw), "valid": False, "problem": ""}
    text = raw.decode(errors="replace")
    if status != 200 or "text/event-stream" not in content_type:
        out["problem"] = f"HTTP {status} {content_type or '-'}: {upstream_message(text)[:300]}"
        return out
    try:
        events, remarks = parse_sse_lenient(text)
    except ValueError as exc:
        out["problem"] = f"not SSE with JSON data: {exc}"[:300]
        return out
    out.update(stream_summary(events), remarks=remarks)
    try:
        check_stream("".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events))
    except (GrammarError, KeyError, TypeError, AttributeError) as exc:
        out["problem"] = f"{type(exc).__name__}: {exc}"[:300]
        return out
    if not out["output_tokens"]:
        out["problem"] = "message_delta reports no output tokens"
    else:
        out["valid"] = True
    return out


def peer_form(body: dict[str, Any], variant: str) -> dict[str, Any]:
    """A copy of a Claude Code request in ``variant``'s form, as it would get it in a conversation it answered:
    the thinking signatures in its own form (the proxy's ``gm1:`` carrier; the bare Gemini signature for a peer,
    as they hand it out)."""
    body = json.loads(json.dumps(body))
    if variant != "proxy":
        for message in body["messages"]:
            for block in message["content"] if isinstance(message["content"], list) else ():
                if block.get("type") == "thinking":
                    block["signature"] = block["signature"].removeprefix("gm1:")
    return body


def without_cache_control(body: dict[str, Any]) -> dict[str, Any]:
    """A copy without ``cache_control`` (LiteLLM turns it into a call to Gemini's cachedContents API, which the
    fake does not serve)."""
    bare = json.loads(json.dumps(body))
    system = bare.get("system")
    for block in [*(system if isinstance(system, list) else ()),
                  *(b for m in bare["messages"] if isinstance(m["content"], list) for b in m["content"])]:
        block.pop("cache_control", None)
    return bare


def claude_code_bodies(variant: str) -> dict[str, bytes]:
    """The Claude-Code-shaped streamed request in ``variant``'s form (peer_form), as sent and without
    ``cache_control``."""
    from .claude_code_request import claude_code_request

    body = peer_form(claude_code_request(stream=True), variant)
    return {"as sent": json.dumps(body).encode(), "no cache_control": json.dumps(without_cache_control(body)).encode()}


def upstream_message(text: str) -> str:
    """The innermost ``message`` of an error body (peers nest Gemini's error JSON in strings), else its start."""
    for _ in range(4):
        text = text.replace('\\"', '"')
    found = re.findall(r'"message":\s*"([^"]{8,})', text)
    return found[-1] if found else text
