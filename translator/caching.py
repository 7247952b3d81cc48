"""Explicit context caching: what the client asked to cache, where Gemini's cached prefix ends, its key.

Anthropic marks cacheable prefixes with ``cache_control`` breakpoints (on tools, system blocks or
message blocks; ``ttl`` 5m or 1h). Gemini caches a prefix as a ``cachedContents`` resource holding
systemInstruction, tools, toolConfig and the leading contents; a generate call that names it sends
only the contents after. This module is the pure part: the breakpoints of a request, the content
count each one reaches in the Gemini body, the registry keys of every prefix (a hash of its exact
bytes, per Gemini key and model), and which cache to use or make.
"""
from __future__ import annotations

import hashlib
import itertools
from dataclasses import dataclass
from typing import Any, Callable, Collection, Mapping, NamedTuple, Sequence

from .decoding import input_estimate, json_bytes

TTL_SECONDS = {"5m": 300, "1h": 3600}
HEAD_FIELDS = ("system_instruction", "systemInstruction", "tools", "toolConfig", "tool_config")
LOOKBACK = 64   # boundaries before the last breakpoint whose caches are looked up (Anthropic looks back 20 blocks)


@dataclass(frozen=True)
class CacheAsk:
    """The client's breakpoints: (Anthropic messages before and at it, TTL seconds), in request order;
    each message's role as sent to Gemini ("user" or "assistant")."""

    breakpoints: tuple[tuple[int, int], ...]
    roles: tuple[str, ...]


def _ttl(block: Any) -> int | None:
    control = block.get("cache_control") if isinstance(block, dict) else None
    if not isinstance(control, dict):
        return None
    return TTL_SECONDS.get(str(control.get("ttl", "5m")), TTL_SECONDS["5m"])


def cache_ask(body: Any, sent_as: Mapping[str, str]) -> CacheAsk | None:
    """The breakpoints of an Anthropic request body, or None when it carries no ``cache_control``;
    ``sent_as``: each Anthropic role's role as sent (roles.yaml)."""
    if not isinstance(body, dict):
        return None
    found: list[tuple[int, int]] = []
    system = body.get("system")
    for block in [*(body.get("tools") or ()), *(system if isinstance(system, list) else ())]:
        if (ttl := _ttl(block)) is not None:
            found.append((0, ttl))
    messages = body.get("messages") or ()
    for number, message in enumerate(messages):
        content = message.get("content") if isinstance(message, dict) else None
        for block in content if isinstance(content, list) else ():
            if "cache_control" in block and (ttl := _ttl(block)) is not None:  # (a block not a dict: refused later)
                found.append((number + 1, ttl))
    if not found:
        return None
    roles = tuple([sent_as.get(str(m.get("role")), "user") if isinstance(m, dict) else "user" for m in messages])
    return CacheAsk(tuple(found), roles)


def content_counts(ask: CacheAsk, contents: Sequence[Mapping[str, Any]]) -> list[tuple[int, int]]:
    """Each breakpoint as (Gemini contents before and at it, TTL). ``roles``: each Anthropic message's role
    as sent ("user" or "assistant"); a run of consecutive messages of one role becomes a run of Gemini
    contents of that role (one content, or several when the translation splits it, as a tool result
    followed by text), so a breakpoint inside such a run holds only the runs before it. Empty when the
    body does not line up with the messages (then nothing is cached); never the whole body (a generate
    call needs contents)."""
    roles = ask.roles
    runs = [role for number, role in enumerate(roles) if number == 0 or roles[number - 1] != role]
    gemini_roles = ["user" if content.get("role", "user") == "user" else "assistant" for content in contents]
    ends = [n + 1 for n, role in enumerate(gemini_roles) if n + 1 == len(gemini_roles) or gemini_roles[n + 1] != role]
    if runs != [gemini_roles[end - 1] for end in ends] or not contents:
        return []
    counted = []
    # runs_before[m]: the runs of one role that begin among the first m messages
    runs_before = list(itertools.accumulate((n == 0 or roles[n] != roles[n - 1] for n in range(len(roles))),
                                            initial=0))
    for messages, ttl in ask.breakpoints:
        messages = min(messages, len(roles))
        closed = messages == len(roles) or messages == 0 or roles[messages] != roles[messages - 1]
        whole = runs_before[messages]
        held = whole if closed else whole - 1
        n = min(ends[held - 1] if held else 0, len(contents) - 1)
        while n and _calls_functions(contents[n - 1]):   # a call's answer must come in the same part of the body
            n -= 1
        counted.append((n, ttl))
    return counted


def _calls_functions(content: Mapping[str, Any]) -> bool:
    return any(isinstance(part, dict) and ("functionCall" in part or "function_call" in part)
               for part in content.get("parts") or ())


def canonical_json(value: Any) -> bytes:
    """``value`` as compact JSON with sorted keys: the bytes a cache prefix's key hashes."""
    return json_bytes(value, sort_keys=True)


class Hashed(NamedTuple):
    """Where hashing a body's prefixes got to: after its first ``through`` contents, the SHA-256 state
    (a copy: :func:`hashed_prefixes` copies it again to go on) and each prefix's bytes so far; and the
    digest of the head it began with (``[model, system, tools, tool config]``), which a resumed hash
    must share."""

    through: int
    digest: Any
    sizes: tuple[int, ...]
    opened: bytes


def prefixes(tag: str, model: str, body: Mapping[str, Any], last: int,
             write: Callable[[Any], bytes] = canonical_json,
             keyed: Collection[int] | None = None) -> tuple[list[str], list[int]]:
    """The registry key of every prefix of ``body`` holding 0..``last`` contents (with its head: system,
    tools, tool config): the Gemini key's tag, the model and a SHA-256 of the prefix's exact bytes;
    and each prefix's bytes, for token estimates. Each content is written once for both, by ``write``
    (:func:`canonical_json`, or a caller's memo of it for contents it sees again). With ``keyed``, only
    those prefixes get a key (the others ""): finishing a hash for each of a thousand contents is most
    of the work once the contents are written."""
    keys, sizes, _ = hashed_prefixes(tag, model, body, last, write, keyed)
    return keys, sizes


def hashed_prefixes(tag: str, model: str, body: Mapping[str, Any], last: int,
                    write: Callable[[Any], bytes] = canonical_json, keyed: Collection[int] | None = None,
                    start: Hashed | None = None, stop: int = 0) -> tuple[list[str], list[int], Hashed | None]:
    """:func:`prefixes`, going on from ``start`` (the state after the same first ``start.through`` contents:
    the caller knows they are; it is taken after the same head, and when ``keyed`` holds none of the
    prefixes it covers but the head alone and its last, those getting no key); and the state after the
    first ``stop`` contents
    (None for 0), for a next body that begins as this one does."""
    head = canonical_json([body.get(name) for name in HEAD_FIELDS])   # written once: it is most of a short turn
    digest = hashlib.sha256(b"[" + canonical_json(model) + b"," + head[1:])   # the bytes of [model, *head]
    opened = digest.digest()
    named = f"{tag}:{model}:"
    keys = [named + digest.hexdigest() if keyed is None or 0 in keyed else ""]
    sizes = [len(head)]
    if (start is not None and keyed is not None and start.opened == opened and 0 < start.through <= last
            and not any(0 < number < start.through for number in keyed)):
        digest, sizes = start.digest.copy(), list(start.sizes)
        keys += [""] * (start.through - 1)
        keys.append(named + digest.hexdigest() if start.through in keyed else "")
    contents = body.get("contents", ())
    written = [write(content) for content in contents[len(sizes) - 1:last]]
    sizes += itertools.accumulate(map(len, written), initial=sizes[-1])
    del sizes[len(keys)]   # (accumulate's initial value again)
    kept = None
    for number, data in enumerate(written, len(keys)):
        digest.update(data)
        keys.append(named + digest.hexdigest() if keyed is None or number in keyed else "")
        if number == stop:
            kept = Hashed(number, digest.copy(), tuple(sizes[:number + 1]), opened)
    return keys, sizes, kept


def prefix_keys(tag: str, model: str, body: Mapping[str, Any], last: int) -> list[str]:
    """The registry keys of :func:`prefixes`."""
    return prefixes(tag, model, body, last)[0]


@dataclass(frozen=True)
class CacheChoice:
    """The cached prefix to name (contents it holds), and whether it must be made first."""

    contents: int
    create: bool
    ttl_seconds: int


def choose_cache(counted: Sequence[tuple[int, int]], found: Mapping[int, bool], sizes: Sequence[int],
                 minimum_tokens: int, worth: Any) -> CacheChoice | None:
    """The cache a call names. ``found``: prefix contents → True for a live cache, False for one Gemini
    found too small; ``sizes``: each prefix's bytes; ``worth(new_tokens, ttl)``: whether a longer cache
    pays (prices.yaml ``cache_growth``). The target is the last breakpoint whose prefix reaches the
    model's minimum; a live cache is reused unless the target is longer and worth making."""
    targets = [(n, ttl) for n, ttl in counted
               if input_estimate(sizes[n]) >= minimum_tokens and found.get(n) is not False]
    live = [n for n, alive in found.items() if alive]
    ttl_of = dict(counted)
    existing = max(live) if live else None
    if not targets:
        return None if existing is None else CacheChoice(existing, False, ttl_of.get(existing, TTL_SECONDS["5m"]))
    target, ttl = max(targets)
    if existing is None:
        return CacheChoice(target, True, ttl)
    new_tokens = input_estimate(sizes[target]) - input_estimate(sizes[existing])
    if target > existing and worth(new_tokens, ttl):
        return CacheChoice(target, True, ttl)
    return CacheChoice(existing, False, ttl_of.get(existing, ttl))
