"""Server-sent-event framing: the ``event:`` line the SDKs dispatch on, one JSON object per event."""
from __future__ import annotations

import json
from typing import Any

PING = b'event: ping\ndata: {"type":"ping"}\n\n'
HEADERS = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
}


def frame(event: dict[str, Any]) -> bytes:
    data = json.dumps(event, ensure_ascii=False, separators=(",", ":"))
    return f"event: {event['type']}\ndata: {data}\n\n".encode()


def is_error(data: bytes) -> bool:
    """Whether ``data`` is an ``error`` event's frame (which always goes out alone, and last)."""
    return data.startswith(b"event: error\n")
