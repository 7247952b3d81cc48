"""A bounded memo of translated conversation turns, owned by the caller (one per loaded spec).

Claude Code sends the whole conversation again on every turn, so all but the newest turns of a request
were translated by the request before. A turn (a run of messages of one role after role mapping, see
``request._turns``) is kept under its messages' bytes and everything else its translation reads: the
model whose signatures go back (``route.signer``), the names Gemini knows the tools by (the plan's
aliases), the media limits; beside it, the tool_use ids it answered (a user turn), which must be the
ones pending for it to be used. The spec is the cache's own: a request translated with another spec
empties it first. A turn that took from the request's media budget (an image, a document), or that
holds or borders a message of a role with a ``wrap`` (a mid-conversation system message, shown or not
by its place), is never kept.

The leading turns of a request are also kept whole, as a chain, when none of them took media: its runs
of one mapped role from the first message on, whatever their roles (Claude Code's second message is a
system message), up to one marshal refuses, ending where a turn must begin and before the request's
last turn (which the next request may extend), keyed by their runs' keys and by which of their system
messages are cleared. The next request of the conversation (the same turns, then an answer and a
question) finds them with one lookup and translates only what follows, from the tool_use ids they
left pending.

A turn is kept only once it was checked and translated, so a turn found here is not checked again:
the per-message checks (role, system-message fields, content blocks) read nothing but the message and
the spec. The checks of a request as a whole (counts, fields, its shape, tool_use/tool_result pairing)
always run. A message's bytes are marshal's (version 2), not JSON's: marshal tells a tuple from a list
and True from 1, and refuses str subclasses and non-builtin types (such a turn is not kept), so equal
bytes are equal values of equal types. Keys hold the bytes themselves (compared on a hit, so no two
turns can be confused); a turn's bytes are counted twice against ``max_bytes`` (the translation beside
them is about as large). Hits hand out the kept OpenAI messages themselves: treat them as read-only
(LiteLLM leaves them unchanged, see tests/test_turn_cache.py).
"""
from __future__ import annotations

import marshal
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple, Sequence

from .media import MediaBudget
from .spec import Spec
from .tables import RoleRule

MARSHAL_VERSION = 2   # version 3 on marks objects referenced twice, which depends on reference counts
ENTRY_COST = 512      # bytes counted for an entry beside its messages' (key, links, message dicts)
CHAIN_TRIES = 4       # chain lengths tried: the leading runs of the request, and up to 3 shorter

Translated = tuple[tuple[dict[str, Any], ...], tuple[str, ...]]  # OpenAI messages, tool_use ids left pending


@dataclass(frozen=True)
class Kept:
    """A turn's translation, and the tool_use ids (in the previous turn's order) it answered."""

    answered: tuple[str, ...]
    translated: Translated


class TurnCache:
    """Bounded LRU of translated turns (see the module's docstring); thread-safe (service/offload.py
    translates in worker threads)."""

    def __init__(self, max_bytes: int):
        if max_bytes < 1:
            raise ValueError("TurnCache max_bytes must be at least 1")
        self.max_bytes = max_bytes
        self.size = 0
        self._spec: Spec | None = None
        self._entries: OrderedDict[tuple, tuple[Kept | Chain, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def _get(self, spec: Spec, key: tuple) -> Any:
        return self._get_all(spec, [key])[0]

    def _drop(self, key: tuple) -> None:
        with self._lock:
            entry = self._entries.pop(key, None)
            self.size -= entry[1] if entry else 0

    def _get_all(self, spec: Spec, keys: list[tuple]) -> list[Any]:
        with self._lock:
            if spec is not self._spec:
                return [None] * len(keys)
            found = [self._entries.get(key) for key in keys]
            for key, entry in zip(keys, found):
                if entry is not None:
                    self._entries.move_to_end(key)
            return [entry[0] if entry else None for entry in found]

    def _put(self, spec: Spec, key: tuple, kept: Kept | Chain, cost: int) -> None:
        if cost > self.max_bytes:
            return
        with self._lock:
            if spec is not self._spec:  # what was checked and translated under other tables
                self._entries.clear()
                self._spec, self.size = spec, 0
            old = self._entries.pop(key, None)
            self.size += cost - (old[1] if old else 0)
            self._entries[key] = (kept, cost)
            while self.size > self.max_bytes:
                self.size -= self._entries.popitem(last=False)[1][1]


class Chain(NamedTuple):
    """The leading turns of a conversation (messages 0 to ``end``, excluded), translated, and where they
    leave the next: the tool_use ids pending, and the place of the turn that made them (for a refusal)."""

    end: int
    translated: tuple[dict[str, Any], ...]
    pending: tuple[str, ...]
    asked: str


class Span(NamedTuple):
    """Messages ``start`` to ``end`` (excluded), a whole turn: its key, and what the cache holds for it."""

    end: int
    key: tuple
    kept: Kept | None


@dataclass
class TurnMemo:
    """The cache as one request uses it: its raw messages, the key part its turns share, its media budget."""

    cache: TurnCache
    spec: Spec
    raw: list[Any]                   # the body's messages, as the client sent them
    context: bytes                   # signer, aliases, media limits (marshalled)
    budget: MediaBudget
    hidden: frozenset[int] = frozenset()  # the system messages cleared here (see system_messages.cleared)
    leading: list[tuple[int, tuple]] = field(default_factory=list)  # (end, key) of the runs from the first on
    clean: list[int] = field(default_factory=list)  # how many of them end where a turn must begin
    chain: Chain | None = None       # what the cache holds for the most of them
    chained: int = 0                 # how many

    def spans(self, roles: Sequence[str], rules: Mapping[Any, RoleRule], hidden: frozenset[int]) -> dict[int, Span]:
        """The turns that may be memoised one by one, by their first message: runs of one mapped role,
        their messages of roles without ``wrap``, whose neighbour runs hold such a message (so are never
        left out, which would merge the runs around them). ``roles`` are the messages' roles. Also finds
        the chain kept of the leading runs (any roles), keyed with which of them are ``hidden``."""
        runs = _runs(roles, rules)
        self.hidden = hidden
        whole_turns: dict[int, tuple] = {}
        for n, (role, start, end, plain, _) in enumerate(runs):
            next_lasts = n + 1 == len(runs) or runs[n + 1][4]
            whole = plain and (n == 0 or runs[n - 1][4]) and next_lasts
            if not whole and len(self.leading) < n:
                continue  # neither a turn of its own nor one of the leading runs
            key = self._key(role, start, end)
            if key is None:
                continue
            if len(self.leading) == n:
                self.leading.append((end, key))
                if next_lasts and n + 1 < len(runs):  # the last turn is the one a next request changes
                    self.clean.append(n + 1)
            if whole:
                whole_turns[start] = key
        self._find_chain()
        after = {start: key for start, key in whole_turns.items() if start >= (self.chain.end if self.chain else 0)}
        kept = self.cache._get_all(self.spec, list(after.values()))
        ends = {start: end for _, start, end, _, _ in runs}
        return {start: Span(ends[start], key, found) for (start, key), found in zip(after.items(), kept)}

    @property
    def leading_end(self) -> int:
        """The end of the most leading runs a chain may hold (-1: none)."""
        return self.leading[self.clean[-1] - 1][0] if self.clean else -1

    def _chain_key(self, runs: int) -> tuple:
        end = self.leading[runs - 1][0]
        return ("chain", tuple(sorted(i for i in self.hidden if i < end)), *(key for _, key in self.leading[:runs]))

    def _find_chain(self) -> None:
        """The longest chain kept of the leading turns, trying the lengths a next request of the
        conversation has (the same turns, and one or two more: an answer and the next question)."""
        for runs in reversed(self.clean[-CHAIN_TRIES:]):
            found = self.cache._get(self.spec, self._chain_key(runs))
            if found is not None:
                self.chain, self.chained = found, runs
                return

    def keep_chain(self, translated: tuple[dict[str, Any], ...], pending: tuple[str, ...], asked: str) -> None:
        """Keep the leading turns' translation (in place of the shorter chain found, if any)."""
        runs = self.clean[-1] if self.clean else 0
        if runs <= max(self.chained, 1):
            return
        size = sum(len(part) for _, key in self.leading[:runs] for part in key[2:])
        self.cache._put(self.spec, self._chain_key(runs), Chain(self.leading_end, translated, pending, asked),
                        size + 8 * len(translated) + ENTRY_COST)
        if self.chained:
            self.cache._drop(self._chain_key(self.chained))

    def _key(self, role: str, start: int, end: int) -> tuple | None:
        """The key of messages ``start`` to ``end``: the request's context, the role, their bytes; None when
        marshal refuses one (a subclass, a non-builtin type, or nested too deeply)."""
        try:
            return (self.context, role, *[marshal.dumps(self.raw[i], MARSHAL_VERSION) for i in range(start, end)])
        except ValueError:
            return None

    def keep(self, span: Span, answered: tuple[str, ...], translated: Translated, budget_used: int) -> None:
        """Keep a turn's translation, unless it took from the media budget (since ``budget_used``)."""
        if self.budget.used == budget_used:
            size = sum(len(part) for part in span.key[2:])
            self.cache._put(self.spec, span.key, Kept(answered, translated), 2 * size + ENTRY_COST)


def _runs(roles: Sequence[str], rules: Mapping[Any, RoleRule]) -> list[tuple[str, int, int, bool, bool]]:
    """The messages (by their ``roles``) as runs of one mapped role: (that role, start, end, whether all
    their roles are without ``wrap``, whether any is); up to a role the tables lack (refused there)."""
    mapped = {role: (rule.sent_as, rule.wrap is None) for role, rule in rules.items()}
    known: list[tuple[str, bool]] = []
    for role in roles:
        if role not in mapped:
            break
        known.append(mapped[role])
    runs = []
    start = 0
    for i in range(1, len(known) + 1):
        if i == len(known) or known[i][0] != known[start][0]:
            plain = [p for _, p in known[start:i]]
            runs.append((known[start][0], start, i, all(plain), any(plain)))
            start = i
    return runs


def turn_memo(cache: TurnCache | None, spec: Spec, body: Any, signer: str, aliases: Mapping[str, str],
              budget: MediaBudget) -> TurnMemo | None:
    """The memo for one request's translation, or None without a cache or a body of plain messages."""
    raw = body.get("messages") if cache is not None and isinstance(body, dict) else None
    if cache is None or not isinstance(raw, list):
        return None
    context = marshal.dumps((signer, sorted(aliases.items()), budget.max_count, budget.max_bytes), MARSHAL_VERSION)
    return TurnMemo(cache, spec, raw, context, budget)


__all__ = ["Chain", "Kept", "Span", "TurnCache", "TurnMemo", "Translated", "turn_memo"]
