"""The user side of a turn → OpenAI content parts and tool messages, by content.yaml ``kind``.

Images and documents take from the request's media budget (translator/media.py); tool_result blocks
become ``role: "tool"`` messages whose content is the JSON object LiteLLM makes Gemini's
functionResponse from.
"""
from __future__ import annotations

import json
from typing import Any, Iterator, Mapping

from .conformance import check_block
from .decoding import json_pair
from .errors import invalid_request
from .media import MediaBudget, media_part
from .spec import Spec
from .tables import BlockRule


def _flatten(value: Any) -> str:
    """Text of a flattened block field: strings as they are, block lists by their text."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(_flatten(v.get("text", v.get("content", ""))) if isinstance(v, dict) else _flatten(v)
                         for v in value)
    return json.dumps(value, ensure_ascii=False)


def block_text(block: Mapping[str, Any], spec: Spec) -> str:
    """The text of a text block, or of a flattened block by its content.yaml ``text_fields``."""
    if block["type"] == "text":
        return block["text"]
    fields = spec.content.blocks[block["type"]].text_fields or ()
    return "\n".join(_flatten(block[f]) for f in fields if block.get(f) is not None)


def _text_parts(block: Mapping[str, Any], where: str, spec: Spec, budget: MediaBudget) -> Iterator[dict]:
    if block["text"]:
        yield {"type": "text", "text": block["text"]}


def _image_parts(block: Mapping[str, Any], where: str, spec: Spec, budget: MediaBudget) -> Iterator[dict]:
    yield media_part(block["source"], f"{where}.source", "image", spec, budget)


def _document_parts(block: Mapping[str, Any], where: str, spec: Spec, budget: MediaBudget) -> Iterator[dict]:
    source = block["source"]
    heading = "\n".join(str(block[k]) for k in ("title", "context") if block.get(k))
    if isinstance(source, dict) and source.get("type") in ("text", "content"):
        value = source.get("data") if source.get("type") == "text" else source.get("content")
        if not isinstance(value, (str, list)):
            raise invalid_request(f"{where}.source: a {source.get('type')} source needs its "
                                  f"{'data' if source.get('type') == 'text' else 'content'}.")
        body = _flatten(value)
        yield {"type": "text", "text": f"{heading}\n{body}" if heading else body}
    else:
        if heading:
            yield {"type": "text", "text": heading}
        yield media_part(source, f"{where}.source", "document", spec, budget)


def _flattened_parts(block: Mapping[str, Any], where: str, spec: Spec, budget: MediaBudget) -> Iterator[dict]:
    text = block_text(block, spec)
    if text:
        yield {"type": "text", "text": text}


def _no_parts(block: Mapping[str, Any], where: str, spec: Spec, budget: MediaBudget) -> Iterator[dict]:
    return iter(())


# content.yaml ``kind`` → the OpenAI content parts of a user-side block. tool_result blocks become tool
# messages before this (see request._user_messages); thinking and tool_call have no user-side form.
USER_PARTS = {"text": _text_parts, "image": _image_parts, "document": _document_parts, "flatten": _flattened_parts,
              "tool_result": _no_parts, "thinking": _no_parts, "tool_call": _no_parts, "drop": _no_parts}


def content_parts(block: Mapping[str, Any], where: str, rule: BlockRule, spec: Spec,
                   budget: MediaBudget) -> Iterator[dict]:
    """OpenAI content parts for one user-side block (not tool results)."""
    return USER_PARTS[rule.kind](block, where, spec, budget)


def tool_message(block: Mapping[str, Any], where: str, call_id: str, spec: Spec,
                  budget: MediaBudget) -> dict[str, Any]:
    content = block.get("content", "")
    texts: list[str] = []
    media: list[dict] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        allowed = spec.content.tool_result_content
        for j, inner in enumerate(content):
            inner_where = f"{where}.content.{j}"
            rule = check_block(inner, inner_where, "user", spec)
            if inner["type"] not in allowed:
                raise invalid_request(f"{inner_where}: a '{inner['type']}' block is not allowed in tool_result content.")
            if isinstance(inner.get("source"), dict) and inner["source"].get("type") == "url":
                raise invalid_request(f"{inner_where}.source: {spec.content.url_sources.in_tool_results}.")
            for part in content_parts(inner, inner_where, rule, spec, budget):
                (texts.append(part["text"]) if part["type"] == "text" else media.append(part))
    else:
        raise invalid_request(f"{where}.content: must be a string or a list of content blocks.")
    key = spec.content.tool_error_key if block.get("is_error") else spec.content.tool_output_key
    # A JSON object string is what LiteLLM turns into functionResponse.response as it is.
    payload = json_pair(key, "\n".join(texts))
    message_content: Any = [{"type": "text", "text": payload}, *media] if media else payload
    return {"role": "tool", "tool_call_id": call_id, "content": message_content}


__all__ = ["USER_PARTS", "block_text", "content_parts", "tool_message"]
