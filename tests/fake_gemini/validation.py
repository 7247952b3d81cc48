"""Request checks of the fake Gemini: what the real API refuses with a 400, and the table of models.

``normalize`` renames every protobuf field to camelCase (both spellings accepted, as Google does);
``validate_request`` / ``validate_count_tokens`` check a normalised body and raise ``Reject``.
Thought signatures and the context size are checked elsewhere (``signatures``, ``routes``).
"""

from __future__ import annotations

import binascii
import collections
import json
import re
from typing import Any

from . import schemas

_TOP_KEYS = frozenset({"contents", "systemInstruction", "tools", "toolConfig", "generationConfig",
                       "safetySettings", "cachedContent", "labels", "serviceTier"})
# GenerateContentRequest.service_tier (the ServiceTier enum, by its JSON names and its proto names)
SERVICE_TIERS = frozenset({"standard", "flex", "priority", "SERVICE_TIER_UNSPECIFIED", "SERVICE_TIER_STANDARD",
                           "SERVICE_TIER_FLEX", "SERVICE_TIER_PRIORITY"})
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
_FILE_URI_RE = re.compile(r"^(?:https?|gs)://[^\s/]+/?\S*$")
_RESPONSE_MIME_TYPES = ("text/plain", "application/json", "application/xml", "application/yaml", "text/x.enum")
_CALLING_MODES = ("AUTO", "ANY", "NONE", "VALIDATED", "MODE_UNSPECIFIED")
_MODEL_RE = re.compile(r"gemini-(\d+)(?:\.(\d+))?")
# keys whose values are user data (never renamed)
_OPAQUE = frozenset({"args", "response", "parametersJsonSchema", "responseJsonSchema", "labels", "default",
                     "example", "enum", "partialArgs", "required", "propertyOrdering"})


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
        # (low, high, zero allowed) of thinkingBudget on 2.5 models; -1 (dynamic) is allowed on all of them
        if name.startswith("gemini-2.5-pro"):
            self.budget_range = (128, 32768, False)
        elif name.startswith("gemini-2.5-flash-lite"):
            self.budget_range = (512, 24576, True)
        elif name.startswith("gemini-2.5-flash"):
            self.budget_range = (0, 24576, True)
        else:
            self.budget_range = None


_model_cache: dict[str, ModelInfo] = {}


def model_info(name: str) -> ModelInfo:
    mi = _model_cache.get(name)
    if mi is None:
        mi = _model_cache[name] = ModelInfo(name)
    return mi


# ----------------------------------------------------------------------------------------------- request checks
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
        _check_file_data(v, f"{path}.file_data")
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
            _check_part(sub, f"{path}.function_response.parts[{j}]", mi)
    if "thoughtSignature" in part:
        _check_b64(part["thoughtSignature"], f"{path}.thought_signature")


def _check_file_data(v: Any, where: str) -> None:
    """fileData: known keys only, a fileUri Gemini can fetch (http(s), gs, or a Files API URI) and its mimeType
    (optional in the Gemini API's proto, required by Vertex and for external URLs; the fake requires it)."""
    if not isinstance(v, dict):
        raise Reject(f"Invalid value at '{where}' (type.googleapis.com/google.ai.generativelanguage.v1beta.FileData)")
    _check_keys(v, _FILE_KEYS, where)
    uri = v.get("fileUri")
    if not uri:
        raise Reject(f"* GenerateContentRequest.{where}.file_uri: file_uri must not be empty")
    if not isinstance(uri, str) or not _FILE_URI_RE.match(uri):
        raise Reject(f"* GenerateContentRequest.{where}.file_uri: Invalid or unsupported file uri: {json.dumps(uri)[:80]}")
    if not v.get("mimeType"):
        raise Reject(f"* GenerateContentRequest.{where}.mime_type: mime_type must not be empty")


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
        if "urlContext" in tool and tool["urlContext"] != {}:
            raise _unknown(next(iter(tool["urlContext"])) if isinstance(tool["urlContext"], dict) else "urlContext",
                           f"{tpath}.url_context")
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
    _check_response_format(gc)
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
            _check_budget(_num(tc["thinkingBudget"], "generation_config.thinking_config.thinking_budget"), mi)


def _check_budget(budget: float, mi: ModelInfo) -> None:
    """Gemini 2.5's thinkingBudget ranges (2.5 Pro 128..32768, Flash 0..24576, Flash-Lite 0 or 512..24576,
    -1 = dynamic everywhere), with Gemini's INVALID_ARGUMENT texts."""
    if budget != int(budget):
        raise Reject(f"Invalid value at 'generation_config.thinking_config.thinking_budget' (TYPE_INT32), {budget:g}")
    lo, hi, zero_ok = mi.budget_range
    if budget == 0 and not zero_ok:
        raise Reject("Budget 0 is invalid. This model only works in thinking mode.")
    if budget not in (-1, 0) and not lo <= budget <= hi:
        raise Reject(f"The thinking budget {budget:g} is invalid. Please choose a value between {lo} and {hi}.")


def _declared_names(tools: Any) -> list[str]:
    return [fd.get("name") for tool in tools or () if isinstance(tool, dict)
            for fd in tool.get("functionDeclarations") or () if isinstance(fd, dict)]


def _check_function_calling(fcc: Any, tools: Any) -> None:
    """functionCallingConfig: a known mode (AUTO, ANY, NONE, VALIDATED); allowedFunctionNames only with ANY or
    VALIDATED, and only names the request declares."""
    where = "tool_config.function_calling_config"
    if not isinstance(fcc, dict):
        raise Reject(f"Invalid value at '{where}' "
                     "(type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig)")
    _check_keys(fcc, frozenset({"mode", "allowedFunctionNames"}), where)
    mode = fcc.get("mode", "AUTO")
    if not isinstance(mode, str) or mode.upper() not in _CALLING_MODES:
        raise Reject(f"Invalid value at '{where}.mode' "
                     f"(type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), "
                     f"{json.dumps(mode)}")
    names = fcc.get("allowedFunctionNames") or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise Reject(f"Invalid value at '{where}.allowed_function_names': expected a list of strings")
    if names and mode.upper() not in ("ANY", "VALIDATED"):
        raise Reject(f"* GenerateContentRequest.{where}.allowed_function_names: allowed_function_names should only "
                     f"be set when the function calling mode is ANY or VALIDATED (mode: {mode.upper()}).")
    unknown = [n for n in names if n not in _declared_names(tools)]
    if unknown:
        raise Reject(f"* GenerateContentRequest.{where}.allowed_function_names: allowed_function_names should be a "
                     f"subset of the provided function_declarations (not declared: {', '.join(unknown)}).")


def _check_response_format(gc: dict) -> None:
    """responseMimeType / responseSchema / responseJsonSchema: one schema kind at most, each with a compatible
    MIME type (responseJsonSchema: application/json; responseSchema: application/json or, for a string enum,
    text/x.enum), each schema valid for its kind and one that some JSON value fits."""
    mime = gc.get("responseMimeType") or "text/plain"
    if mime not in _RESPONSE_MIME_TYPES:
        raise Reject("* GenerateContentRequest.generation_config.response_mime_type: allowed mimetypes are "
                     "`text/plain`, `application/json`, `application/xml`, `application/yaml` and `text/x.enum`.")
    if "responseSchema" in gc and "responseJsonSchema" in gc:
        raise Reject("response_schema must not be set when response_json_schema is set.")
    if "responseJsonSchema" in gc:
        where = "generation_config.response_json_schema"
        if mime != "application/json":
            raise Reject(f"* GenerateContentRequest.{where}: response_mime_type must be set to `application/json` "
                         f"when response_json_schema is set (got `{mime}`).")
        _check_json_schema(gc["responseJsonSchema"], where)
    if "responseSchema" in gc:
        where = "generation_config.response_schema"
        _check_schema(gc["responseSchema"], where)
        enum_ok = mime == "text/x.enum" and str(gc["responseSchema"].get("type", "")).upper() == "STRING" and \
            "enum" in gc["responseSchema"]
        if mime != "application/json" and not enum_ok:
            raise Reject(f"* GenerateContentRequest.{where}: a compatible response_mime_type must be set when "
                         f"response_schema is set: `application/json` (or `text/x.enum` for a string enum schema), "
                         f"got `{mime}`.")


def _check_json_schema(schema: Any, where: str) -> None:
    if not isinstance(schema, (dict, bool)):
        raise Reject(f"* GenerateContentRequest.{where}: the schema must be a JSON object (got {json.dumps(schema)[:60]})")
    try:
        schemas.check_refs(schema, where)
        schemas.minimal_instance(schema)
    except schemas.NoInstance as exc:
        raise Reject(f"* GenerateContentRequest.{where}: {exc}") from None


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
    if "serviceTier" in req and req["serviceTier"] not in SERVICE_TIERS:
        raise Reject("Invalid value at 'service_tier' (type.googleapis.com/google.ai.generativelanguage.v1beta."
                     f"ServiceTier), {json.dumps(req['serviceTier'])}")
    tc = req.get("toolConfig")
    if tc is not None:
        if not isinstance(tc, dict):
            raise Reject("Invalid value at 'tool_config'")
        _check_keys(tc, _TOOLCONFIG_KEYS, "tool_config")
        if "functionCallingConfig" in tc:
            _check_function_calling(tc["functionCallingConfig"], req.get("tools"))
    if "generationConfig" in req and not count_only:
        _check_generation_config(req["generationConfig"], mi)
        if req.get("tools") and 0 < mi.gen < 3 and _json_mode(req["generationConfig"]):
            raise Reject("Tool use with a response mime type: 'application/json' is unsupported")


def _json_mode(gc: Any) -> bool:
    """Whether a generationConfig asks for JSON (Gemini 2.x cannot combine that with tools; 3+ can)."""
    return isinstance(gc, dict) and (gc.get("responseMimeType") == "application/json"
                                     or "responseSchema" in gc or "responseJsonSchema" in gc)


def validate_count_tokens(req: dict, mi: ModelInfo) -> dict:
    """Validate a normalised CountTokensRequest; return the GenerateContentRequest it counts."""
    _check_keys(req, frozenset({"contents", "generateContentRequest"}), "")
    if "contents" in req and "generateContentRequest" in req:
        raise Reject("contents and generate_content_request cannot both be set.")
    inner = req.get("generateContentRequest")
    if inner is None:
        inner = {"contents": req.get("contents")}
    elif not isinstance(inner, dict):
        raise Reject("Invalid value at 'generate_content_request'")
    validate_request(inner, mi, count_only=True)
    return inner
