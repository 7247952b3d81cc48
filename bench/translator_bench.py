"""Suite 1: the translator alone, per operation, as the service calls it.

* request: the Claude-Code-sized request (bench/claude_code_request.py) → LiteLLM arguments,
  ``translate_request(body, spec, tool_cache=DeclarationCache(256))`` with a warm cache, a fresh
  ``json.loads`` of the body before each call (outside the timing), as the service does;
* the same for the real Claude Code captures in /work/shared/fixtures/claude-code when present (info);
* stream: 1,000 LiteLLM ``ModelResponseStream`` chunks (captured once from a real
  ``litellm.acompletion(stream=True)`` against the fake, in a thread of this process) → SSE bytes:
  ``StreamTranslator.start/feed/finish`` + ``service.web.sse.frame`` per event; per chunk and per stream.
"""
from __future__ import annotations

import asyncio
import gc
import json
import time
from typing import Any

from . import common
from .claude_code_request import claude_code_request, describe

STREAM_CHUNKS = 1000


def _capture_chunks(call_kwargs: dict[str, Any]) -> list[Any]:
    import litellm

    from tests.fake_gemini import FakeGemini

    litellm.suppress_debug_info = True
    text = "".join(f"word{i % 97:02d} and more, " for i in range(STREAM_CHUNKS))  # ~17 chars a piece
    with FakeGemini(keep_log=False, default_spec={"text": text, "text_chunks": STREAM_CHUNKS}) as fake:
        async def capture() -> list[Any]:
            stream = await litellm.acompletion(**call_kwargs, api_base=fake.base_url, api_key=common.API_KEY)
            return [chunk async for chunk in stream]

        return asyncio.run(capture())


def _time_request(body_bytes: bytes, spec, cache, n: int, budget_s: float) -> list[float]:
    import translator

    samples: list[float] = []
    deadline = time.perf_counter() + budget_s
    for _ in range(n):
        body = json.loads(body_bytes)
        t0 = time.perf_counter()
        translator.translate_request(body, spec, tool_cache=cache)
        samples.append(time.perf_counter() - t0)
        if time.perf_counter() > deadline:
            break
    return samples


def run(quick: bool = False) -> dict[str, Any]:
    import translator
    from service.web.sse import frame

    spec = translator.load_spec()
    n_req = 300 if quick else 2000
    n_streams = 10 if quick else 60
    results: dict[str, Any] = {}

    # ---- request
    body = claude_code_request()
    body_bytes = json.dumps(body).encode()
    results["request_shape"] = describe(body)
    cache = translator.DeclarationCache(spec.tools.declaration_cache_size)
    t0 = time.perf_counter()
    translator.translate_request(json.loads(body_bytes), spec, tool_cache=cache)
    cold = time.perf_counter() - t0
    _time_request(body_bytes, spec, cache, 50, 5)  # warm-up
    gc.collect()
    warm = _time_request(body_bytes, spec, cache, n_req, 30)
    loads = []
    for _ in range(min(n_req, 300)):
        t0 = time.perf_counter()
        json.loads(body_bytes)
        loads.append(time.perf_counter() - t0)
    rows = [("translate_request, generated (warm cache)", summary := common.summary(warm)),
            ("translate_request, generated (cold, 1 call)", common.summary([cold])),
            ("json.loads of the same body (for scale)", common.summary(loads))]
    results["request"] = {"warm": summary, "cold_ms": cold * 1000, "json_loads": common.summary(loads),
                          "samples_ms": [s * 1000 for s in warm]}

    fixtures = {}
    if common.FIXTURES.is_dir():
        for path in sorted(common.FIXTURES.glob("*-request.json")):
            try:
                data = json.loads(path.read_text())
            except ValueError:
                continue
            if not (isinstance(data, dict) and "messages" in data and "model" in data):
                continue
            raw = json.dumps(data).encode()
            fcache = translator.DeclarationCache(spec.tools.declaration_cache_size)
            try:
                _time_request(raw, spec, fcache, 20, 2)
            except Exception as exc:  # noqa: BLE001 - a fixture the translator refuses is reported, not fatal
                fixtures[path.name] = {"error": f"{type(exc).__name__}: {exc}"[:200]}
                continue
            s = common.summary(_time_request(raw, spec, fcache, 60 if quick else 200, 3))
            s["bytes"] = len(raw)
            fixtures[path.name] = s
            rows.append((f"  fixture {path.name} ({len(raw) // 1024} KB)", s))
    results["fixtures"] = fixtures

    print(common.table(["operation", "n", "median ms", "p90 ms", "p99 ms"],
                       [(name, s["n"], s["median"], s["p90"], s["p99"]) for name, s in rows],
                       title=f"\n== 1. Translator: Claude-Code-sized request → LiteLLM arguments "
                             f"({results['request_shape']['bytes'] // 1024} KB, "
                             f"{results['request_shape']['tools']} tools)"))

    # ---- stream
    small = {"model": "claude-haiku-4-5", "max_tokens": 4096, "stream": True,
             "messages": [{"role": "user", "content": "Write a long answer."}]}
    call = translator.translate_request(small, spec, tool_cache=cache)
    chunks = _capture_chunks(call.kwargs)
    per_chunk: list[float] = []
    per_stream: list[float] = []
    events_per_stream = bytes_per_stream = 0
    for rep in range(n_streams + 3):
        measured = rep >= 3  # three warm-up streams
        gc.collect()
        t_stream = time.perf_counter()
        stream = translator.StreamTranslator(call, spec, "msg_1")
        out = [frame(e) for e in stream.start()]
        for chunk in chunks:
            t0 = time.perf_counter()
            out += [frame(e) for e in stream.feed(chunk)]
            if measured:
                per_chunk.append(time.perf_counter() - t0)
        out += [frame(e) for e in stream.finish()]
        if measured:
            per_stream.append(time.perf_counter() - t_stream)
        events_per_stream, bytes_per_stream = len(out), sum(map(len, out))
    # per-chunk timing adds two perf_counter calls per chunk; an untimed loop for the total:
    untimed: list[float] = []
    for _ in range(n_streams):
        t0 = time.perf_counter()
        stream = translator.StreamTranslator(call, spec, "msg_1")
        out = [frame(e) for e in stream.start()]
        for chunk in chunks:
            out += [frame(e) for e in stream.feed(chunk)]
        out += [frame(e) for e in stream.finish()]
        untimed.append(time.perf_counter() - t0)
    results["stream"] = {"chunks": len(chunks), "chunk_type": type(chunks[0]).__module__ + "." + type(chunks[0]).__name__,
                         "events": events_per_stream, "sse_bytes": bytes_per_stream,
                         "per_chunk_us": common.summary(per_chunk, 1e6), "per_stream_ms": common.summary(untimed),
                         "per_stream_timed_ms": common.summary(per_stream)}
    pc, ps = results["stream"]["per_chunk_us"], results["stream"]["per_stream_ms"]
    print(common.table(["operation", "n", "median", "p90", "p99", "unit"], [
        ("feed + frame, one chunk", pc["n"], pc["median"], pc["p90"], pc["p99"], "µs"),
        (f"whole stream ({len(chunks)} chunks → {events_per_stream} events, {bytes_per_stream // 1024} KB)",
         ps["n"], ps["median"], ps["p90"], ps["p99"], "ms"),
    ], title=f"\n== 1. Translator: {len(chunks)}-chunk LiteLLM stream → SSE bytes ({results['stream']['chunk_type']})"))

    _plot(results, warm, per_chunk)
    return results


def _plot(results: dict[str, Any], warm: list[float], per_chunk: list[float]) -> None:
    plt = common.pyplot()
    if plt is None:
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    axes[0].hist([s * 1000 for s in warm], bins=60, color="tab:blue")
    axes[0].axvline(0.5, color="red", linestyle="--", label="target 0.5 ms")
    axes[0].set_xlabel("translate_request, ms (warm cache)")
    axes[0].set_ylabel("calls")
    axes[0].set_title(f"Claude-Code-sized request ({results['request_shape']['bytes'] // 1024} KB)")
    axes[0].legend()
    data = sorted(s * 1e6 for s in per_chunk)
    axes[1].hist(data[: int(len(data) * 0.995)], bins=60, color="tab:green")
    axes[1].set_xlabel("feed + frame per chunk, µs (to p99.5)")
    axes[1].set_title(f"{results['stream']['chunks']}-chunk stream → SSE")
    fig.tight_layout()
    path = common.RESULTS / "translator.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    results["plot"] = str(path)
