"""Carrying Gemini thought signatures through Anthropic clients, without proxy memory.

Gemini 3 rejects the next step of a tool loop unless each step's first function call comes back
with the signature Gemini issued. Anthropic clients echo ``tool_use.id`` verbatim (in the
assistant turn and in ``tool_result.tool_use_id``), so the id carries both Gemini's call id
and the signature:

    toolu_gm<n>_<base64url(call id), n chars><base64url(signature)>

Ids must match ``^[a-zA-Z0-9_-]+$``; base64url without padding does. Ids that are not in this
form (a conversation begun on Claude) pass through unchanged, with no signature.

The thinking block that precedes a tool call also carries that call's signature in its
``signature`` field (``gm1:<signature>``), as a second carrier for clients that rewrite ids.

A signature is valid only for the model that issued it: replayed to another (a fallback model, or
the model Claude Code's ``/model`` switched to) Gemini answers 400 "Corrupted thought signature".
So each carried signature is tagged with its issuer, ``<tag>:<signature>`` (the tag: 8 base64url
characters of the model name's SHA-256; Gemini's signatures are base64, without ":"), and the
request side passes on only the signatures of the model it is built for. For the others LiteLLM
puts Gemini's documented placeholder for foreign history, which Gemini accepts. Untagged
signatures (ids made before tags) are passed on as they are.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
from functools import lru_cache

_ID = re.compile(r"toolu_gm(\d{1,6})_([A-Za-z0-9_-]*)\Z")
_LITELLM_SUFFIX = "__thought__"  # LiteLLM appends the signature to its own call ids
THINKING_PREFIX = "gm1:"


def _b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unb64(text: str) -> str:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()


def encode_tool_id(call_id: str | None, signature: str | None, fallback: str) -> str:
    """The Anthropic ``tool_use.id`` for a Gemini call id and its signature (if any); ``fallback``
    stands in for a missing call id. Raises nothing."""
    call_id = (call_id or fallback).split(_LITELLM_SUFFIX, 1)[0]
    head = _b64(call_id)
    return f"toolu_gm{len(head)}_{head}{_b64(signature) if signature else ''}"


def decode_tool_id(tool_id: str) -> tuple[str, str | None]:
    """Inverse of :func:`encode_tool_id`: (Gemini call id, signature or None). An id not in that
    form (a Claude id, or a broken one) comes back as it is, with None; raises nothing."""
    match = _ID.match(tool_id)
    if not match:
        return tool_id, None
    size, rest = int(match.group(1)), match.group(2)
    if size > len(rest):
        return tool_id, None
    try:
        call_id = _unb64(rest[:size])
        signature = _unb64(rest[size:]) if len(rest) > size else None
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return tool_id, None
    return call_id, signature


def thinking_signature(signature: str | None) -> str:
    return THINKING_PREFIX + (signature or "")


def signature_from_thinking(value: str) -> str | None:
    if value.startswith(THINKING_PREFIX):
        return value[len(THINKING_PREFIX):] or None
    return None


@lru_cache(maxsize=256)
def model_tag(model: str) -> str:
    """A short, stable name of a Gemini model (without provider prefix) for tagging signatures."""
    return _b64(hashlib.sha256(model.encode()).hexdigest())[:8]


def tag_signature(signature: str | None, model: str) -> str | None:
    """``signature`` marked as issued by ``model``."""
    return f"{model_tag(model)}:{signature}" if signature else None


def signature_for(carried: str | None, model: str) -> str | None:
    """The signature to send ``model`` from a carried one: its own, an untagged one, else None."""
    if not carried:
        return None
    tag, colon, signature = carried.partition(":")
    if not colon:
        return carried
    return signature if tag == model_tag(model) else None
