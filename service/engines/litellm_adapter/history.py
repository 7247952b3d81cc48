"""LiteLLM's conversion of a conversation's history into Gemini ``contents``, remembered across turns.

Claude Code sends the whole conversation on every turn, and LiteLLM converts every message of it
again (``gemini_convert_messages_with_history``: a third of a 1 MB turn's CPU). Its conversion is a
left fold whose state is empty just before an assistant message that follows a user or tool message:
the user's content and the tool responses have been written, and the tool results that follow
belong to that assistant message's calls. So the history splits there into segments that convert
alone to the same contents as they do in the whole, and a segment seen before (the same OpenAI
messages, model and provider, hashed) gives back the contents it gave then.

Only segments of text (string content, text parts, tool calls and results) are kept: LiteLLM
rewrites media parts in place and reads them for the request's media resolution. The last segment
is always converted with the rest of the request by ``transform_request_body`` (system
instruction, response-schema prompt, generation config), so the body is LiteLLM's own with its
``contents`` led by the kept segments (tests/test_history_cache.py compares bodies byte for byte).

The next request of a conversation begins with the very message objects of the last one (the
translator's turn cache hands them out again), so the segments a request used are remembered as its
trail, by its first message: the next request takes them all with one look (as far as its messages
are those objects) instead of finding its ~500 segments one by one.
"""
from __future__ import annotations

import bisect
import hashlib
import operator
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from translator import Hashed, canonical_json, hashed_prefixes, json_bytes

Convert = Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
BLANK = [{"role": "user", "parts": [{"text": " "}]}]   # what LiteLLM writes for messages that give no contents


def segments(messages: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """``messages`` (no system messages) cut before each assistant message that follows another role."""
    cut: list[list[dict[str, Any]]] = []
    for number, message in enumerate(messages):
        if not cut or (message.get("role") == "assistant" and messages[number - 1].get("role") != "assistant"):
            cut.append([])
        cut[-1].append(message)
    return cut


def _text_only(message: dict[str, Any]) -> bool:
    content = message.get("content")
    if content is None or isinstance(content, str):
        return True
    return isinstance(content, list) and all(isinstance(part, dict) and part.get("type") == "text" for part in content)


@dataclass(frozen=True)
class Held:
    """A converted segment: its contents, the bytes it counts for, and the messages it was converted
    from (the same objects come back on the next turn when the translator's turn cache kept them)."""

    contents: list[dict[str, Any]]
    size: int
    messages: tuple[dict[str, Any], ...]


Key = tuple[str, str, bytes]   # model, provider, SHA-256 of the segment's JSON
TRAILS = 256                   # conversations whose trail is kept (keys only: a few KB each)


@dataclass(frozen=True)
class Trail:
    """The leading segments a request's history was cut into: their keys, and the messages before the
    end of each."""

    keys: tuple[Key, ...]
    ends: tuple[int, ...]


class ConvertedHistory:
    """A bounded LRU (by the JSON bytes of the segments it holds) of converted history segments,
    shared by the worker's requests and threads. The contents it hands out are shared: nothing
    downstream changes a body's contents in place (it is sliced, serialised and sent). It also keeps
    each held content's canonical JSON once written (:meth:`canonical`), which the context cache's
    prefix keys hash on every turn. A segment whose messages are the very objects it was converted
    from (which the translator hands out again for the turns it kept, read-only) is found by their
    identities, without writing and hashing them."""

    def __init__(self, max_bytes: int):
        self.max_bytes, self.held_bytes = max_bytes, 0
        self.entries: OrderedDict[Key, Held] = OrderedDict()
        self.by_identity: dict[tuple[Any, ...], Key] = {}   # (model, provider, *ids of the messages) → key
        # (model, provider, id of the first message) → the trail its conversation's last request left
        self.trails: OrderedDict[tuple[str, str, int], Trail] = OrderedDict()
        # (model, id of the first content) → the ids of the contents a prefix hash went through, and its state
        self.hashes: OrderedDict[tuple[str, int], tuple[tuple[int, ...], Hashed]] = OrderedDict()
        # id of each content the entries hold (alive while held, so the id is its own) → its canonical JSON
        self.written: dict[int, bytes | None] = {}
        self.lock = threading.Lock()

    def resize(self, max_bytes: int) -> None:
        with self.lock:
            self.max_bytes = max_bytes
            self._evict()

    def head(self, messages: Sequence[dict[str, Any]], model: str, provider: str,
             convert: Convert) -> tuple[list[dict[str, Any]], int]:
        """The contents of the leading segments of ``messages`` (all but the last, up to the first that
        is not text only) and how many messages they cover; the rest is for ``transform_request_body``."""
        if self.max_bytes <= 0 or not messages:
            return [], 0
        contents, keys, ends = self._trailed(messages, model, provider)
        covered = ends[-1] if ends else 0
        for segment in segments(messages[covered:])[:-1]:
            if not all(_text_only(message) for message in segment):
                break
            found = self._converted(segment, model, provider, convert)
            if found is None:
                break
            contents += found[1]
            covered += len(segment)
            keys.append(found[0])
            ends.append(covered)
        with self.lock:
            self.trails[(model, provider, id(messages[0]))] = Trail(tuple(keys), tuple(ends))
            self.trails.move_to_end((model, provider, id(messages[0])))
            while len(self.trails) > TRAILS:
                self.trails.popitem(last=False)
        return contents, covered

    def _trailed(self, messages: Sequence[dict[str, Any]], model: str,
                 provider: str) -> tuple[list[dict[str, Any]], list[Key], list[int]]:
        """The contents, keys and ends of the segments of the trail left by this conversation's last
        request (by its first message) that ``messages`` holds as the very objects they were converted
        from, each ending where a segment of ``messages`` begins."""
        with self.lock:
            trail = self.trails.get((model, provider, id(messages[0])))
            if trail is None:
                return [], [], []
            held = [self.entries.get(key) for key in trail.keys]
            count = held.index(None) if None in held else len(held)
            given = [message for entry in held[:count] for message in entry.messages]  # type: ignore[union-attr]
            same = list(map(operator.is_, given, messages))
            alike = same.index(False) if False in same else len(same)
            used = bisect.bisect_right(trail.ends, alike, hi=count)
            if used and trail.ends[used - 1] == alike and not (
                    alike < len(messages) and messages[alike].get("role") == "assistant"):
                used -= 1   # (before ``alike`` the messages are the same objects, so segments begin as they did)
            for key in trail.keys[:used]:
                self.entries.move_to_end(key)
        contents = [content for entry in held[:used] for content in entry.contents]  # type: ignore[union-attr]
        return contents, list(trail.keys[:used]), list(trail.ends[:used])

    def _converted(self, segment: list[dict[str, Any]], model: str, provider: str,
                   convert: Convert) -> tuple[Key, list[dict[str, Any]]] | None:
        identity = (model, provider, *map(id, segment))
        with self.lock:
            known = self.by_identity.get(identity)
            found = self._held(known)
            if found is not None and all(kept is given for kept, given in zip(found.messages, segment)):
                return known, found.contents  # type: ignore[return-value]
        try:
            data = json_bytes(segment)
        except TypeError:
            return None
        # SHA-256: twice BLAKE2's speed on CPUs with SHA extensions, and as good a content key.
        key = (model, provider, hashlib.sha256(data).digest())
        with self.lock:
            found = self._held(key)
            if found is not None:
                return key, found.contents
        try:
            converted = convert(list(segment))
        except Exception:  # noqa: BLE001 - a segment LiteLLM cannot convert alone is converted with the rest
            return None
        if not converted or converted == BLANK:   # LiteLLM's stand-in for "nothing": not the segment's own
            return None
        size = 2 * len(data)   # the contents, and the messages held for their identities
        with self.lock:
            if key not in self.entries and size <= self.max_bytes:
                self.entries[key] = Held(converted, size, tuple(segment))
                self.by_identity[identity] = key
                self.written.update((id(content), None) for content in converted)
                self.held_bytes += size
                self._evict()
        return key, converted

    def _held(self, key: Key | None) -> Held | None:
        """The entry under ``key``, now the most recently used (the lock held)."""
        found = self.entries.get(key) if key is not None else None
        if found is not None:
            self.entries.move_to_end(key)   # type: ignore[arg-type]
        return found

    def canonical(self, content: Any) -> bytes:
        """``translator.canonical_json(content)``, written once for a content this cache holds."""
        data = self.written.get(id(content))   # (one dict read is atomic: no lock to read)
        if data is not None:
            return data
        data = canonical_json(content)
        with self.lock:
            if id(content) in self.written and self.written[id(content)] is None:
                self.written[id(content)] = data
                self.held_bytes += len(data)
                self._evict()
        return data

    def prefixes(self, tag: str, model: str, body: dict[str, Any], last: int,
                 keyed: set[int]) -> tuple[list[str], list[int]]:
        """``translator.prefixes`` of ``body`` with the contents written by :meth:`canonical`, the hash going on
        from where the conversation's last request left it, before the first of its ``keyed`` prefixes,
        when this body's contents up to there are the very ones that request hashed (held here: alive,
        so their ids are theirs; an eviction forgets every such state)."""
        contents = body.get("contents") or []
        place = (model, id(contents[0])) if contents else None
        with self.lock:
            found = self.hashes.get(place) if place else None
        start = None
        if found is not None and len(found[0]) <= len(contents) and all(map(operator.eq, found[0], map(id, contents))):
            start = found[1]
        stop = min((number for number in keyed if number > 0), default=0)
        keys, sizes, kept = hashed_prefixes(tag, model, body, last, self.canonical, keyed, start, stop)
        if kept is not None and place is not None:
            ids = tuple(map(id, contents[:kept.through]))
            with self.lock:
                if all(number in self.written for number in ids):
                    self.hashes[place] = (ids, kept)
                    self.hashes.move_to_end(place)
                    while len(self.hashes) > TRAILS:
                        self.hashes.popitem(last=False)
        return keys, sizes

    def _evict(self) -> None:
        if self.held_bytes > self.max_bytes:
            self.hashes.clear()
        while self.held_bytes > self.max_bytes and self.entries:
            (model, provider, _), held = self.entries.popitem(last=False)
            self.held_bytes -= held.size
            self.by_identity.pop((model, provider, *map(id, held.messages)), None)
            for content in held.contents:
                self.held_bytes -= len(self.written.pop(id(content), None) or b"")
