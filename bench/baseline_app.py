"""Baseline apps served exactly like the proxy (same Hypercorn TOML, own process), to split the
proxy's added latency into its parts (used by bench/profile_proxy.py):

* ``POST /hop/v1/messages``: Quart reads the body and answers a constant Anthropic message (or the
  constant 11-event SSE stream): the cost of the extra HTTP hop (client + Hypercorn + Quart), no LiteLLM;
* ``POST /bare/v1/messages``: Quart + ``litellm.acompletion`` with fixed kwargs (those the translator
  makes for the benchmark's small request) and a minimal hand-written Anthropic answer/SSE framing:
  what any Quart-on-LiteLLM proxy pays, without our translator, routing, retries, queue or grace logic.

``hypercorn --config <toml> bench.baseline_app:app`` with BENCH_LITELLM_KWARGS (JSON) in the environment.
"""
from __future__ import annotations

import json
import os

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm  # noqa: E402
from quart import Quart, Response, request  # noqa: E402

litellm.suppress_debug_info = True
litellm.num_retries = 0
KWARGS = json.loads(os.environ.get("BENCH_LITELLM_KWARGS", "{}"))
TEXT = "Hello from the fake Gemini server. How can I help?"
SSE = {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache"}

app = Quart(__name__)


def _message(text: str, usage: dict) -> dict:
    return {"id": "msg_bench", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": usage}


def _frame(event: dict) -> bytes:
    return f"event: {event['type']}\ndata: {json.dumps(event, separators=(',', ':'))}\n\n".encode()


def _head() -> list[dict]:
    return [{"type": "message_start", "message": {**_message("", {"input_tokens": 0, "output_tokens": 1}),
                                                  "content": [], "stop_reason": None}},
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}]


def _tail(usage: dict) -> list[dict]:
    return [{"type": "content_block_stop", "index": 0},
            {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": usage},
            {"type": "message_stop"}]


def _delta(text: str) -> dict:
    return {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}


@app.get("/health")
async def health() -> Response:
    return Response('{"status": "ok"}', content_type="application/json")


@app.post("/hop/v1/messages")
async def hop() -> Response:
    body = json.loads(await request.get_data())
    usage = {"input_tokens": 16, "output_tokens": 13}
    if not body.get("stream"):
        return Response(json.dumps(_message(TEXT, usage)), content_type="application/json")

    async def events():
        for e in _head():
            yield _frame(e)
        for i in range(0, len(TEXT), 8):
            yield _frame(_delta(TEXT[i:i + 8]))
        for e in _tail(usage):
            yield _frame(e)

    response = Response(events(), headers=SSE)
    response.timeout = None
    return response


@app.post("/bare/v1/messages")
async def bare() -> Response:
    body = json.loads(await request.get_data())
    if not body.get("stream"):
        r = await litellm.acompletion(**KWARGS, timeout=600.0)
        usage = {"input_tokens": r.usage.prompt_tokens, "output_tokens": r.usage.completion_tokens}
        return Response(json.dumps(_message(r.choices[0].message.content, usage)), content_type="application/json")
    stream = await litellm.acompletion(**KWARGS, stream=True, stream_options={"include_usage": True})
    first = await stream.__anext__()

    async def events():
        usage = {"input_tokens": 0, "output_tokens": 0}
        for e in _head():
            yield _frame(e)
        chunk = first
        while True:
            if chunk.choices and chunk.choices[0].delta.content:
                yield _frame(_delta(chunk.choices[0].delta.content))
            u = getattr(chunk, "usage", None)
            if u:
                usage = {"input_tokens": u.prompt_tokens, "output_tokens": u.completion_tokens}
            try:
                chunk = await stream.__anext__()
            except StopAsyncIteration:
                break
        for e in _tail(usage):
            yield _frame(e)

    response = Response(events(), headers=SSE)
    response.timeout = None
    return response
