"""Anthropic Messages request → ``litellm.acompletion`` keyword arguments.

What each block type becomes is read from content.yaml, roles from roles.yaml, models and
thinking from models.yaml, tools from tools.yaml; this module is the mechanism that applies them.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, cast

from .anthropic_types import CountTokensRequest, MessagesRequest, parse_request
from .conformance import _JSON_TYPES, check_block, check_counts, check_fields  # noqa: F401 (content.yaml's types)
from .errors import AnthropicError, invalid_request
from .media import MediaBudget
from .output_format import output_schema
from .routing import Route, resolve_model
from .signatures import decode_tool_id, signature_for, signature_from_thinking
from .spec import Spec
from .system_messages import check_system_message, cleared, turn_effort
from .tables import ContentLimits
from .thinking import thinking_config
from .tool_changes import changed_tools, definition_place
from .tools import DeclarationCache, ToolError, ToolPlan, plan_tools
from .turn_cache import Span, Translated, TurnCache, TurnMemo, turn_memo
from .user_content import USER_PARTS, block_text, content_parts, tool_message  # noqa: F401 (USER_PARTS: the tables test)


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
class _Turn:
    role: str                                          # "user" or "assistant" after role mapping
    blocks: list[tuple[dict[str, Any], str]] = field(default_factory=list)  # (block, where); unread while kept
    span: Span | None = None                           # its messages, when the turn may be memoised
    first: int = 0                                     # the index of its first message
    last: int = -1                                     # and of its last


def _limits(spec: Spec, overrides: Mapping[str, int] | None) -> ContentLimits:
    limits = spec.content.limits
    return limits.model_copy(update=overrides) if overrides else limits


def _message_blocks(message: Any, i: int) -> list[tuple[dict[str, Any], str]]:
    content = message.content
    if isinstance(content, str):
        return [({"type": "text", "text": content}, f"messages.{i}.content")]
    return [(b, f"messages.{i}.content.{j}") for j, b in enumerate(content)]


def _turns(request: MessagesRequest | CountTokensRequest, spec: Spec, memo: TurnMemo | None) -> list[_Turn]:
    """Messages as turns of mapped roles, consecutive same-role messages merged. A turn ``memo`` holds
    was checked when it was kept: its messages are not checked again, nor their blocks listed."""
    turns: list[_Turn] = []
    roles = spec.roles.roles
    hidden = cleared(request.messages)
    spans = memo.spans([m.role for m in request.messages], roles, hidden) if memo else {}
    kept_until = memo.chain.end if memo and memo.chain else 0
    for i, message in enumerate(request.messages):
        if i < kept_until:
            continue
        rule = roles.get(message.role)
        if rule is None:
            raise invalid_request(f"messages.{i}.role: role '{message.role}' is not supported.")
        span = spans.get(i)
        if span is not None and span.kept is not None:
            turns.append(_Turn(rule.sent_as, span=span, first=i, last=span.end - 1))
            kept_until = span.end
            continue
        check_system_message(message, f"messages.{i}")
        blocks = _message_blocks(message, i)
        for block, where in blocks:
            check_block(block, where, message.role, spec)
        if rule.wrap is not None:
            text = "\n\n".join(t for t in (block_text(b, spec) for b, _ in blocks) if t)
            if not text or i in hidden:
                continue
            blocks = [({"type": "text", "text": rule.wrap.format(text=text)}, f"messages.{i}.content")]
        if not turns or turns[-1].role != rule.sent_as:
            turns.append(_Turn(rule.sent_as, span=span, first=i))
        turns[-1].blocks.extend(blocks)
        turns[-1].last = i
    return turns


def _filled(turn: _Turn, request: MessagesRequest | CountTokensRequest) -> _Turn:
    """The turn with its blocks, listed now if it was kept (a kept turn holds messages of plain roles)."""
    if turn.span is not None and turn.span.kept is not None:
        turn.blocks = [b for i in range(turn.first, turn.span.end) for b in _message_blocks(request.messages[i], i)]
    return turn


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
    text = block_text(block, spec)
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


def _place(asked: _Turn | str, request: MessagesRequest | CountTokensRequest) -> str:
    """Where an assistant turn (or its place, as a kept chain has it) is: ``messages.<its first message>``."""
    if isinstance(asked, str):
        return asked
    blocks = _filled(asked, request).blocks
    return blocks[0][1].rsplit(".content", 1)[0] if blocks else "messages"


def _unanswered(asked: _Turn | str, request: MessagesRequest | CountTokensRequest,
                pending: Mapping[str, int]) -> AnthropicError:
    """The refusal of an assistant turn's tool calls left without results (``asked``: that turn)."""
    return invalid_request(f"{_place(asked, request)}: tool_use ids were found without tool_result blocks "
                           f"immediately after: {', '.join(pending)}.")


def _user_messages(turn: _Turn, pending: dict[str, int], spec: Spec, budget: MediaBudget) -> list[dict[str, Any]]:
    """A user turn's tool messages (answering ``pending``, the previous turn's calls, each taken out of
    it) and its user message."""
    results: list[tuple[int, dict]] = []
    parts: list[dict] = []
    for block, where in turn.blocks:
        rule = spec.content.blocks[block["type"]]
        if rule.kind == "tool_result":
            call_id, _ = decode_tool_id(block["tool_use_id"])
            if call_id not in pending:
                raise invalid_request(f"{where}.tool_use_id: no tool_use with id '{block['tool_use_id']}' "
                                      "in the previous assistant message.")
            results.append((pending.pop(call_id), tool_message(block, where, call_id, spec, budget)))
        else:
            parts.extend(content_parts(block, where, rule, spec, budget))
    # Gemini pairs responses with calls; keep the calls' order whatever order results came in.
    messages = [m for _, m in sorted(results, key=lambda r: r[0])]
    if parts:
        if all(p["type"] == "text" for p in parts) and len(parts) == 1:
            messages.append({"role": "user", "content": parts[0]["text"]})
        else:
            messages.append({"role": "user", "content": parts})
    return messages


def _turn_messages(turn: _Turn, pending: dict[str, int], spec: Spec, plan: ToolPlan, budget: MediaBudget,
                   model: str) -> Translated:
    if turn.role == "user":
        return tuple(_user_messages(turn, pending, spec, budget)), ()
    message, call_ids = _assistant_message(turn, spec, plan, model)
    return ((message,) if message else ()), tuple(call_ids)


def _openai_messages(request: MessagesRequest | CountTokensRequest, spec: Spec, plan: ToolPlan,
                     bounds: ContentLimits, model: str, body: Any, cache: TurnCache | None) -> list[dict]:
    """The conversation as OpenAI messages; turns ``cache`` holds (see turn_cache.py) are not translated again."""
    budget = MediaBudget.from_limits(bounds)
    memo = turn_memo(cache, spec, body, model, plan.aliases, budget)
    messages: list[dict[str, Any]] = []
    system = _system_text(request, spec)
    if system:
        messages.append({"role": "system", "content": system})
    head = len(messages)
    turns = _turns(request, spec, memo)
    pending: dict[str, int] = {}  # call ids of the previous assistant turn → their order
    asked: _Turn | str = _Turn("assistant")  # that turn
    if memo is not None and memo.chain is not None:  # the leading turns, as a request before left them
        messages.extend(memo.chain.translated)
        pending, asked = {cid: n for n, cid in enumerate(memo.chain.pending)}, memo.chain.asked
    for turn in turns:
        if turn.role == "assistant" and pending:
            raise _unanswered(asked, request, pending)
        answered, kept = tuple(pending), turn.span.kept if turn.span else None
        if kept is not None and kept.answered == answered:
            translated, call_ids = kept.translated
        else:
            used = budget.used
            translated, call_ids = _turn_messages(_filled(turn, request), pending, spec, plan, budget, model)
            if pending:  # a user turn that left some of them unanswered
                raise _unanswered(asked, request, pending)
            if memo is not None and turn.span is not None:
                memo.keep(turn.span, answered, (translated, call_ids), used)
        messages.extend(translated)
        pending = {cid: n for n, cid in enumerate(call_ids)}
        if turn.role == "assistant":
            asked = turn
        if memo is not None and turn.last == memo.leading_end - 1 and not budget.used:
            memo.keep_chain(tuple(messages[head:]), tuple(pending), _place(asked, request) if pending else "")
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
    """The request's tools, changed by its mid-conversation tool_addition / tool_removal blocks."""
    toolset = changed_tools(request.tools, request.messages, spec.tools)
    try:
        return plan_tools(toolset.tools,
                          request.tool_choice.model_dump(exclude_none=True) if request.tool_choice else None,
                          spec.tools, cache, toolset.offered)
    except ToolError as exc:
        raise invalid_request(definition_place(str(exc), toolset)) from None


def translate_request(body: Any, spec: Spec, *, tool_cache: DeclarationCache | None = None,
                      limits: Mapping[str, int] | None = None, target: str | None = None,
                      turn_cache: TurnCache | None = None) -> UpstreamCall:
    """Validate an Anthropic request body and build the LiteLLM call for it (an :class:`UpstreamCall`).

    ``limits`` overrides content.yaml's ``limits`` (media_per_request, media_bytes, messages, content_blocks);
    ``target``, one of the route's fallbacks, builds the call for that model instead. Raises
    :class:`AnthropicError`: 400 ``invalid_request_error`` naming what is wrong, 404 ``not_found_error``
    for a model the proxy does not serve."""
    bounds = _limits(spec, limits)
    check_counts(body, spec, bounds)
    check_fields(body, spec)
    request = body if isinstance(body, MessagesRequest) else cast(MessagesRequest, parse_request(body, MessagesRequest))
    route = resolve_model(request.model, spec.models, target)
    plan = _plan(request, spec, tool_cache)
    facts = route.facts
    kwargs: dict[str, Any] = {
        "model": route.target,
        "messages": _openai_messages(request, spec, plan, bounds, route.signer, body, turn_cache),
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
    effort = turn_effort(request.messages, request.output_config.effort if request.output_config else None)
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
                           limits: Mapping[str, int] | None = None, turn_cache: TurnCache | None = None) -> UpstreamCall:
    """The same translation for ``/v1/messages/count_tokens`` (no max_tokens, never streamed): an
    :class:`UpstreamCall`, or :class:`AnthropicError` raised as by :func:`translate_request`."""
    bounds = _limits(spec, limits)
    check_counts(body, spec, bounds)
    check_fields(body, spec)
    request = parse_request(body, CountTokensRequest)
    route = resolve_model(request.model, spec.models)
    plan = _plan(request, spec, tool_cache)
    kwargs: dict[str, Any] = {"model": route.target,
                              "messages": _openai_messages(request, spec, plan, bounds, route.signer, body, turn_cache)}
    if plan.tools:
        kwargs["tools"] = plan.tools
    return UpstreamCall(route, kwargs, False, plan, 0)


__all__ = ["AnthropicError", "UpstreamCall", "translate_request", "translate_count_tokens"]
