"""``GET /v1/models`` pages: Anthropic's ``limit`` / ``after_id`` / ``before_id`` cursor rules."""
from __future__ import annotations

from typing import Any, Sequence


def page(entries: Sequence[dict[str, Any]], limit: int | None, after: str | None, before: str | None,
         *, default_limit: int, max_limit: int) -> dict[str, Any]:
    """One page of ``entries`` (each with an ``id``), shaped like Anthropic's list answers; the page
    sizes are models.yaml ``listing``'s.

    An unknown cursor is ignored (the first page); ``before_id`` alone gives the page just before it.
    Returns ``{"data", "has_more", "first_id", "last_id"}``; raises nothing."""
    ids = [e["id"] for e in entries]
    limit = max(1, min(limit or default_limit, max_limit))
    start = ids.index(after) + 1 if after in ids else 0
    end = ids.index(before) if before in ids else len(entries)
    if before in ids and after not in ids:
        start = max(0, end - limit)
    chosen = list(entries[start:end][:limit])
    return {"data": chosen, "has_more": start + len(chosen) < end,
            "first_id": chosen[0]["id"] if chosen else None, "last_id": chosen[-1]["id"] if chosen else None}
