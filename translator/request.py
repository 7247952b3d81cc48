"""Anthropic Messages request → ``litellm.acompletion`` keyword arguments.

What each block type becomes is read from content.yaml, roles from roles.yaml, models and
thinking from models.yaml, tools from tools.yaml; this module is the mechanism that applies them.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping
from urllib.parse import urlsplit

from .anthropic_types import CountTokensRequest, MessagesRequest, parse_request
from .errors import AnthropicError, invalid_request
from .output_format import output_schema
from .routing import Route, resolve_model
from .signatures import decode_tool_id, signature_for, signature_from_thinking
from .spec import Spec
from .tables import BlockRule, ContentLimits, UrlSources
from .thinking import thinking_config
from .tools import DeclarationCache, ToolError, ToolPlan, check_tool_count, plan_tools

# The Python type of each content.yaml ``requires`` field type.
_JSON_TYPES = {"string": str, "object": dict, "array": list, "integer": int, "boolean": bool, "id": str}


@dataclass(frozen=True)
class UpstreamCall:
    """Everything the service needs to make the call and translate the answer back."""

    route: Route
    kwargs: dict[str, Any]          # for litellm.acompletion, without api_key / api_base
    stream: bool
    tools: ToolPlan
    max_tokens: int                 # as requested (0 means: answer with no content)
    stop_sequences: tuple[str, ...] = field(default=())


@dataclass
class MediaBudget:
    """Per-request allowance of inline images and documents (content.yaml ``limits``, which the
    caller may override, e.g. from its configuration)."""

    max_count: int
    max_bytes: int
    used: int = 0

    @classmethod
    def from_limits(cls, limits: ContentLimits) -> "MediaBudget":
        return cls(limits.media_per_request, limits.media_bytes)

    def take(self, size: int, where: str) -> None:
        self.used += 1
        if self.used > self.max_count:
            raise invalid_request(f"{where}: too many images and documents in one request (at most {self.max_count}).")
        if size > self.max_bytes:
            raise invalid_request(f"{where}.data: {size} bytes of base64, more than the {self.max_bytes} allowed.")


@dataclass
class _Turn:
    role: str                                          # "user" or "assistant" after role mapping
    blocks: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # (block, where)


def _limits(spec: Spec, overrides: Mapping[str, int] | None) -> ContentLimits:
    limits = spec.content.limits
    return limits.model_copy(update=overrides) if overrides else limits


def _field(value: Any, name: str) -> Any:
    """A field of a request part, whether still a dict or already a validated model."""
    return value.get(name) if isinstance(value, dict) else getattr(value, name, None)


def _check_counts(body: Any, spec: Spec, limits: ContentLimits) -> None:
    """Refuse more tools, messages or content blocks than the tables allow, before any per-item
    work: validating a message alone takes microseconds, and a body may hold a million."""
    try:
        check_tool_count(_field(body, "tools"), spec.tools)
    except ToolError as exc:
        raise invalid_request(str(exc)) from None
    messages = _field(body, "messages")
    if not isinstance(messages, list):
        return
    if len(messages) > limits.messages:
        raise invalid_request(f"messages: {len(messages)} messages, more than the {limits.messages} allowed "
                              "(content.yaml limits.messages).")
    blocks = 0
    for i, message in enumerate(messages):
        content = _field(message, "content")
        for j, block in enumerate(content if isinstance(content, list) else (content,)):
            inner = block.get("content") if isinstance(block, dict) and block.get("type") == "tool_result" else None
            blocks += 1 + (len(inner) if isinstance(inner, list) else 0)
            if blocks > limits.content_blocks:
                where = f"messages.{i}.content" + (f".{j}" if isinstance(content, list) else "")
                raise invalid_request(f"{where}: more than the {limits.content_blocks} content blocks allowed in "
                                      "one request, tool_result contents included (content.yaml limits.content_blocks).")


def _check_block(block: Any, where: str, role: str, spec: Spec) -> BlockRule:
    if not isinstance(block, dict) or not isinstance(block.get("type"), str):
        raise invalid_request(f"{where}: each content block must be an object with a string 'type'.")
    rule = spec.content.blocks.get(block["type"])
    if rule is None:
        known = ", ".join(spec.content.blocks)
        raise invalid_request(f"{where}.type: unknown content block type '{block['type']}' (known: {known}).")
    if role not in rule.roles:
        raise invalid_request(f"{where}: a '{block['type']}' block is not allowed in a '{role}' message.")
    for name, kind in rule.requires.items():
        value = block.get(name)
        if not isinstance(value, _JSON_TYPES[kind]) or (kind == "integer" and isinstance(value, bool)):
            raise invalid_request(f"{where}.{name}: Field required, of type {'string' if kind == 'id' else kind}.")
        if kind == "id" and not re.fullmatch(spec.content.id_pattern, value):
            raise invalid_request(f"{where}.{name}: String should match pattern '{spec.content.id_pattern}'.")
    return rule


def _flatten(value: Any) -> str:
    """Text of a flattened block field: strings as they are, block lists by their text."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(_flatten(v.get("text", v.get("content", ""))) if isinstance(v, dict) else _flatten(v)
                         for v in value)
    return json.dumps(value, ensure_ascii=False)


def _turns(request: MessagesRequest | CountTokensRequest, spec: Spec) -> list[_Turn]:
    """Messages as turns of mapped roles, consecutive same-role messages merged."""
    turns: list[_Turn] = []
    roles = spec.roles.roles
    for i, message in enumerate(request.messages):
        rule = roles.get(message.role)
        if rule is None:
            raise invalid_request(f"messages.{i}.role: role '{message.role}' is not supported.")
        content = message.content
        if isinstance(content, str):
            blocks = [({"type": "text", "text": content}, f"messages.{i}.content")]
        else:
            blocks = [(b, f"messages.{i}.content.{j}") for j, b in enumerate(content)]
        for block, where in blocks:
            _check_block(block, where, message.role, spec)
        if rule.wrap is not None:
            text = "\n\n".join(t for t in (_block_text(b, spec) for b, _ in blocks) if t)
            if not text:
                continue
            blocks = [({"type": "text", "text": rule.wrap.format(text=text)}, f"messages.{i}.content")]
        if turns and turns[-1].role == rule.sent_as:
            turns[-1].blocks.extend(blocks)
        else:
            turns.append(_Turn(rule.sent_as, blocks))
    return turns


def _block_text(block: Mapping[str, Any], spec: Spec) -> str:
    """The text of a text block, or of a flattened block by its content.yaml ``text_fields``."""
    if block["type"] == "text":
        return block["text"]
    fields = spec.content.blocks[block["type"]].text_fields or ()
    return "\n".join(_flatten(block[f]) for f in fields if block.get(f) is not None)


def _media_part(source: Any, where: str, block: str, spec: Spec, budget: MediaBudget) -> dict[str, Any]:
    """An image or document ``source`` (base64 or url) as an OpenAI content part: LiteLLM makes base64
    Gemini inlineData, and an https ``file_data`` with a ``format`` fileData, without opening the URL."""
    if not isinstance(source, dict):
        raise invalid_request(f"{where}: source must be an object.")
    content, kind = spec.content, source.get("type")
    allowed = content.image_media_types if block == "image" else content.document_media_types
    refused = content.refused_sources.get(kind) if isinstance(kind, str) else None
    if refused:
        raise invalid_request(f"{where}.type: {refused}.")
    if kind == "url":
        return _url_part(source, where, allowed, content.url_sources.default_media_types[block],
                         content.url_sources, budget)
    if kind != "base64":
        raise invalid_request(f"{where}.type: source type '{kind}' is not supported; use base64 or url.")
    media_type, data = source.get("media_type"), source.get("data")
    _check_media_type(media_type, where, allowed)
    if not isinstance(data, str) or not data:
        raise invalid_request(f"{where}.data: Field required, a non-empty base64 string.")
    budget.take(len(data), where)
    try:
        base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise invalid_request(f"{where}.data: not valid base64.") from None
    url = f"data:{media_type};base64,{data}"
    if media_type.startswith("image/"):
        return {"type": "image_url", "image_url": {"url": url}}
    return {"type": "file", "file": {"file_data": url}}


def _check_media_type(media_type: Any, where: str, allowed: tuple[str, ...], how: str = "") -> None:
    if media_type not in allowed:
        raise invalid_request(f"{where}.media_type: '{media_type}'{how} is not supported by Gemini "
                              f"(supported: {', '.join(allowed)}).")


def _url_part(source: Mapping[str, Any], where: str, allowed: tuple[str, ...], default: str, rules: UrlSources,
              budget: MediaBudget) -> dict[str, Any]:
    """A URL source as Gemini fileData, its media type told without fetching (content.yaml url_sources)."""
    url = source.get("url")
    if not isinstance(url, str) or not url:
        raise invalid_request(f"{where}.url: Field required, a URL string.")
    if len(url) > rules.max_length or not url.startswith(rules.prefixes) or not _plain_url(url):
        raise invalid_request(f"{where}.url: must be a URL starting with {' or '.join(rules.prefixes)}, with a host "
                              f"and no spaces, of at most {rules.max_length} characters.")
    media_type = source.get("media_type")
    how = ""
    if media_type is None:
        name = urlsplit(url).path.rpartition("/")[2]
        extension = name.rpartition(".")[2].lower() if "." in name else ""
        media_type = rules.extensions.get(extension, default)
        how = " (told by the URL's extension)" if extension in rules.extensions else " (the default for URLs)"
    _check_media_type(media_type, where, allowed, how)
    budget.take(0, where)
    return {"type": "file", "file": {"file_data": url, "format": media_type}}


def _plain_url(url: str) -> bool:
    try:
        host = urlsplit(url).hostname
    except ValueError:  # a malformed [IPv6] host
        return False
    return bool(host) and not any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url)


def _text_parts(block: Mapping[str, Any], where: str, spec: Spec, budget: MediaBudget) -> Iterator[dict]:
    if block["text"]:
        yield {"type": "text", "text": block["text"]}


def _image_parts(block: Mapping[str, Any], where: str, spec: Spec, budget: MediaBudget) -> Iterator[dict]:
    yield _media_part(block["source"], f"{where}.source", "image", spec, budget)


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
        yield _media_part(source, f"{where}.source", "document", spec, budget)


def _flattened_parts(block: Mapping[str, Any], where: str, spec: Spec, budget: MediaBudget) -> Iterator[dict]:
    text = _block_text(block, spec)
    if text:
        yield {"type": "text", "text": text}


def _no_parts(block: Mapping[str, Any], where: str, spec: Spec, budget: MediaBudget) -> Iterator[dict]:
    return iter(())


# content.yaml ``kind`` → the OpenAI content parts of a user-side block. tool_result blocks become tool
# messages before this (see _openai_messages); thinking and tool_call have no user-side form.
USER_PARTS = {"text": _text_parts, "image": _image_parts, "document": _document_parts, "flatten": _flattened_parts,
              "tool_result": _no_parts, "thinking": _no_parts, "tool_call": _no_parts, "drop": _no_parts}


def _content_parts(block: Mapping[str, Any], where: str, rule: BlockRule, spec: Spec,
                   budget: MediaBudget) -> Iterator[dict]:
    """OpenAI content parts for one user-side block (not tool results)."""
    return USER_PARTS[rule.kind](block, where, spec, budget)


def _tool_message(block: Mapping[str, Any], where: str, call_id: str, spec: Spec,
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
            rule = _check_block(inner, inner_where, "user", spec)
            if inner["type"] not in allowed:
                raise invalid_request(f"{inner_where}: a '{inner['type']}' block is not allowed in tool_result content.")
            if isinstance(inner.get("source"), dict) and inner["source"].get("type") == "url":
                raise invalid_request(f"{inner_where}.source: {spec.content.url_sources.in_tool_results}.")
            for part in _content_parts(inner, inner_where, rule, spec, budget):
                (texts.append(part["text"]) if part["type"] == "text" else media.append(part))
    else:
        raise invalid_request(f"{where}.content: must be a string or a list of content blocks.")
    key = spec.content.tool_error_key if block.get("is_error") else spec.content.tool_output_key
    # A JSON object string is what LiteLLM turns into functionResponse.response as it is.
    payload = json.dumps({key: "\n".join(texts)}, ensure_ascii=False)
    message_content: Any = [{"type": "text", "text": payload}, *media] if media else payload
    return {"role": "tool", "tool_call_id": call_id, "content": message_content}


@dataclass
class _AssistantContent:
    """An assistant turn as it is built: its texts, its tool calls, and the signature a thinking block
    left for the next tool call."""

    plan: ToolPlan
    model: str  # the Gemini model the turn is sent to: only its own signatures go back
    texts: list[str] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    carried: str | None = None


def _assistant_text(content: _AssistantContent, block: Mapping[str, Any], spec: Spec) -> None:
    if block["text"]:
        content.texts.append(block["text"])


def _assistant_flattened(content: _AssistantContent, block: Mapping[str, Any], spec: Spec) -> None:
    text = _block_text(block, spec)
    if text:
        content.texts.append(text)


def _assistant_thinking(content: _AssistantContent, block: Mapping[str, Any], spec: Spec) -> None:
    content.carried = signature_from_thinking(block["signature"]) or content.carried


def _assistant_tool_call(content: _AssistantContent, block: Mapping[str, Any], spec: Spec) -> None:
    call_id, signature = decode_tool_id(block["id"])
    signature = signature_for(signature or (content.carried if not content.calls else None), content.model)
    content.carried = None
    call: dict[str, Any] = {
        "id": call_id,
        "type": "function",
        "function": {"name": content.plan.to_gemini(block["name"]),
                     "arguments": json.dumps(block["input"], ensure_ascii=False)},
    }
    if signature:
        call["provider_specific_fields"] = {"thought_signature": signature}
    content.calls.append(call)


def _left_out(content: _AssistantContent, block: Mapping[str, Any], spec: Spec) -> None:
    return None


# content.yaml ``kind`` → what a block adds to an assistant turn (Gemini's model turns hold text and
# function calls only).
ASSISTANT_PARTS = {"text": _assistant_text, "flatten": _assistant_flattened, "thinking": _assistant_thinking,
                   "tool_call": _assistant_tool_call, "image": _left_out, "document": _left_out,
                   "tool_result": _left_out, "drop": _left_out}


def _assistant_message(turn: _Turn, spec: Spec, plan: ToolPlan,
                       model: str) -> tuple[dict[str, Any] | None, list[str]]:
    content = _AssistantContent(plan, model)
    blocks = spec.content.blocks
    for block, _where in turn.blocks:
        ASSISTANT_PARTS[blocks[block["type"]].kind](content, block, spec)
    texts, calls = content.texts, content.calls
    if not texts and not calls:
        return None, []
    message: dict[str, Any] = {"role": "assistant", "content": "\n\n".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return message, [c["id"] for c in calls]


def _openai_messages(request: MessagesRequest | CountTokensRequest, spec: Spec, plan: ToolPlan,
                     budget: MediaBudget, model: str) -> list[dict]:
    messages: list[dict[str, Any]] = []
    system = _system_text(request, spec)
    if system:
        messages.append({"role": "system", "content": system})
    pending: dict[str, int] = {}  # call ids of the previous assistant turn → their order
    pending_where = ""
    for turn in _turns(request, spec):
        if turn.role == "assistant":
            if pending:
                raise invalid_request(f"{pending_where}: tool_use ids were found without tool_result blocks "
                                      f"immediately after: {', '.join(pending)}.")
            message, call_ids = _assistant_message(turn, spec, plan, model)
            if message:
                messages.append(message)
            pending = {cid: n for n, cid in enumerate(call_ids)}
            pending_where = turn.blocks[0][1].rsplit(".content", 1)[0] if turn.blocks else "messages"
            continue
        results: list[tuple[int, dict]] = []
        parts: list[dict] = []
        for block, where in turn.blocks:
            rule = spec.content.blocks[block["type"]]
            if rule.kind == "tool_result":
                call_id, _ = decode_tool_id(block["tool_use_id"])
                if call_id not in pending:
                    raise invalid_request(f"{where}.tool_use_id: no tool_use with id '{block['tool_use_id']}' "
                                          "in the previous assistant message.")
                results.append((pending.pop(call_id), _tool_message(block, where, call_id, spec, budget)))
            else:
                parts.extend(_content_parts(block, where, rule, spec, budget))
        if pending:
            raise invalid_request(f"{pending_where}: tool_use ids were found without tool_result blocks "
                                  f"immediately after: {', '.join(pending)}.")
        # Gemini pairs responses with calls; keep the calls' order whatever order results came in.
        messages.extend(m for _, m in sorted(results, key=lambda r: r[0]))
        if parts:
            if all(p["type"] == "text" for p in parts) and len(parts) == 1:
                messages.append({"role": "user", "content": parts[0]["text"]})
            else:
                messages.append({"role": "user", "content": parts})
    if len(messages) == (1 if system else 0):
        raise invalid_request("messages: the conversation has no content to send (all blocks were empty).")
    return messages


def _system_text(request: MessagesRequest | CountTokensRequest, spec: Spec) -> str:
    system = request.system
    if system is None:
        return ""
    if isinstance(system, str):
        return system
    drop = spec.roles.system_drop_prefixes
    return "\n\n".join(b.text for b in system if b.text and not b.text.startswith(drop))


def _plan(request: MessagesRequest | CountTokensRequest, spec: Spec, cache: DeclarationCache | None) -> ToolPlan:
    try:
        return plan_tools(request.tools,
                          request.tool_choice.model_dump(exclude_none=True) if request.tool_choice else None,
                          spec.tools, cache)
    except ToolError as exc:
        raise invalid_request(str(exc)) from None


def translate_request(body: Any, spec: Spec, *, tool_cache: DeclarationCache | None = None,
                      limits: Mapping[str, int] | None = None, target: str | None = None) -> UpstreamCall:
    """Validate an Anthropic request body and build the LiteLLM call for it (an :class:`UpstreamCall`).

    ``limits`` overrides content.yaml's ``limits`` (media_per_request, media_bytes, messages, content_blocks);
    ``target``, one of the route's fallbacks, builds the call for that model instead. Raises
    :class:`AnthropicError`: 400 ``invalid_request_error`` naming what is wrong, 404 ``not_found_error``
    for a model the proxy does not serve."""
    bounds = _limits(spec, limits)
    _check_counts(body, spec, bounds)
    request = body if isinstance(body, MessagesRequest) else parse_request(body, MessagesRequest)
    route = resolve_model(request.model, spec.models, target)
    plan = _plan(request, spec, tool_cache)
    facts = route.facts
    kwargs: dict[str, Any] = {
        "model": route.target,
        "messages": _openai_messages(request, spec, plan, MediaBudget.from_limits(bounds), route.signer),
        # max_tokens 0 (a cache pre-warm) still needs one token from Gemini, which refuses 0.
        "max_tokens": max(1, min(request.max_tokens, facts.max_output_tokens)),
    }
    if facts.sampling_params:
        for name in ("temperature", "top_p", "top_k"):
            value = getattr(request, name)
            if value is not None:
                kwargs[name] = value
    if request.stop_sequences:
        kwargs["stop"] = list(request.stop_sequences)
    if plan.tools:
        kwargs["tools"] = plan.tools
        if plan.tool_choice is not None:
            kwargs["tool_choice"] = plan.tool_choice
        if plan.calling_mode is not None:  # merged into Gemini's request body as it is (LiteLLM has no VALIDATED)
            kwargs["extra_body"] = {"toolConfig": {"functionCallingConfig": {"mode": plan.calling_mode}}}
    thinking = request.thinking.model_dump(exclude_none=True) if request.thinking else None
    effort = request.output_config.effort if request.output_config else None
    config = thinking_config(thinking, effort, facts, spec.models, request.max_tokens)
    if config is not None:
        kwargs["thinkingConfig"] = config
    schema = output_schema(request, route, plan, spec)
    if schema is not None:  # Gemini generationConfig fields, which LiteLLM passes on as they are
        kwargs["responseMimeType"] = "application/json"
        kwargs["responseJsonSchema"] = schema
    if request.stream:
        kwargs["stream"] = True
        kwargs["stream_options"] = {"include_usage": True}
    return UpstreamCall(route, kwargs, bool(request.stream), plan, request.max_tokens,
                        tuple(request.stop_sequences or ()))


def translate_count_tokens(body: Any, spec: Spec, *, tool_cache: DeclarationCache | None = None,
                           limits: Mapping[str, int] | None = None) -> UpstreamCall:
    """The same translation for ``/v1/messages/count_tokens`` (no max_tokens, never streamed): an
    :class:`UpstreamCall`, or :class:`AnthropicError` raised as by :func:`translate_request`."""
    bounds = _limits(spec, limits)
    _check_counts(body, spec, bounds)
    request = parse_request(body, CountTokensRequest)
    route = resolve_model(request.model, spec.models)
    plan = _plan(request, spec, tool_cache)
    kwargs: dict[str, Any] = {"model": route.target,
                              "messages": _openai_messages(request, spec, plan, MediaBudget.from_limits(bounds), route.signer)}
    if plan.tools:
        kwargs["tools"] = plan.tools
    return UpstreamCall(route, kwargs, False, plan, 0)


__all__ = ["AnthropicError", "UpstreamCall", "translate_request", "translate_count_tokens"]
