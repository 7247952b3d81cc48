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
last turn (which the next request may extend), with their messages' bytes and which of their system
messages are cleared, under the context and the first message's bytes (the chains of up to
``TurnCache.FORKS`` conversations that open alike). The next request of the conversation (the same
turns, then an answer and a question) finds them with one lookup and one comparison of the bytes, and
translates only what follows, from the tool_use ids they left pending.

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

import bisect
import itertools
import marshal
import operator
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Mapping, NamedTuple, Sequence, cast

from .media import MediaBudget
from .spec import Spec
from .tables import RoleRule

MARSHAL_VERSION = 2   # version 3 on marks objects referenced twice, which depends on reference counts
ENTRY_COST = 512      # bytes counted for an entry beside its messages' (key, links, message dicts)

Translated = tuple[tuple[dict[str, Any], ...], tuple[str, ...]]  # OpenAI messages, tool_use ids left pending


@dataclass(frozen=True)
class Kept:
    """A turn's translation, and the tool_use ids (in the previous turn's order) it answered."""

    answered: tuple[str, ...]
    translated: Translated


class TurnCache:
    """Bounded LRU of translated turns (see the module's docstring); thread-safe (service/offload.py
    translates in worker threads)."""

    FORKS = 4   # chains kept of conversations that open with the same first message

    def __init__(self, max_bytes: int):
        if max_bytes < 1:
            raise ValueError("TurnCache max_bytes must be at least 1")
        self.max_bytes = max_bytes
        self.size = 0
        self._spec: Spec | None = None
        self._entries: OrderedDict[tuple, tuple[Kept | tuple[Chain, ...], int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def _get(self, spec: Spec, key: tuple) -> Any:
        return self._get_all(spec, [key])[0]

    def _get_all(self, spec: Spec, keys: list[tuple]) -> list[Any]:
        with self._lock:
            if spec is not self._spec:
                return [None] * len(keys)
            found = [self._entries.get(key) for key in keys]
            for key, entry in zip(keys, found):
                if entry is not None:
                    self._entries.move_to_end(key)
            return [entry[0] if entry else None for entry in found]

    def _put(self, spec: Spec, key: tuple, kept: Kept | tuple[Chain, ...], cost: int) -> None:
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
    leave the next: the tool_use ids pending, and the place of the turn that made them (for a refusal);
    what it was kept under: its messages' bytes and which of them were cleared system messages."""

    end: int
    translated: tuple[dict[str, Any], ...]
    pending: tuple[str, ...]
    asked: str
    dumped: tuple[bytes, ...]
    hidden: tuple[int, ...]


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
    dumped: list[bytes | None] = field(default_factory=list)  # each message's marshal bytes (None: refused)
    leading: list[int] = field(default_factory=list)  # the ends of the runs from the first on, all marshalled
    clean: list[int] = field(default_factory=list)  # how many of them end where a turn must begin
    forks: tuple[Chain, ...] = ()    # the chains kept of conversations opening with this one's first message
    chain: Chain | None = None       # the one of them that holds the most of its leading runs
    chained: int = 0                 # how many

    def spans(self, roles: Sequence[str], rules: Mapping[Any, RoleRule], hidden: frozenset[int]) -> dict[int, Span]:
        """The turns that may be memoised one by one, by their first message: runs of one mapped role,
        their messages of roles without ``wrap``, whose neighbour runs hold such a message (so are never
        left out, which would merge the runs around them). ``roles`` are the messages' roles. Also finds
        the chain kept of the leading runs (any roles), with which of them are ``hidden``."""
        runs = _runs(roles, rules)
        self.hidden = hidden
        self.dumped, complete = _dumped(self.raw[:runs[-1][2]] if runs else [])
        leading = len(runs) if complete else next(
            (n for n, run in enumerate(runs) if None in self.dumped[run[1]:run[2]]), len(runs))
        self.leading = [run[2] for run in runs[:leading]]
        self.clean = [n + 1 for n in range(min(leading, len(runs) - 1)) if runs[n + 1][4]]
        self._find_chain()
        after = self.chain.end if self.chain else 0
        found: dict[int, tuple[int, tuple]] = {}
        for n in range(bisect.bisect_left(runs, after, key=operator.itemgetter(1)), len(runs)):
            role, start, end, plain, _ = runs[n]
            if not plain or (n and not runs[n - 1][4]) or (n + 1 < len(runs) and not runs[n + 1][4]):
                continue  # not a turn of its own
            parts = self.dumped[start:end]
            if complete or None not in parts:
                found[start] = (end, (self.context, role, *parts))
        kept = self.cache._get_all(self.spec, [key for _, key in found.values()])
        return {start: Span(end, key, held) for (start, (end, key)), held in zip(found.items(), kept)}

    @property
    def leading_end(self) -> int:
        """The end of the most leading runs a chain may hold (-1: none)."""
        return self.leading[self.clean[-1] - 1] if self.clean else -1

    def _chain_key(self) -> tuple:
        """Where the conversation's chain is kept: by its first message (checked whole when found)."""
        return ("chain", self.context, self.dumped[0])

    def _hidden_before(self, end: int) -> tuple[int, ...]:
        return tuple(sorted(i for i in self.hidden if i < end))

    def _find_chain(self) -> None:
        """The longest chain kept of this conversation (of those opening with its first message) that is
        this request's leading turns: the same bytes, the same cleared system messages, ending where a
        turn of this request must begin."""
        if not self.clean:
            return
        self.forks = self.cache._get(self.spec, self._chain_key()) or ()
        ends = {self.leading[n - 1]: n for n in self.clean}
        for chain in sorted(self.forks, key=lambda chain: -chain.end):
            runs = ends.get(chain.end)
            if (runs is not None and chain.hidden == self._hidden_before(chain.end)
                    and chain.dumped == tuple(self.dumped[:chain.end])):
                self.chain, self.chained = chain, runs
                return

    def keep_chain(self, translated: tuple[dict[str, Any], ...], pending: tuple[str, ...], asked: str) -> None:
        """Keep the leading turns' translation, in place of the shorter chain found (if any), beside the
        other conversations that open with the same first message (up to the cache's FORKS in all)."""
        runs = self.clean[-1] if self.clean else 0
        if runs <= max(self.chained, 1):
            return
        end = self.leading_end
        dumped = cast(tuple[bytes, ...], tuple(self.dumped[:end]))
        forks = (Chain(end, translated, pending, asked, dumped, self._hidden_before(end)),
                 *(chain for chain in self.forks if chain is not self.chain))[:self.cache.FORKS]
        self.cache._put(self.spec, self._chain_key(), forks, sum(map(_chain_cost, forks)))

    def keep(self, span: Span, answered: tuple[str, ...], translated: Translated, budget_used: int) -> None:
        """Keep a turn's translation, unless it took from the media budget (since ``budget_used``)."""
        if self.budget.used == budget_used:
            size = sum(map(len, span.key[2:]))
            self.cache._put(self.spec, span.key, Kept(answered, translated), 2 * size + ENTRY_COST)


def _chain_cost(chain: Chain) -> int:
    return sum(map(len, chain.dumped)) + 8 * len(chain.translated) + ENTRY_COST


def _runs(roles: Sequence[str], rules: Mapping[Any, RoleRule]) -> list[tuple[str, int, int, bool, bool]]:
    """The messages (by their ``roles``) as runs of one mapped role: (that role, start, end, whether all
    their roles are without ``wrap``, whether any is); up to a role the tables lack (refused there)."""
    mapped = {role: (rule.sent_as, rule.wrap is None) for role, rule in rules.items()}
    if not mapped.keys() >= set(roles):
        roles = list(itertools.takewhile(mapped.__contains__, roles))
    sent = [mapped[role][0] for role in roles]
    plain = [mapped[role][1] for role in roles]
    starts = [n for n, (before, this) in enumerate(zip(sent, sent[1:]), 1) if before != this]
    ends = [*starts, len(sent)]
    starts.insert(0, 0)
    if all(plain):   # as in most conversations: no role with a wrap
        return [(sent[start], start, end, True, True) for start, end in zip(starts, ends)] if sent else []
    return [(sent[start], start, end, all(plain[start:end]), any(plain[start:end])) for start, end in zip(starts, ends)
            ] if sent else []


def _dumped(messages: Sequence[Any]) -> tuple[list[bytes | None], bool]:
    """Each message's marshal bytes, None for one marshal refuses (a subclass, a non-builtin type, or
    nested too deeply), whose turn is not kept; and whether there is none."""
    try:
        return [marshal.dumps(message, MARSHAL_VERSION) for message in messages], True
    except ValueError:
        return [_marshalled(message) for message in messages], False


def _marshalled(message: Any) -> bytes | None:
    try:
        return marshal.dumps(message, MARSHAL_VERSION)
    except ValueError:
        return None


def turn_memo(cache: TurnCache | None, spec: Spec, body: Any, signer: str, aliases: Mapping[str, str],
              budget: MediaBudget) -> TurnMemo | None:
    """The memo for one request's translation, or None without a cache or a body of plain messages."""
    raw = body.get("messages") if cache is not None and isinstance(body, dict) else None
    if cache is None or not isinstance(raw, list):
        return None
    context = marshal.dumps((signer, sorted(aliases.items()), budget.max_count, budget.max_bytes), MARSHAL_VERSION)
    return TurnMemo(cache, spec, raw, context, budget)


__all__ = ["Chain", "Kept", "Span", "TurnCache", "TurnMemo", "Translated", "turn_memo"]
