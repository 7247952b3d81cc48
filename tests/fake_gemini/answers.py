"""Answers of the fake Gemini: a spec turned into a GenerateContentResponse, its stream chunks, the usage
figures and Google Search grounding (the spec language is described in the package docstring)."""

from __future__ import annotations

import json
import math
import secrets
import threading
from typing import Any, Callable

from .schemas import minimal_instance
from .validation import model_info

DEFAULT_TEXT = "Hello from the fake Gemini."
_CONTENT_KEYS = ("parts", "text", "tool_calls", "thinking")
_SAFETY_RATINGS = [
    {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
    {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True},
]


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def prompt_token_count(req: dict) -> int:
    """promptTokenCount of a normalised (camelCase) GenerateContentRequest."""
    obj = {"contents": req.get("contents")}
    for k in ("systemInstruction", "tools"):
        if k in req:
            obj[k] = req[k]
    return math.ceil(len(_canonical(obj)) / 4)


def with_structured_default(spec: dict, req: dict) -> dict:
    """A spec without content keys, for a request that asks for structured output, answers what Gemini would:
    the JSON text of the smallest value that fits the response schema (a JSON string without a schema; the first
    value for text/x.enum).  A spec that scripts its content keeps it, fitting the schema or not."""
    if any(k in spec for k in _CONTENT_KEYS):
        return spec
    gc = req.get("generationConfig") or {}
    mime = gc.get("responseMimeType")
    schema = gc.get("responseJsonSchema", gc.get("responseSchema"))
    if mime == "text/x.enum" and schema is not None:
        return {**spec, "text": str(minimal_instance(schema))}
    if mime != "application/json":
        return spec
    value = DEFAULT_TEXT if schema is None else minimal_instance(schema)
    return {**spec, "text": json.dumps(value, ensure_ascii=False)}


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


def _url_context(pages: list) -> dict:
    """urlContextMetadata as Gemini sends it after its URL context tool read the pages of the prompt."""
    return {"urlMetadata": [{"retrievedUrl": page[0],
                             "urlRetrievalStatus": page[1] if len(page) > 1 else "URL_RETRIEVAL_STATUS_SUCCESS"}
                            for page in pages]}


class AnswerMixin:
    """FakeGemini's answer building.  Uses ``_cond``, ``issued_signatures`` and ``_spec_sigs`` (see SignatureMixin)
    and ``_new_signature`` to sign what it answers."""

    _cond: threading.Condition
    issued_signatures: set[str]
    _spec_sigs: set[str]
    _new_signature: Callable[[str], str]

    def _parts_from_spec(self, spec: dict, model: str) -> tuple[list[dict], bool]:
        """Return (parts, has_content_keys)."""
        has = any(k in spec for k in _CONTENT_KEYS)
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
        if spec.get("url_context"):
            cand["urlContextMetadata"] = _url_context(spec["url_context"])
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
        for key in ("finishMessage", "groundingMetadata", "urlContextMetadata"):
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
