"""A bounded memo of translated conversation turns, owned by the caller (one per loaded spec).

Claude Code sends the whole conversation again on every turn, so all but the newest turns of a request
were translated by the request before. A turn (a run of messages of one role after role mapping, see
``request._turns``) is kept under a hash of its messages' bytes and of everything else its translation
reads: the model whose signatures go back (``route.signer``), the names Gemini knows the tools by (the
plan's aliases), the tool_use ids a user turn answers, in their order, and the media limits. The spec is
the cache's own: a request translated with another spec empties it first. A turn that takes from the
request's media budget (an image or a document) or holds a message of a role with a ``wrap`` (a
mid-conversation system message, shown or not by its place) is never kept.

A message's bytes are marshal's (version 2), not JSON's: marshal tells a tuple from a list and True
from 1, and refuses str subclasses and non-builtin types (such a message is then neither checked from
memory nor kept), so equal bytes are equal values of equal types, which checks and translation treat
alike. A message whose bytes passed the per-message checks (its role, its system-message fields, its
content blocks) under this spec is not checked again; the checks of a request as a whole (counts,
fields, its shape, tool_use/tool_result pairing) always run. Hits hand out the kept OpenAI messages
themselves: treat them as read-only (LiteLLM leaves them unchanged, see tests/test_turn_cache.py).
"""
from __future__ import annotations

import hashlib
import marshal
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .media import MediaBudget
from .spec import Spec

MARSHAL_VERSION = 2        # version 3 on marks objects referenced twice, which depends on reference counts
ENTRY_COST = 160           # bytes counted for an entry beside its messages' bytes (digest, links)
_VALID = object()          # the value kept for a message that passed the per-message checks

Translated = tuple[tuple[dict[str, Any], ...], tuple[str, ...]]  # OpenAI messages, tool_use ids left pending


class TurnCache:
    """Bounded LRU of translated turns and of checked messages, by content hash; ``max_bytes`` bounds the
    bytes of the kept turns' messages (the translations kept beside them are about as large), plus
    :data:`ENTRY_COST` per entry. Thread-safe (service/offload.py translates in worker threads)."""

    def __init__(self, max_bytes: int):
        if max_bytes < 1:
            raise ValueError("TurnCache max_bytes must be at least 1")
        self.max_bytes = max_bytes
        self.size = 0
        self._spec: Spec | None = None
        self._entries: OrderedDict[bytes, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def _get(self, spec: Spec, key: bytes) -> Any:
        with self._lock:
            entry = self._entries.get(key) if spec is self._spec else None
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def _put(self, spec: Spec, key: bytes, value: Any, cost: int) -> None:
        if cost > self.max_bytes:
            return
        with self._lock:
            if spec is not self._spec:  # what was checked or translated under other tables
                self._entries.clear()
                self._spec, self.size = spec, 0
            old = self._entries.pop(key, None)
            self.size += cost - (old[1] if old else 0)
            self._entries[key] = (value, cost)
            while self.size > self.max_bytes:
                self.size -= self._entries.popitem(last=False)[1][1]


def _digest(data: bytes, person: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16, person=person).digest()


@dataclass
class TurnMemo:
    """The cache as one request uses it: its raw messages, and the key part every turn shares."""

    cache: TurnCache
    spec: Spec
    raw: list[Any]                   # the body's messages, as the client sent them
    context: bytes                   # signer, aliases, media limits (marshalled)
    budget: MediaBudget
    _digests: dict[int, tuple[bytes, int] | None] = field(default_factory=dict)

    def message(self, index: int) -> tuple[bytes, int] | None:
        """The digest and size of message ``index``'s bytes, or None when marshal refuses it."""
        if index not in self._digests:
            try:
                data = marshal.dumps(self.raw[index], MARSHAL_VERSION)
            except ValueError:  # a subclass, a non-builtin type, or nested too deeply
                self._digests[index] = None
            else:
                self._digests[index] = (_digest(data, b"message"), len(data))
        return self._digests[index]

    def checked(self, digest: bytes) -> bool:
        """Whether a message of these bytes passed the per-message checks under this spec."""
        return self.cache._get(self.spec, digest) is _VALID

    def note_checked(self, digest: bytes) -> None:
        self.cache._put(self.spec, digest, _VALID, ENTRY_COST)

    def turn(self, role: str, digests: list[bytes] | None, size: int, pending: tuple[str, ...],
             translate: Callable[[], Translated]) -> Translated:
        """The turn's translation from memory, else ``translate()``'s, kept when it took no media."""
        if digests is None:
            return translate()
        key = _digest(marshal.dumps((self.context, role, pending), MARSHAL_VERSION) + b"".join(digests), b"turn")
        kept = self.cache._get(self.spec, key)
        if kept is not None:
            return kept
        used = self.budget.used
        translated = translate()
        if self.budget.used == used:
            self.cache._put(self.spec, key, translated, size + ENTRY_COST)
        return translated


def turn_memo(cache: TurnCache | None, spec: Spec, body: Any, signer: str, aliases: Mapping[str, str],
              budget: MediaBudget) -> TurnMemo | None:
    """The memo for one request's translation, or None without a cache or a body of plain messages."""
    raw = body.get("messages") if cache is not None and isinstance(body, dict) else None
    if cache is None or not isinstance(raw, list):
        return None
    context = marshal.dumps((signer, sorted(aliases.items()), budget.max_count, budget.max_bytes), MARSHAL_VERSION)
    return TurnMemo(cache, spec, raw, context, budget)


__all__ = ["TurnCache", "TurnMemo", "turn_memo"]
