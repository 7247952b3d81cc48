"""A fake Google Gemini REST server (aiohttp), as strict as the real API, for tests and benchmarks.

Routes
------
``POST /{v1beta|v1alpha|v1}/models/{model}:generateContent``
``POST /{...}/models/{model}:streamGenerateContent`` (``?alt=sse``: ``data: {json}\\r\\n\\r\\n`` frames; without it a
JSON array, like the real API)
``POST /{...}/models/{model}:countTokens`` (``{"contents": [...]}`` or ``{"generateContentRequest": {...}}``)
The Batch API (``models/{m}:batchGenerateContent`` with inlined requests, ``batches/{id}`` get / ``:cancel`` /
delete: ``batches.py``) and the Files API (resumable upload, ``files/{id}`` get / delete: ``files.py``), per key.
Anything else (``cachedContents`` included) is logged and answered 404 in Google's error shape.

Usage
-----
::

    with FakeGemini().start() as fake:            # background thread with its own event loop
        fake.enqueue({"text": "hi"}, {"tool_calls": [("Bash", {"command": "ls"})]})
        litellm.acompletion(model="gemini/gemini-2.5-pro", api_base=fake.base_url, api_key="k", ...)
        fake.wait_for(lambda reqs: reqs and reqs[-1]["finished_at"])

``python -m tests.fake_gemini --port 8999 [--quiet] [--default-spec JSON] [--backlog N]`` runs it in the foreground
and prints ``PORT n`` (the benchmarks start it so, with ``--quiet --backlog 4096``).

Answer specs (dict, or callable(record) -> dict) are taken FIFO; the first queued spec whose ``"action"`` matches is
used (no ``"action"`` = generateContent/streamGenerateContent; ``"action": "countTokens"`` scripts a countTokens
answer, e.g. an error).  Requests rejected by validation do NOT consume a spec (a context-size rejection does).
With an empty queue the answer is the text "Hello from the fake Gemini." (STOP).

Token figures (deterministic; ``ceil`` = round up; "canonical JSON" = ``json.dumps(obj, sort_keys=True,
separators=(",", ":"), ensure_ascii=False)`` of the body after normalising every key to camelCase; length in
characters)::

    promptTokenCount     = ceil(len(canonical JSON of {"contents": ..., "systemInstruction": ..., "tools": ...}) / 4)
                           (systemInstruction / tools keys only when present in the request)
    candidatesTokenCount = ceil((chars of non-thought text parts + len(canonical JSON of each functionCall object)) / 4),
                           at least 1 when the answer has any such part; omitted when 0
    thoughtsTokenCount   = ceil(chars of thought text / 4); omitted when 0
    totalTokenCount      = prompt + candidates + thoughts (+ toolUsePromptTokenCount if a spec sets it)
    countTokens          = {"totalTokens": promptTokenCount formula applied to what it is given}

A spec's ``"usage"`` dict overrides usageMetadata fields (total is recomputed unless overridden too).

Answer spec keys (all optional)::

    parts=[Gemini parts]  text="..."  tool_calls=[("Bash", {"command": "ls"}[, "call-id"]) | {"name","args","id"}]
    thinking="..." (prepended thought part)   finish_reason="STOP"|"MAX_TOKENS"|"SAFETY"|...   finish_message="..."
    prompt_blocked="SAFETY"   usage={...usageMetadata overrides}   sign=False (no fake-issued signature)
    error={"code": 429, "status": ..., "message": ..., "retry_delay": "7s", "details": [...]}
    delay_s  chunk_delay_s  text_chunks=n  cut_after_chunks=k  malformed_chunk_after=k  hang=True
    input_limit=N (context-size rejection threshold)   action="countTokens" (+ total_tokens=N, error, delay_s)
    grounding={"queries": [...], "sources": [[url, title], ...]}: Google Search grounding metadata on the
      candidate (the last chunk when streamed), only when the request has a googleSearch tool, as Gemini does;
      grounding_alone="middle"|"last": streamed on a chunk with nothing else before the last one, or on a
      closing chunk of its own with an empty text part
    url_context=[[url, status?], ...]: urlContextMetadata on the candidate (the last chunk when streamed), only when
      the request has a urlContext tool; status defaults to URL_RETRIEVAL_STATUS_SUCCESS

``fake.refuse(model, finish_reason="SAFETY" | prompt_blocked="PROHIBITED_CONTENT")``: that model (only it) refuses
every generate call without taking a spec from the queue (other models answer from it); ``reset()`` ends it.
Service tier: ``serviceTier`` must be one of Gemini's ServiceTier values (standard, flex, priority, or their
SERVICE_TIER_* names); a priority call is answered with ``x-gemini-service-tier: priority`` on Gemini 3+ models and
``standard`` elsewhere or when ``fake.priority_downgrade`` is set (recorded as ``service_tier``).

Request record: method, path, model, action, query, headers (keys lower-cased), body (as sent), normalized (camelCase
body, handy for callable specs), status, error, disconnected, cut (the fake aborted the stream), started_at,
finished_at, used_dummy_signature.

Thought signatures: issued by the fake (random base64 + an HMAC bound to the model name, so a signature replayed
to another model is "Corrupted"), recorded in ``issued_signatures`` (not when keep_log=False; validation does not
need the set).  The dummy ``c2tpcF90aG91Z2h0X3NpZ25hdHVyZV92YWxpZGF0b3I=`` is accepted and flagged in the record.
Structured output: with ``responseMimeType: application/json`` and a ``responseJsonSchema`` (or ``responseSchema``),
a spec without content keys (parts, text, tool_calls, thinking) answers the JSON text of the smallest value that fits
the schema (``schemas.minimal_instance``); without a schema, the default text as a JSON string.  A scripted ``text``
is sent as it is (to test what the proxy does with an answer that breaks the schema).
Request rules beyond the shapes (each a 400 INVALID_ARGUMENT, Gemini's text where it is known):
functionCallingConfig.mode AUTO/ANY/NONE/VALIDATED, allowedFunctionNames only with ANY or VALIDATED and only declared
names; at most one of responseSchema / responseJsonSchema, each only with a compatible responseMimeType
(application/json; text/x.enum for a string-enum responseSchema), ``$ref`` rules of responseJsonSchema; fileData
with fileUri (http(s)/gs) and mimeType and nothing else; no JSON mode (a response schema or application/json)
together with tools on Gemini 2.x (3+ takes both); thinkingBudget on 2.5 Pro 128..32768 (not 0), 2.5 Flash
0..24576, 2.5 Flash-Lite 0 or 512..24576, -1 (dynamic) everywhere.
Sampling rule: gemini-3.5-flash-lite / 3.6 / 3.7 / 3.8-flash refuse topP, topK and any temperature other than 1.0
(LiteLLM sends temperature=1.0 to every Gemini 3+ model by default).
In async tests use ``await fake.wait_for_async(pred)``: the blocking ``wait_for`` would stall the loop that has to
close the client's socket.

Modules: ``routes`` (the aiohttp app, its handlers, FakeGemini, ``main``), ``validation`` (normalisation, the model
table, request / schema / generationConfig / part checks, ``Reject``), ``signatures`` (issuing and checking thought
signatures), ``answers`` (answers, stream chunks, usage, grounding), ``schemas`` (responseJsonSchema rules, the
smallest value that fits a schema).
"""

from .answers import DEFAULT_TEXT, prompt_token_count
from .routes import FakeGemini
from .signatures import DUMMY_SIGNATURE

__all__ = ["DEFAULT_TEXT", "DUMMY_SIGNATURE", "FakeGemini", "prompt_token_count"]
