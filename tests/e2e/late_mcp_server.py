"""A stdio MCP server whose one tool becomes ready only after the session started.

    python late_mcp_server.py READY_FIFO LISTED_FIFO

It answers ``initialize`` at once and lists no tools, so Claude Code starts without it. A line written
to READY_FIFO (by the test, after the first turn) makes the tool ready: the server sends
``notifications/tools/list_changed``, and when Claude Code lists the tools again (now with
``late_echo``) it writes a line to LISTED_FIFO, so the test knows Claude Code has seen it. Calls to
``late_echo`` answer ``echo:<word>``. Hand-written JSON-RPC over stdin/stdout (three methods and a
notification), so the test suite needs no MCP library.
"""
from __future__ import annotations

import json
import os
import sys
import threading

TOOL = {"name": "late_echo", "description": "Echo a word back, prefixed with echo:",
        "inputSchema": {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]}}

_write = threading.Lock()
_ready = threading.Event()
_told = threading.Event()


def send(message: dict) -> None:
    with _write:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()


def wait_until_ready(ready_fifo: str) -> None:
    with open(ready_fifo, encoding="utf-8") as fifo:
        fifo.readline()
    _ready.set()
    send({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"})


def answer(message: dict, listed_fifo: str) -> dict | None:
    method, params = message.get("method"), message.get("params") or {}
    if method == "initialize":
        return {"protocolVersion": params.get("protocolVersion", "2025-06-18"),
                "capabilities": {"tools": {"listChanged": True}}, "serverInfo": {"name": "late", "version": "1.0.0"}}
    if method == "tools/list":
        if not _ready.is_set():
            return {"tools": []}
        if not _told.is_set():  # the test holds the FIFO open for reading: this write never blocks
            _told.set()
            fifo = os.open(listed_fifo, os.O_WRONLY | os.O_NONBLOCK)
            os.write(fifo, b"listed\n")
            os.close(fifo)
        return {"tools": [TOOL]}
    if method == "tools/call":
        return {"content": [{"type": "text", "text": "echo:" + str(params.get("arguments", {}).get("word", ""))}]}
    return {}


def main(ready_fifo: str, listed_fifo: str) -> None:
    threading.Thread(target=wait_until_ready, args=(ready_fifo,), daemon=True).start()
    for line in sys.stdin:
        message = json.loads(line)
        if "id" in message and "method" in message:
            send({"jsonrpc": "2.0", "id": message["id"], "result": answer(message, listed_fifo)})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
