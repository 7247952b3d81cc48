"""A fake Google Gemini REST server (aiohttp), as strict as the real API, for tests and benchmarks.

Routes
------
``POST /{v1beta|v1alpha|v1}/models/{model}:generateContent``
``POST /{...}/models/{model}:streamGenerateContent`` (``?alt=sse``: ``data: {json}\\r\\n\\r\\n`` frames; without it a
JSON array, like the real API)
``POST /{...}/models/{model}:countTokens`` (``{"contents": [...]}`` or ``{"generateContentRequest": {...}}``)
Anything else (``cachedContents`` included) is logged and answered 404 in Google's error shape.

Usage
-----
::

    with FakeGemini().start() as fake:            # background thread with its own event loop
        fake.enqueue({"text": "hi"}, {"tool_calls": [("Bash", {"command": "ls"})]})
        litellm.acompletion(model="gemini/gemini-2.5-pro", api_base=fake.base_url, api_key="k", ...)
        fake.wait_for(lambda reqs: reqs and reqs[-1]["finished_at"])

``python -m tests.fake_gemini --port 8999 [--quiet]`` runs it in the foreground and prints ``PORT n``.

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

Request record: method, path, model, action, query, headers (keys lower-cased), body (as sent), normalized (camelCase
body, handy for callable specs), status, error, disconnected, cut (the fake aborted the stream), started_at,
finished_at, used_dummy_signature.

Thought signatures: issued by the fake (random base64 + an HMAC bound to the model name, so a signature replayed
to another model is "Corrupted"), recorded in ``issued_signatures`` (not when keep_log=False; validation does not
need the set).  The dummy ``c2tpcF90aG91Z2h0X3NpZ25hdHVyZV92YWxpZGF0b3I=`` is accepted and flagged in the record.
Sampling rule: gemini-3.5-flash-lite / 3.6 / 3.7 / 3.8-flash refuse topP, topK and any temperature other than 1.0
(LiteLLM sends temperature=1.0 to every Gemini 3+ model by default).
In async tests use ``await fake.wait_for_async(pred)``: the blocking ``wait_for`` would stall the loop that has to
close the client's socket.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import collections
import hashlib
import hmac
import json
import math
import re
import secrets
import sys
import threading
import time
from typing import Any, Callable

from aiohttp import web

DUMMY_SIGNATURE = "c2tpcF90aG91Z2h0X3NpZ25hdHVyZV92YWxpZGF0b3I="
DEFAULT_TEXT = "Hello from the fake Gemini."
DEFAULT_INPUT_LIMIT = 1048576
_ACTIONS = ("generateContent", "streamGenerateContent", "countTokens")

_HTTP_STATUS = {
    400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
    409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 499: "CANCELLED", 500: "INTERNAL", 501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
}
_DEFAULT_MESSAGES = {
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}

_TOP_KEYS = frozenset({"contents", "systemInstruction", "tools", "toolConfig", "generationConfig",
                       "safetySettings", "cachedContent", "labels"})
_CONTENT_KEYS = frozenset({"role", "parts"})
_PART_DATA = ("text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
              "codeExecutionResult")
_PART_KEYS = frozenset(_PART_DATA) | {"thought", "thoughtSignature", "videoMetadata", "partMetadata",
                                      "mediaResolution"}
_FC_KEYS = frozenset({"id", "name", "args", "partialArgs", "willContinue"})
_FR_KEYS = frozenset({"id", "name", "response", "parts", "willContinue", "scheduling"})
_INLINE_KEYS = frozenset({"mimeType", "data", "displayName"})
_FILE_KEYS = frozenset({"mimeType", "fileUri", "displayName"})
_TOOL_KEYS = frozenset({"functionDeclarations", "googleSearch", "googleSearchRetrieval", "codeExecution",
                        "urlContext", "fileSearch", "computerUse", "googleMaps", "retrieval", "mcpServers",
                        "enterpriseWebSearch"})
_FD_KEYS = frozenset({"name", "description", "parameters", "parametersJsonSchema", "response",
                      "responseJsonSchema", "behavior"})
_SCHEMA_KEYS = frozenset({"type", "format", "title", "description", "nullable", "enum", "items", "minItems",
                          "maxItems", "properties", "required", "propertyOrdering", "minProperties",
                          "maxProperties", "minimum", "maximum", "minLength", "maxLength", "pattern", "example",
                          "default", "anyOf"})
_SCHEMA_TYPES = frozenset({"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"})
_FORMATS = {"STRING": {"enum", "date-time"}, "NUMBER": {"float", "double"}, "INTEGER": {"int32", "int64"}}
_GEN_KEYS = frozenset({"temperature", "topP", "topK", "candidateCount", "maxOutputTokens", "stopSequences",
                       "presencePenalty", "frequencyPenalty", "seed", "responseMimeType", "responseSchema",
                       "responseJsonSchema", "responseLogprobs", "logprobs", "thinkingConfig", "mediaResolution",
                       "responseModalities", "speechConfig", "imageConfig"})
_THINK_KEYS = frozenset({"thinkingBudget", "thinkingLevel", "includeThoughts"})
_THINK_LEVELS = frozenset({"MINIMAL", "LOW", "MEDIUM", "HIGH"})
_TOOLCONFIG_KEYS = frozenset({"functionCallingConfig", "retrievalConfig", "includeServerSideToolInvocations"})
_FNAME_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_.:-]{0,127}$")
_MODEL_RE = re.compile(r"gemini-(\d+)(?:\.(\d+))?")
# keys whose values are user data (never renamed)
_OPAQUE = frozenset({"args", "response", "parametersJsonSchema", "responseJsonSchema", "labels", "default",
                     "example", "enum", "partialArgs", "required", "propertyOrdering"})
_SAFETY_RATINGS = [
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
]


class Reject(Exception):
    """A request the real API would refuse."""

    def __init__(self, message: str, code: int = 400, status: str = "INVALID_ARGUMENT", details=None):
        super().__init__(message)
        self.message, self.code, self.status, self.details = message, code, status, details


def _unknown(name: str, path: str | None = None) -> Reject:
    where = f" at '{path}'" if path else ""
    return Reject(f'Invalid JSON payload received. Unknown name "{name}"{where}: Cannot find field.')


# ----------------------------------------------------------------------------------------------- normalisation
_camel_cache: dict[str, str] = {}


def _camel(key: str) -> str:
    c = _camel_cache.get(key)
    if c is None:
        if "_" in key.strip("_"):
            head, *rest = key.split("_")
            c = head + "".join(p[:1].upper() + p[1:] for p in rest)
        else:
            c = key
        if len(_camel_cache) < 10000:
            _camel_cache[key] = c
    return c


def normalize(obj: Any) -> Any:
    """Return a copy with every protobuf field name in camelCase (user data such as args/response/property names
    kept verbatim).  Both spellings of one field in the same object -> Reject."""
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            ck = _camel(k) if "_" in k else k
            if ck in out:
                raise Reject(f'Invalid JSON payload received. Duplicate field "{k}" (also given as "{ck}").')
            if ck in _OPAQUE:
                out[ck] = v
            elif ck == "properties" and isinstance(v, dict):
                out[ck] = {pk: normalize(pv) for pk, pv in v.items()}
            else:
                out[ck] = normalize(v)
        return out
    if isinstance(obj, list):
        return [normalize(x) for x in obj]
    return obj


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def prompt_token_count(req: dict) -> int:
    """promptTokenCount of a normalised (camelCase) GenerateContentRequest."""
    obj = {"contents": req.get("contents")}
    for k in ("systemInstruction", "tools"):
        if k in req:
            obj[k] = req[k]
    return math.ceil(len(_canonical(obj)) / 4)


# ----------------------------------------------------------------------------------------------- model table
class ModelInfo:
    __slots__ = ("name", "gen", "is3", "max_output", "no_minimal", "no_sampling", "budget_range")

    def __init__(self, name: str):
        self.name = name
        m = _MODEL_RE.search(name)
        self.gen = int(m.group(1)) if m else 0
        self.is3 = self.gen >= 3
        self.max_output = 8192 if (self.gen < 2 or name.startswith("gemini-2.0")) else 65536
        self.no_minimal = name.startswith(("gemini-3.7-flash", "gemini-3.8-flash", "gemini-4-argon"))
        self.no_sampling = name.startswith(("gemini-3.6-flash", "gemini-3.7-flash", "gemini-3.8-flash",
                                            "gemini-3.5-flash-lite"))
        # (allowed low, high, allow_zero) of thinkingBudget for 2.5 models (-1 = dynamic always allowed)
        if name.startswith("gemini-2.5-pro"):
            self.budget_range = (128, 32768, False)
        elif name.startswith("gemini-2.5-flash-lite"):
            self.budget_range = (512, 24576, True)
        elif name.startswith("gemini-2.5-flash"):
            self.budget_range = (1, 24576, True)
        else:
            self.budget_range = None


_model_cache: dict[str, ModelInfo] = {}


def model_info(name: str) -> ModelInfo:
    mi = _model_cache.get(name)
    if mi is None:
        mi = _model_cache[name] = ModelInfo(name)
    return mi


# ----------------------------------------------------------------------------------------------- validation
def _check_keys(d: dict, allowed: frozenset, path: str) -> None:
    for k in d:
        if k not in allowed:
            raise _unknown(k, path)


def _check_b64(data: Any, path: str) -> None:
    if not isinstance(data, str) or not data:
        raise Reject(f"* GenerateContentRequest.{path}: inline_data.data must not be empty")
    s = data.strip()
    if "-" in s or "_" in s:
        s = s.replace("-", "+").replace("_", "/")
    s += "=" * (-len(s) % 4)
    try:
        binascii.a2b_base64(s, strict_mode=True)
    except (binascii.Error, ValueError):
        raise Reject(f"Invalid value at '{path}' (TYPE_BYTES), Base64 decoding failed for \"{data[:40]}\"")


def _check_function_part(v: Any, keys: frozenset, where: str, mi: "ModelInfo") -> None:
    """What functionCall and functionResponse share: an object, known keys, ids only on Gemini 3+, a name."""
    if not isinstance(v, dict):
        raise Reject(f"Invalid value at '{where}'")
    _check_keys(v, keys, where)
    if "id" in v and not mi.is3:
        raise _unknown("id", where)
    if not v.get("name"):
        raise Reject(f"* GenerateContentRequest.{where}.name: Name cannot be empty.")


def _check_part(part: Any, path: str, mi: ModelInfo) -> None:
    if not isinstance(part, dict):
        raise Reject(f"Invalid value at '{path}' (type.googleapis.com/google.ai.generativelanguage.v1beta.Part)")
    _check_keys(part, _PART_KEYS, path)
    data = [k for k in _PART_DATA if k in part]
    if not data:
        raise Reject(f"* GenerateContentRequest.{path}.data: required oneof field 'data' must have one "
                     "initialized field")
    if len(data) > 1:
        raise Reject(f"Invalid value at '{path}' (oneof), oneof field 'data' is already set. "
                     f"Cannot set '{data[1]}'")
    kind = data[0]
    v = part[kind]
    if kind == "text":
        if not isinstance(v, str):
            raise Reject(f"Invalid value at '{path}.text' (TYPE_STRING), {json.dumps(v)}")
    elif kind == "inlineData":
        if not isinstance(v, dict):
            raise Reject(f"Invalid value at '{path}.inline_data'")
        _check_keys(v, _INLINE_KEYS, f"{path}.inline_data")
        mt = v.get("mimeType")
        if not mt:
            raise Reject(f"* GenerateContentRequest.{path}.inline_data.mime_type: mime_type must not be empty")
        if str(mt).lower() == "image/gif":
            raise Reject(f"Unsupported MIME type: {mt}")
        _check_b64(v.get("data"), f"{path}.inline_data.data")
    elif kind == "fileData":
        if not isinstance(v, dict) or not v.get("fileUri"):
            raise Reject(f"* GenerateContentRequest.{path}.file_data.file_uri: file_uri must not be empty")
        _check_keys(v, _FILE_KEYS, f"{path}.file_data")
    elif kind == "functionCall":
        _check_function_part(v, _FC_KEYS, f"{path}.function_call", mi)
        if "args" in v and not isinstance(v["args"], dict):
            raise Reject(f"Invalid value at '{path}.function_call.args' (type.googleapis.com/google.protobuf.Struct)")
    elif kind == "functionResponse":
        _check_function_part(v, _FR_KEYS, f"{path}.function_response", mi)
        if not isinstance(v.get("response"), dict):
            raise Reject(f"Invalid value at '{path}.function_response.response' "
                         "(type.googleapis.com/google.protobuf.Struct): functionResponse.response must be an object")
        for j, sub in enumerate(v.get("parts") or ()):
            if not isinstance(sub, dict) or not ({"inlineData", "fileData"} & sub.keys()):
                raise Reject(f"* GenerateContentRequest.{path}.function_response.parts[{j}]: only inline_data and "
                             "file_data are supported")
            if "inlineData" in sub:
                _check_part(sub, f"{path}.function_response.parts[{j}]", mi)
    if "thoughtSignature" in part:
        _check_b64(part["thoughtSignature"], f"{path}.thought_signature")


def _check_contents(contents: Any, mi: ModelInfo) -> None:
    if not contents:
        raise Reject("* GenerateContentRequest.contents: contents is not specified")
    if not isinstance(contents, list):
        raise Reject("Invalid value at 'contents': Starting an object on a repeated field")
    for i, c in enumerate(contents):
        path = f"contents[{i}]"
        if not isinstance(c, dict):
            raise Reject(f"Invalid value at '{path}' (type.googleapis.com/google.ai.generativelanguage.v1beta.Content)")
        _check_keys(c, _CONTENT_KEYS, path)
        role = c.get("role", "user")
        if role not in ("user", "model", "function"):
            raise Reject(f"Please use a valid role: user, model. (got {role!r} at {path})")
        parts = c.get("parts")
        if not parts:
            raise Reject(f"* GenerateContentRequest.{path}.parts: contents.parts must not be empty.")
        if not isinstance(parts, list):
            raise Reject(f"Invalid value at '{path}.parts': Starting an object on a repeated field")
        for j, p in enumerate(parts):
            _check_part(p, f"{path}.parts[{j}]", mi)
    # function calling pairing
    n = len(contents)
    for i, c in enumerate(contents):
        parts = c["parts"]
        role = c.get("role", "user")
        calls = [p["functionCall"].get("name") for p in parts if "functionCall" in p]
        resps = [p["functionResponse"].get("name") for p in parts if "functionResponse" in p]
        if calls and role != "model":
            raise Reject(f"Please ensure that function call turn comes immediately after a user turn or after a "
                         f"function response turn. (function call in a {role!r} content at contents[{i}])")
        if resps:
            prev = contents[i - 1] if i else None
            if role == "model" or prev is None or prev.get("role", "user") != "model" or \
                    not any("functionCall" in p for p in prev["parts"]):
                raise Reject("Please ensure that function response turn comes immediately after a function call "
                             f"turn. (contents[{i}])")
        if calls:
            nxt = contents[i + 1] if i + 1 < n else None
            got = []
            if nxt is not None and nxt.get("role", "user") in ("user", "function"):
                got = [p["functionResponse"].get("name") for p in nxt["parts"] if "functionResponse" in p]
            if len(got) != len(calls):
                raise Reject("Please ensure that the number of function response parts is equal to the number of "
                             "function call parts of the function call turn. "
                             f"(contents[{i}] has {len(calls)} call(s), the next content {len(got)} response(s))")
            if collections.Counter(got) != collections.Counter(calls):
                raise Reject("Please ensure that the function response parts match the function call parts of the "
                             f"function call turn: calls {sorted(calls)} vs responses {sorted(got)} (contents[{i}])")


def _check_schema(s: Any, path: str) -> None:
    if not isinstance(s, dict):
        raise Reject(f"Invalid value at '{path}' (type.googleapis.com/google.ai.generativelanguage.v1beta.Schema), "
                     f"{json.dumps(s)[:60]}")
    for k in s:
        if k not in _SCHEMA_KEYS:
            raise _unknown(k, path)
    t = s.get("type")
    tu = None
    if t is not None:
        if isinstance(t, list):
            raise Reject(f"Invalid JSON payload received. Unknown name \"type\" at '{path}': "
                         "Proto field is not repeating, cannot start list.")
        if not isinstance(t, str) or t.upper() not in _SCHEMA_TYPES:
            raise Reject(f"Invalid value at '{path}.type' (type.googleapis.com/google.ai.generativelanguage."
                         f"v1beta.Type), {json.dumps(t)}")
        tu = t.upper()
    if "enum" in s:
        e = s["enum"]
        if not isinstance(e, list) or not e:
            raise Reject(f"* GenerateContentRequest.{path}.enum: enum must be a non-empty list of strings")
        for k, v in enumerate(e):
            if not isinstance(v, str):
                raise Reject(f"Invalid value at '{path}.enum[{k}]' (TYPE_STRING), {json.dumps(v)}")
    if "format" in s and tu is not None:
        ok = _FORMATS.get(tu, set())
        if s["format"] not in ok:
            raise Reject(f"* GenerateContentRequest.{path}.format: format {s['format']!r} is not supported for "
                         f"{tu} type (allowed: {', '.join(sorted(ok)) or 'none'})")
    if tu == "ARRAY" and "items" not in s:
        raise Reject(f"* GenerateContentRequest.{path}.items: missing field.")
    if "items" in s:
        _check_schema(s["items"], f"{path}.items")
    props = s.get("properties")
    if props is not None:
        if not isinstance(props, dict):
            raise Reject(f"Invalid value at '{path}.properties': Starting a list on a map field")
        for k, (name, sub) in enumerate(props.items()):
            if not name:
                raise Reject(f"* GenerateContentRequest.{path}.properties: property name must not be empty")
            _check_schema(sub, f"{path}.properties[{k}].value")
    if "required" in s:
        req = s["required"]
        if not isinstance(req, list):
            raise Reject(f"Invalid value at '{path}.required': Starting an object on a repeated field")
        for k, name in enumerate(req):
            if not isinstance(name, str) or not props or name not in props:
                raise Reject(f"* GenerateContentRequest.{path}.required[{k}]: property is not defined "
                             f"({json.dumps(name)})")
    if "anyOf" in s:
        if not isinstance(s["anyOf"], list) or not s["anyOf"]:
            raise Reject(f"* GenerateContentRequest.{path}.any_of: must be a non-empty list")
        for k, sub in enumerate(s["anyOf"]):
            _check_schema(sub, f"{path}.any_of[{k}]")


def _check_tools(tools: Any) -> None:
    if not isinstance(tools, list):
        raise Reject("Invalid value at 'tools': Starting an object on a repeated field")
    for i, tool in enumerate(tools):
        tpath = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise Reject(f"Invalid value at '{tpath}'")
        _check_keys(tool, _TOOL_KEYS, tpath)
        decls = tool.get("functionDeclarations")
        if decls is None:
            continue
        if not isinstance(decls, list):
            raise Reject(f"Invalid value at '{tpath}.function_declarations': Starting an object on a repeated field")
        for j, fd in enumerate(decls):
            path = f"{tpath}.function_declarations[{j}]"
            if not isinstance(fd, dict):
                raise Reject(f"Invalid value at '{path}'")
            _check_keys(fd, _FD_KEYS, path)
            name = fd.get("name")
            if not isinstance(name, str) or not _FNAME_RE.match(name):
                raise Reject(f"* GenerateContentRequest.{path}.name: Invalid function name. Must start with a letter "
                             "or an underscore. Must be a-z, A-Z, 0-9, or contain underscores, dots, colons and "
                             f"dashes, with a maximum length of 128. (got {json.dumps(name)})")
            if "parameters" in fd and "parametersJsonSchema" in fd:
                raise Reject(f"* GenerateContentRequest.{path}: parameters and parameters_json_schema cannot both "
                             "be set")
            if "parameters" in fd:
                _check_schema(fd["parameters"], f"{path}.parameters")
            if "response" in fd:
                _check_schema(normalize(fd["response"]), f"{path}.response")


def _num(v: Any, path: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, str)):
        raise Reject(f"Invalid value at '{path}' (TYPE_NUMBER), {json.dumps(v)}")
    try:
        return float(v)
    except ValueError:
        raise Reject(f"Invalid value at '{path}' (TYPE_NUMBER), {json.dumps(v)}")


def _check_generation_config(gc: Any, mi: ModelInfo) -> None:
    if not isinstance(gc, dict):
        raise Reject("Invalid value at 'generation_config'")
    _check_keys(gc, _GEN_KEYS, "generation_config")
    if "maxOutputTokens" in gc:
        n = _num(gc["maxOutputTokens"], "generation_config.max_output_tokens")
        if n != int(n) or not (1 <= n <= mi.max_output):
            raise Reject(f"Unable to submit request because it has a maxOutputTokens value of {gc['maxOutputTokens']} "
                         f"but the supported range is from 1 (inclusive) to {mi.max_output + 1} (exclusive). "
                         "Update the value and try again.")
    if "stopSequences" in gc:
        ss = gc["stopSequences"]
        if not isinstance(ss, list):
            raise Reject("Invalid value at 'generation_config.stop_sequences': Starting an object on a repeated field")
        if len(ss) > 5:
            raise Reject("* GenerateContentRequest.generation_config.stop_sequences: the number of stop sequences "
                         f"must be at most 5 (got {len(ss)})")
    if "temperature" in gc:
        t = _num(gc["temperature"], "generation_config.temperature")
        if not 0.0 <= t <= 2.0:
            raise Reject(f"* GenerateContentRequest.generation_config.temperature: temperature must be in [0.0, 2.0]"
                         f" (got {t})")
    if "topP" in gc:
        p = _num(gc["topP"], "generation_config.top_p")
        if not 0.0 <= p <= 1.0:
            raise Reject(f"* GenerateContentRequest.generation_config.top_p: top_p must be in [0.0, 1.0] (got {p})")
    if mi.no_sampling:
        # LiteLLM sends temperature=1.0 to every gemini-3 model by default; only a non-default value is refused.
        for key, snake in (("temperature", "temperature"), ("topP", "top_p"), ("topK", "top_k")):
            if key in gc and not (key == "temperature" and _num(gc[key], snake) == 1.0):
                raise Reject(f"Unable to submit request because {mi.name} does not support the sampling parameter "
                             f"`{snake}` (value {gc[key]}). Remove it and try again.")
    tc = gc.get("thinkingConfig")
    if tc is not None:
        if not isinstance(tc, dict):
            raise Reject("Invalid value at 'generation_config.thinking_config'")
        _check_keys(tc, _THINK_KEYS, "generation_config.thinking_config")
        if "thinkingLevel" in tc and "thinkingBudget" in tc:
            raise Reject("You can only set only one of thinking budget and thinking level.")
        if "thinkingLevel" in tc:
            lvl = tc["thinkingLevel"]
            if not mi.is3:
                raise Reject(f"Thinking level is not supported for this model ({mi.name}).")
            if not isinstance(lvl, str) or lvl.upper() not in _THINK_LEVELS:
                raise Reject("Invalid value at 'generation_config.thinking_config.thinking_level' "
                             f"(type.googleapis.com/google.ai.generativelanguage.v1beta.ThinkingLevel), {json.dumps(lvl)}")
            if lvl.upper() == "MINIMAL" and mi.no_minimal:
                raise Reject("thinking level MINIMAL is not supported by this model")
        if "thinkingBudget" in tc and mi.budget_range is not None:
            b = _num(tc["thinkingBudget"], "generation_config.thinking_config.thinking_budget")
            lo, hi, zero_ok = mi.budget_range
            if b == 0 and not zero_ok:
                raise Reject("Budget 0 is invalid. This model only works in thinking mode.")
            if b != -1 and b != 0 and not lo <= b <= hi:
                raise Reject(f"The thinking budget {int(b)} is invalid. Please choose a value between "
                             f"{0 if zero_ok else lo} and {hi}.")


def validate_request(req: dict, mi: ModelInfo, count_only: bool = False) -> None:
    """Validate a normalised GenerateContentRequest (no signature / context checks here)."""
    if not isinstance(req, dict):
        raise Reject("Invalid JSON payload received. Expected an object.")
    for k in req:
        if k not in _TOP_KEYS and not (count_only and k == "model"):
            raise _unknown(k)
    if "cachedContent" in req:
        raise Reject(f"cachedContent {req['cachedContent']!r} not found: this fake never creates context caches, "
                     "so any cachedContent reference is a bug (CachedContent not found (or permission denied)).")
    _check_contents(req.get("contents"), mi)
    si = req.get("systemInstruction")
    if si is not None:
        if not isinstance(si, dict):
            raise Reject("Invalid value at 'system_instruction' (type.googleapis.com/google.ai.generativelanguage."
                         "v1beta.Content)")
        _check_keys(si, _CONTENT_KEYS, "system_instruction")
        if not si.get("parts"):
            raise Reject("* GenerateContentRequest.system_instruction.parts: contents.parts must not be empty.")
        for j, p in enumerate(si["parts"]):
            _check_part(p, f"system_instruction.parts[{j}]", mi)
    if "tools" in req:
        _check_tools(req["tools"])
    tc = req.get("toolConfig")
    if tc is not None:
        if not isinstance(tc, dict):
            raise Reject("Invalid value at 'tool_config'")
        _check_keys(tc, _TOOLCONFIG_KEYS, "tool_config")
        fcc = tc.get("functionCallingConfig")
        if isinstance(fcc, dict):
            _check_keys(fcc, frozenset({"mode", "allowedFunctionNames"}), "tool_config.function_calling_config")
            mode = fcc.get("mode", "AUTO")
            if str(mode).upper() not in ("AUTO", "ANY", "NONE", "VALIDATED", "MODE_UNSPECIFIED"):
                raise Reject("Invalid value at 'tool_config.function_calling_config.mode' "
                             f"(type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), "
                             f"{json.dumps(mode)}")
    if "generationConfig" in req and not count_only:
        _check_generation_config(req["generationConfig"], mi)


# ----------------------------------------------------------------------------------------------- the server
def _error_body(code: int, message: str, status: str | None = None, details=None) -> dict:
    err = {"code": code, "message": message, "status": status or _HTTP_STATUS.get(code, "UNKNOWN")}
    if details:
        err["details"] = details
    return {"error": err}


def _split(text: str, n: int | None) -> list[str]:
    if not text:
        return [text]
    if n is None:
        return [text[i:i + 8] for i in range(0, len(text), 8)]
    n = max(1, min(n, len(text)))
    step = math.ceil(len(text) / n)
    return [text[i:i + step] for i in range(0, len(text), step)]


def _grounding(spec: dict, parts: list[dict]) -> dict:
    """groundingMetadata as Gemini sends it after a Google Search: the queries, the pages, and which
    span of the answer each page supports."""
    text = "".join(p.get("text", "") for p in parts if not p.get("thought"))
    sources = [list(s) for s in spec.get("sources", ())]
    return {"webSearchQueries": list(spec.get("queries", ())),
            "searchEntryPoint": {"renderedContent": "<div>search suggestions</div>"},
            "groundingChunks": [{"web": {"uri": url, "title": title}} for url, title in sources],
            "groundingSupports": [{"segment": {"startIndex": 0, "endIndex": len(text), "text": text},
                                   "groundingChunkIndices": list(range(len(sources)))}] if sources and text else []}


class FakeGemini:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, keep_log: bool = True, verbose: bool = False,
                 default_spec: dict | None = None):
        self.host, self.port = host, port
        self.keep_log, self.verbose = keep_log, verbose
        self.default_spec = default_spec
        self.requests: list[dict] = []
        self.issued_signatures: set[str] = set()
        self._spec_sigs: set[str] = set()
        self._queue: collections.deque = collections.deque()
        self._cond = threading.Condition()
        self._secret = secrets.token_bytes(32)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.base_url = self.root_url = ""

    # ---------------------------------------------------------------- public API
    def enqueue(self, *specs: dict | Callable[[dict], dict]) -> None:
        with self._cond:
            self._queue.extend(specs)

    def reset(self) -> None:
        with self._cond:
            self._queue.clear()
            self.requests.clear()

    def wait_for(self, predicate: Callable[[list], Any], timeout: float = 5.0) -> bool:
        def check():
            try:
                return bool(predicate(self.requests))
            except (IndexError, KeyError, TypeError):
                return False
        with self._cond:
            return self._cond.wait_for(check, timeout)

    async def wait_for_async(self, predicate: Callable[[list], Any], timeout: float = 5.0) -> bool:
        """Same as wait_for, without blocking the caller's event loop (use it inside async tests)."""
        return await asyncio.to_thread(self.wait_for, predicate, timeout)

    def start(self) -> "FakeGemini":
        ready = threading.Event()
        error: list[BaseException] = []

        def run():
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            try:
                loop.run_until_complete(self._astart())
            except BaseException as e:  # noqa: BLE001
                error.append(e)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(self._runner.cleanup())
                loop.close()

        self._thread = threading.Thread(target=run, name=f"fake-gemini-{id(self):x}", daemon=True)
        self._thread.start()
        if not ready.wait(15):
            raise RuntimeError("fake Gemini did not start")
        if error:
            raise error[0]
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
        self._thread = None

    def __enter__(self) -> "FakeGemini":
        if self._thread is None:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---------------------------------------------------------------- server plumbing
    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=512 * 1024 * 1024)
        app.router.add_post(r"/{version:v1beta|v1alpha|v1}/models/{tail}", self._handle_model)
        app.router.add_route("*", "/{path:.*}", self._handle_other)
        return app

    async def _astart(self) -> None:
        self._runner = web.AppRunner(self.make_app(), handle_signals=False, handler_cancellation=True,
                                     access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.root_url = f"http://{self.host}:{self.port}"
        self.base_url = self.root_url + "/v1beta"

    def _new_record(self, request: web.Request, model, action) -> dict:
        rec = {"method": request.method, "path": request.path, "model": model, "action": action,
               "query": request.query_string, "headers": {k.lower(): v for k, v in request.headers.items()},
               "body": None, "normalized": None, "status": None, "error": None, "disconnected": False,
               "finished_at": None, "used_dummy_signature": False, "cut": False, "started_at": time.monotonic()}
        if self.keep_log:
            with self._cond:
                self.requests.append(rec)
                self._cond.notify_all()
        return rec

    def _finish(self, rec: dict) -> None:
        rec["finished_at"] = time.monotonic()
        if self.verbose:
            ms = (rec["finished_at"] - rec["started_at"]) * 1000
            extra = " DISCONNECTED" if rec["disconnected"] else ""
            err = f" {rec['error'][:160]}" if rec["error"] else ""
            print(f"{rec['method']} {rec['path']} -> {rec['status']} {ms:.1f}ms{extra}{err}", flush=True)
        if self.keep_log:
            with self._cond:
                self._cond.notify_all()

    def _error(self, rec: dict, code: int, message: str, status: str | None = None, details=None) -> web.Response:
        rec["status"] = code
        rec["error"] = message
        return web.Response(status=code, body=json.dumps(_error_body(code, message, status, details)).encode(),
                            content_type="application/json", charset="utf-8")

    async def _handle_other(self, request: web.Request) -> web.Response:
        rec = self._new_record(request, None, None)
        try:
            raw = await request.read()
            if raw:
                try:
                    rec["body"] = json.loads(raw)
                except ValueError:
                    rec["body"] = None
            return self._error(rec, 404, f"The requested URL {request.path} was not found on this server "
                                         "(fake Gemini).", "NOT_FOUND")
        finally:
            self._finish(rec)

    async def _handle_model(self, request: web.Request) -> web.StreamResponse:
        model, sep, action = request.match_info["tail"].partition(":")
        if not sep or action not in _ACTIONS:
            return await self._handle_other(request)
        rec = self._new_record(request, model, action)
        try:
            return await self._serve(request, rec, model, action)
        except (asyncio.CancelledError, ConnectionResetError):
            rec["disconnected"] = True
            raise
        finally:
            self._finish(rec)

    def _pop_spec(self, action: str):
        want_count = action == "countTokens"
        with self._cond:
            for i, spec in enumerate(self._queue):
                is_count = isinstance(spec, dict) and spec.get("action") == "countTokens"
                if is_count == want_count:
                    del self._queue[i]
                    return spec
        return None

    async def _serve(self, request: web.Request, rec: dict, model: str, action: str) -> web.StreamResponse:
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            return self._error(rec, 403, "Method doesn't allow unregistered callers (callers without established "
                                         "identity). Please use API Key or other form of API consumer identity to "
                                         "call this API.", "PERMISSION_DENIED")
        if key == "invalid-key":
            return self._error(rec, 400, "API key not valid. Please pass a valid API key.", "INVALID_ARGUMENT",
                               [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                                 "domain": "googleapis.com",
                                 "metadata": {"service": "generativelanguage.googleapis.com"}}])
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return self._error(rec, 400, "Invalid JSON payload received. Unexpected token.")
        rec["body"] = body
        mi = model_info(model)
        try:
            if body is None:
                raise Reject("* GenerateContentRequest.contents: contents is not specified")
            req = normalize(body)
            rec["normalized"] = req
            if action == "countTokens":
                return await self._count_tokens(request, rec, req, mi)
            validate_request(req, mi)
            self._check_signatures(req, mi, rec)
            prompt_tokens = prompt_token_count(req)
        except Reject as e:
            return self._error(rec, e.code, e.message, e.status, e.details)

        spec = self._pop_spec(action)
        if callable(spec):
            try:
                spec = spec(rec)
            except Exception as e:  # noqa: BLE001 - make test bugs visible
                return self._error(rec, 500, f"fake Gemini: callable spec raised {type(e).__name__}: {e}", "INTERNAL")
        if spec is None:
            spec = self.default_spec or {}
        limit = spec.get("input_limit", DEFAULT_INPUT_LIMIT)
        if prompt_tokens > limit:
            return self._error(rec, 400, f"The input token count ({prompt_tokens}) exceeds the maximum number of "
                                         f"tokens allowed ({limit}).")
        if spec.get("delay_s"):
            await asyncio.sleep(spec["delay_s"])
        if spec.get("hang"):
            await asyncio.Event().wait()
        if "error" in spec:
            return self._scripted_error(rec, spec["error"])
        if spec.get("grounding") and not any("googleSearch" in t for t in req.get("tools") or () if isinstance(t, dict)):
            spec = {k: v for k, v in spec.items() if k != "grounding"}  # Gemini grounds only when asked to search
        if action == "generateContent":
            rec["status"] = 200
            return web.Response(body=json.dumps(self._build(spec, model, prompt_tokens), ensure_ascii=False).encode(),
                                content_type="application/json", charset="utf-8")
        return await self._stream(request, rec, spec, model, prompt_tokens)

    def _scripted_error(self, rec: dict, err: dict) -> web.Response:
        code = int(err.get("code", 500))
        details = list(err.get("details") or [])
        if err.get("retry_delay"):
            details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": err["retry_delay"]})
        return self._error(rec, code, err.get("message") or _DEFAULT_MESSAGES.get(code, "fake error"),
                           err.get("status"), details)

    async def _count_tokens(self, request, rec, req, mi) -> web.Response:
        _check_keys(req, frozenset({"contents", "generateContentRequest"}), "")
        if "contents" in req and "generateContentRequest" in req:
            raise Reject("contents and generate_content_request cannot both be set.")
        inner = req.get("generateContentRequest")
        if inner is None:
            inner = {"contents": req.get("contents")}
        elif not isinstance(inner, dict):
            raise Reject("Invalid value at 'generate_content_request'")
        validate_request(inner, mi, count_only=True)
        spec = self._pop_spec("countTokens")
        if callable(spec):
            spec = spec(rec)
        spec = spec or {}
        if spec.get("delay_s"):
            await asyncio.sleep(spec["delay_s"])
        if "error" in spec:
            return self._scripted_error(rec, spec["error"])
        n = spec.get("total_tokens", prompt_token_count(inner))
        rec["status"] = 200
        return web.json_response({"totalTokens": n})

    # ---------------------------------------------------------------- signatures
    def _new_signature(self, model: str) -> str:
        while True:
            n = secrets.choice(range(60, 185))
            if (n + 16) % 3 == 0:
                n += 1
            payload = secrets.token_bytes(n)
            mac = hmac.new(self._secret, model.encode() + payload, hashlib.sha256).digest()[:16]
            sig = base64.b64encode(payload + mac).decode()
            if "+" in sig and "/" in sig:
                break
        if self.keep_log:  # validation is stateless (HMAC); the set is only for tests to inspect
            with self._cond:
                self.issued_signatures.add(sig)
        return sig

    def _signature_valid(self, sig: str, model: str) -> bool:
        if sig in self._spec_sigs:
            return True
        try:
            raw = base64.b64decode(sig, validate=True)
        except (binascii.Error, ValueError):
            return False
        if len(raw) < 17:
            return False
        mac = hmac.new(self._secret, model.encode() + raw[:-16], hashlib.sha256).digest()[:16]
        return hmac.compare_digest(mac, raw[-16:])

    def _check_signatures(self, req: dict, mi: ModelInfo, rec: dict) -> None:
        contents = req["contents"]
        for c in contents:
            for p in c["parts"]:
                if p.get("thoughtSignature") == DUMMY_SIGNATURE:
                    rec["used_dummy_signature"] = True
        if not mi.is3:
            return  # Gemini 2.x returns signatures but never checks them
        start = 0
        for i in range(len(contents) - 1, -1, -1):
            c = contents[i]
            if c.get("role", "user") == "user" and any("functionResponse" not in p for p in c["parts"]):
                start = i + 1
                break
        for i in range(start, len(contents)):
            c = contents[i]
            if c.get("role") != "model":
                continue
            first_call = next((p for p in c["parts"] if "functionCall" in p), None)
            if first_call is not None and not first_call.get("thoughtSignature"):
                raise Reject(
                    "Function call is missing a thought_signature in functionCall parts. This is required for tools "
                    "to work correctly, and missing thought_signature may lead to degraded model performance. "
                    f"Additional data, function call `default_api:{first_call['functionCall'].get('name')}` , "
                    f"position {i + 1}. Please refer to https://ai.google.dev/gemini-api/docs/thought-signatures "
                    "for more details.")
            for p in c["parts"]:
                sig = p.get("thoughtSignature")
                if sig and sig != DUMMY_SIGNATURE and not self._signature_valid(sig, mi.name):
                    raise Reject("Corrupted thought signature.")

    # ---------------------------------------------------------------- answers
    def _parts_from_spec(self, spec: dict, model: str) -> tuple[list[dict], bool]:
        """Return (parts, has_content_keys)."""
        has = any(k in spec for k in ("parts", "text", "tool_calls", "thinking"))
        parts = [dict(p) for p in spec.get("parts", ())]
        for p in parts:
            if "functionCall" in p:
                p["functionCall"] = dict(p["functionCall"])
        if "text" in spec:
            parts.append({"text": spec["text"]})
        for tc in spec.get("tool_calls", ()):
            if isinstance(tc, dict):
                fc = {"name": tc["name"], "args": tc.get("args", {})}
                if tc.get("id"):
                    fc["id"] = tc["id"]
            else:
                fc = {"name": tc[0], "args": tc[1] if len(tc) > 1 else {}}
                if len(tc) > 2 and tc[2]:
                    fc["id"] = tc[2]
            parts.append({"functionCall": fc})
        if "thinking" in spec:
            parts.insert(0, {"text": spec["thinking"], "thought": True})
        return parts, has

    def _answer(self, spec: dict, model: str) -> tuple[list[dict], str]:
        finish = spec.get("finish_reason", "STOP")
        parts, has = self._parts_from_spec(spec, model)
        if not has and finish in ("STOP", "MAX_TOKENS"):
            parts = [{"text": DEFAULT_TEXT}]
        if finish == "SAFETY":
            parts = []
        for p in parts:
            if p.get("thoughtSignature"):
                with self._cond:
                    self.issued_signatures.add(p["thoughtSignature"])
                    self._spec_sigs.add(p["thoughtSignature"])
        if parts and spec.get("sign", True):
            mi = model_info(model)
            first_call = next((p for p in parts if "functionCall" in p), None)
            target = first_call if first_call is not None else (parts[-1] if mi.is3 else None)
            if target is not None and "thoughtSignature" not in target:
                target["thoughtSignature"] = self._new_signature(model)
        return parts, finish

    @staticmethod
    def _usage(parts: list[dict], prompt_tokens: int, overrides: dict | None) -> dict:
        out_chars = thought_chars = 0
        any_out = False
        for p in parts:
            if "text" in p:
                if p.get("thought"):
                    thought_chars += len(p["text"])
                else:
                    out_chars += len(p["text"])
                    any_out = True
            elif "functionCall" in p:
                out_chars += len(_canonical(p["functionCall"]))
                any_out = True
        u = {"promptTokenCount": prompt_tokens}
        cand = math.ceil(out_chars / 4)
        if any_out:
            u["candidatesTokenCount"] = max(1, cand)
        if thought_chars:
            u["thoughtsTokenCount"] = math.ceil(thought_chars / 4)
        if overrides:
            u.update(overrides)
        if not overrides or "totalTokenCount" not in overrides:
            u["totalTokenCount"] = sum(u.get(k, 0) for k in ("promptTokenCount", "candidatesTokenCount",
                                                             "thoughtsTokenCount", "toolUsePromptTokenCount"))
        return u

    def _build(self, spec: dict, model: str, prompt_tokens: int) -> dict:
        """Non-stream response (also stores the pieces on the spec copy for streaming)."""
        rid = secrets.token_urlsafe(16)
        if "prompt_blocked" in spec:
            u = {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens}
            u.update(spec.get("usage") or {})
            return {"promptFeedback": {"blockReason": spec["prompt_blocked"], "safetyRatings": _SAFETY_RATINGS},
                    "usageMetadata": u, "modelVersion": model, "responseId": rid}
        parts, finish = self._answer(spec, model)
        cand: dict = {}
        if parts:
            cand["content"] = {"parts": parts, "role": "model"}
        elif finish != "SAFETY":
            cand["content"] = {"role": "model"}
        cand["finishReason"] = finish
        if finish == "SAFETY":
            cand["safetyRatings"] = _SAFETY_RATINGS
        if spec.get("finish_message"):
            cand["finishMessage"] = spec["finish_message"]
        if spec.get("grounding"):
            cand["groundingMetadata"] = _grounding(spec["grounding"], parts)
        cand["index"] = 0
        return {"candidates": [cand], "usageMetadata": self._usage(parts, prompt_tokens, spec.get("usage")),
                "modelVersion": model, "responseId": rid}

    def _stream_chunks(self, spec: dict, model: str, prompt_tokens: int) -> list[dict]:
        full = self._build(spec, model, prompt_tokens)
        if "promptFeedback" in full:
            return [full]
        cand = full["candidates"][0]
        parts = cand.get("content", {}).get("parts") or []
        groups: list[list[dict]] = []
        n = spec.get("text_chunks")
        for p in parts:
            if "text" in p:
                pieces = _split(p["text"], n)
                for k, piece in enumerate(pieces):
                    q = dict(p)
                    q["text"] = piece
                    if k < len(pieces) - 1:
                        q.pop("thoughtSignature", None)
                    groups.append([q])
            elif "functionCall" in p and groups and "functionCall" in groups[-1][-1]:
                groups[-1].append(p)
            else:
                groups.append([p])
        base = {"modelVersion": model, "responseId": full["responseId"]}
        chunks = [{"candidates": [{"content": {"parts": g, "role": "model"}}], **base} for g in groups]
        if not chunks:
            c = {"finishReason": cand["finishReason"]}
            if "safetyRatings" in cand:
                c["safetyRatings"] = cand["safetyRatings"]
            chunks = [{"candidates": [c], **base}]
        last = chunks[-1]
        last["candidates"][0]["finishReason"] = cand["finishReason"]
        for key in ("finishMessage", "groundingMetadata"):
            if key in cand:
                last["candidates"][0][key] = cand[key]
        last["usageMetadata"] = full["usageMetadata"]
        alone = spec.get("grounding_alone")
        if alone and "groundingMetadata" in cand:
            metadata = last["candidates"][0].pop("groundingMetadata")
            if alone == "middle":  # a chunk with nothing but the grounding, before the last one
                chunks.insert(len(chunks) - 1, {"candidates": [{"groundingMetadata": metadata, "index": 0}], **base})
            else:  # "last": on a closing chunk of its own whose only part is an empty text
                closing = {k: last["candidates"][0].pop(k) for k in ("finishReason", "finishMessage")
                           if k in last["candidates"][0]}
                chunks.append({"candidates": [{"content": {"parts": [{"text": ""}], "role": "model"}, **closing,
                                               "groundingMetadata": metadata, "index": 0}],
                               "usageMetadata": last.pop("usageMetadata"), **base})
        return chunks

    async def _stream(self, request: web.Request, rec: dict, spec: dict, model: str,
                      prompt_tokens: int) -> web.StreamResponse:
        chunks = self._stream_chunks(spec, model, prompt_tokens)
        sse = request.query.get("alt") == "sse"
        resp = web.StreamResponse(status=200, headers={
            "Content-Type": "text/event-stream" if sse else "application/json; charset=UTF-8"})
        cut = spec.get("cut_after_chunks")
        bad = spec.get("malformed_chunk_after")
        delay = spec.get("chunk_delay_s") or 0
        await resp.prepare(request)
        rec["status"] = 200
        for i in range(len(chunks) + 1):
            if cut is not None and i == cut:
                request.transport.abort()
                rec["cut"] = True
                return resp
            if bad is not None and i == bad:
                await resp.write(b'data: {"candidates": [{"content": {"parts": [{"text": "bro\r\n\r\n' if sse
                                 else b'{"candidates": [{"content": ,\r\n')
            if i == len(chunks):
                break
            if i and delay:
                await asyncio.sleep(delay)
            data = json.dumps(chunks[i], ensure_ascii=False).encode()
            if sse:
                await resp.write(b"data: " + data + b"\r\n\r\n")
            else:
                await resp.write((b"[" if i == 0 else b",\r\n") + data)
        if not sse:
            await resp.write(b"]")
        await resp.write_eof()
        return resp


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Fake Gemini REST server")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--quiet", action="store_true", help="log nothing per request")
    ap.add_argument("--default-spec", help="JSON answer spec used when the queue is empty")
    args = ap.parse_args(argv)
    fake = FakeGemini(args.host, args.port, keep_log=False, verbose=not args.quiet,
                      default_spec=json.loads(args.default_spec) if args.default_spec else None)

    async def run():
        await fake._astart()
        print(f"PORT {fake.port}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await fake._runner.cleanup()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
