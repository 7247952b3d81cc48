"""Gemini explicit context caches (``cachedContents``) for requests that carry ``cache_control``, on AI
Studio and on Vertex AI projects (:class:`CacheHost`; Vertex's express mode has none).

The translator decides (translator/caching.py: where the cached prefix ends, whether a longer cache is
worth it, the key); this module keeps the registry of live caches and talks to Gemini: it creates a
cache, extends one that keeps being used (PATCH ttl) and drops one Gemini no longer knows. The
registry is shared by replicas through service/state (Redis with ``REDIS_URL``, else the process); it
also sums the token-seconds the caches are kept, which the cost report prices as cache storage.
"""
from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Sequence

import translator

from . import litellm_adapter
from .. import offload
from ..config import GEMINI_API_BASE, Settings
from ..state import SharedState

log = logging.getLogger("proxy.context_cache")
KEY_PREFIX = "anthropic-proxy:cache:"
STORAGE_PREFIX = KEY_PREFIX + "storage:"   # + day + model: token-seconds kept
STORAGE_DAYS = 400                          # how long the storage sums are kept for the cost report
DAY = 86400
MODES = ("explicit", "implicit", "off")
clock = time.time   # Unix time, as Gemini's expireTime (tests move it)


@dataclass(frozen=True)
class LiveCache:
    """A cache Gemini holds: its resource name, its tokens, when it expires (Unix time)."""

    name: str
    tokens: int
    expires: float

    def dumps(self) -> str:
        return json.dumps([self.name, self.tokens, self.expires])

    @classmethod
    def loads(cls, text: bytes) -> LiveCache | None:
        try:
            name, tokens, expires = json.loads(text)
        except (ValueError, TypeError):
            return None
        return cls(str(name), int(tokens), float(expires)) if name else None


TOO_SMALL = LiveCache("", 0, 0.0)   # a prefix Gemini found under the model's minimum
# How a create under the minimum is refused: AI Studio's "Cached content is too small", Vertex's
# "The minimum token count to start caching is N."
TOO_SMALL_WORDS = ("too small", "minimum token count")


class Registry:
    """Live caches by (Gemini key, model, prefix hash), and the token-seconds they are kept, in the shared
    state (Redis with REDIS_URL, else the process). Best-effort: Gemini holds the truth, so a failure
    here means a call without a cache (or a cache made twice), never a failed request."""

    def __init__(self, state: SharedState, models: Sequence[str]):
        self.state, self.models = state, tuple(models)

    async def find(self, keys: list[str]) -> dict[str, LiveCache]:
        """The keys with a live cache (or a TOO_SMALL mark) among ``keys``."""
        try:
            values = await self.state.get_many([KEY_PREFIX + key for key in keys])
        except Exception as exc:  # noqa: BLE001 - a registry that fails means: no cache
            log.warning("the context cache registry did not answer (%s); sending without a cache", type(exc).__name__)
            return {}
        found = {}
        for key, value in zip(keys, values):
            if value == b"too-small":
                found[key] = TOO_SMALL
            elif value is not None and (live := LiveCache.loads(value)) is not None and live.expires > clock():
                found[key] = live
        return found

    async def remember(self, key: str, cache: LiveCache) -> None:
        await self._quietly(self.state.set(KEY_PREFIX + key, cache.dumps().encode(), cache.expires - clock()))

    async def too_small(self, key: str) -> None:
        await self._quietly(self.state.set(KEY_PREFIX + key, b"too-small", DAY))

    async def forget(self, key: str) -> None:
        await self._quietly(self.state.delete(KEY_PREFIX + key))

    async def kept(self, model: str, tokens: int, seconds: float, when: float | None = None) -> None:
        """Count ``tokens`` kept for ``seconds`` as storage of ``model`` on the day of ``when``."""
        day = int((when or clock()) // DAY * DAY)
        await self._quietly(self.state.incr(f"{STORAGE_PREFIX}{day}:{model}", round(tokens * seconds), STORAGE_DAYS * DAY))

    async def storage(self, start: int, end: int) -> list[dict[str, Any]]:
        """Token-hours per day (bucket) and model, for the cost report's days ``start`` to ``end``."""
        days = range(start // DAY * DAY, end, DAY)
        keys = [(day, model) for day in days for model in self.models]
        try:
            values = await self.state.get_many([f"{STORAGE_PREFIX}{day}:{model}" for day, model in keys])
        except Exception:  # noqa: BLE001 - the report shows what it can read
            return []
        return [{"bucket": day, "model": f"gemini/{model}", "token_hours": int(value) / 3600}
                for (day, model), value in zip(keys, values) if value]

    async def _quietly(self, operation: Any) -> None:
        try:
            await operation
        except Exception as exc:  # noqa: BLE001 - the registry is best-effort: Gemini holds the truth
            log.warning("the context cache registry did not take a change (%s)", type(exc).__name__)


def registry(settings: Settings, state: SharedState, models: Sequence[str] = ()) -> Registry:
    """CONTEXT_CACHE: explicit (the default: caches for requests that carry cache_control), implicit or off
    (no explicit cache; Gemini's own implicit cache applies either way)."""
    if settings.context_cache not in MODES:
        raise ValueError(f"CONTEXT_CACHE={settings.context_cache!r}: use explicit, implicit or off")
    return Registry(state, models)


def key_tag(api_key: str) -> str:
    """A Gemini key's part of a cache's registry key (Gemini answers 403 for another key's cache)."""
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


ASKED: contextvars.ContextVar[Any] = contextvars.ContextVar("cache_asked", default=None)


@dataclass(frozen=True)
class Asked:
    """A request's cache_control breakpoints and what deciding on them needs (set per request)."""

    ask: Any            # translator.CacheAsk
    registry: Registry
    spec: Any           # translator.Spec: models.yaml's cache_min_tokens, prices.yaml's cache_growth


def ask(body: Any, proxy: Any) -> None:
    """Note the request's breakpoints for its Gemini calls (none when CONTEXT_CACHE is not explicit)."""
    if proxy.context_cache is None or proxy.settings.context_cache != "explicit":
        return
    asked = translator.cache_ask(body, {role: rule.sent_as for role, rule in proxy.spec.roles.roles.items()})
    ASKED.set(Asked(asked, proxy.context_cache, proxy.spec) if asked else None)


@dataclass(frozen=True)
class CacheHost:
    """Where a deployment's caches live and how they are asked for: AI Studio's ``{base}/cachedContents``
    with its key, or a Vertex project's ``{root}/projects/{p}/locations/{l}/cachedContents`` with its
    Bearer token (service.engines.vertex). Cache names are relative to ``root``."""

    root: str
    parent: str                 # "" on AI Studio, "projects/{p}/locations/{l}/" on Vertex
    model: str                  # the model as a cache names it
    headers: dict[str, str]
    tag: str                    # whose caches they are: a registry key's first part (key_tag)


async def gemini_request(http: Any, kwargs: dict[str, Any], params: dict[str, Any],
                         cached: bool = True) -> litellm_adapter.GeminiRequest:
    """The AI Studio call for ``kwargs`` on this key (through :func:`cached_call`)."""
    request, body = await offload.run(
        lambda: litellm_adapter.gemini_parts(kwargs, params["api_key"], params.get("api_base")))
    host = CacheHost(_base(params), "", f"models/{request.model}", {"x-goog-api-key": params["api_key"]},
                     key_tag(params["api_key"]))
    return await cached_call(http, request, body, host if cached else None)


async def cached_call(http: Any, request: litellm_adapter.GeminiRequest, body: dict[str, Any],
                      host: CacheHost | None) -> litellm_adapter.GeminiRequest:
    """``request`` naming a context cache on ``host`` when the client asked for caching and one is (or
    can be made) worth it; else the call as it is (and always without ``host``)."""
    asked = ASKED.get() if host else None
    facts = asked.spec.models.models.get(request.model) if asked else None
    if host is None or asked is None or facts is None or facts.cache_min_tokens is None:
        return request
    counted = translator.content_counts(asked.ask, body.get("contents") or [])
    if not counted:
        return request
    last = max(n for n, _ in counted)
    window = range(max(0, last - translator.CACHE_LOOKBACK), last + 1)   # what is looked up, and the breakpoints
    keyed = {*window, *(n for n, _ in counted)}
    keys, sizes = await offload.run(lambda: litellm_adapter.HISTORY.prefixes(host.tag, request.model, body, last,
                                                                             keyed))   # hashes the body
    position = {k: n for n, k in enumerate(keys) if k}
    known = await asked.registry.find([keys[n] for n in window])
    found = {position[k]: live is not TOO_SMALL for k, live in known.items()}
    prices, day = asked.spec.prices, datetime.fromtimestamp(clock(), timezone.utc).date()
    choice = translator.choose_cache(
        counted, found, sizes, facts.cache_min_tokens,
        lambda tokens, ttl: translator.cache_worth_growing(prices, request.model, day, tokens, ttl))
    if choice is None:
        return request
    key = keys[choice.contents]
    if choice.create:
        live = await _create(http, asked.registry, request, body, choice, key, host)
        written = live.tokens if live else 0
    else:
        live, written = await _extend(http, asked.registry, request, known[key], choice.ttl_seconds, key, host), 0
    if live is None:
        return request
    return litellm_adapter.cached_request(request, body, choice.contents, live.name, key, written, choice.ttl_seconds)


def _base(params: dict[str, Any]) -> str:
    return (params.get("api_base") or GEMINI_API_BASE).rstrip("/")


async def _create(http: Any, registry: Registry, request: Any, body: dict[str, Any], choice: Any, key: str,
                  host: CacheHost) -> LiveCache | None:
    """Make the cache; None (and the call goes without one) when Gemini will not."""
    resource = litellm_adapter.cache_resource(host.model, body, choice.contents, choice.ttl_seconds)
    try:
        async with http.post(f"{host.root}/{host.parent}cachedContents", json=resource,
                             headers=host.headers) as response:
            answer = await response.json(content_type=None)
            status = response.status
    except Exception as exc:  # noqa: BLE001 - a cache is an optimisation: the call goes on without one
        log.warning("creating a context cache failed (%s); sending without one", type(exc).__name__)
        return None
    if status != 200:
        message = str((answer or {}).get("error", {}).get("message", ""))
        if any(words in message.lower() for words in TOO_SMALL_WORDS):
            await registry.too_small(key)
        else:
            log.warning("Gemini did not create a context cache (%s: %s)", status, message[:200])
        return None
    tokens = int((answer.get("usageMetadata") or {}).get("totalTokenCount", 0))
    live = LiveCache(answer["name"], tokens, clock() + choice.ttl_seconds)
    await registry.remember(key, live)
    await registry.kept(request.model, tokens, choice.ttl_seconds)
    return live


async def _extend(http: Any, registry: Registry, request: Any, live: LiveCache, ttl_seconds: int, key: str,
                  host: CacheHost) -> LiveCache:
    """A cache that keeps being used lives on: once half its TTL has passed, PATCH it to a whole TTL again."""
    left = live.expires - clock()
    if left > ttl_seconds / 2:
        return live
    try:
        async with http.patch(f"{host.root}/{live.name}", params={"updateMask": "ttl"},
                              json={"ttl": f"{ttl_seconds}s"}, headers=host.headers) as answer:
            if answer.status != 200:
                return live   # the call names it anyway: a cache that is gone is dropped and the call retried
    except Exception:  # noqa: BLE001 - the cache may still be alive for the rest of its TTL
        return live
    extended = LiveCache(live.name, live.tokens, clock() + ttl_seconds)
    await registry.remember(key, extended)
    await registry.kept(request.model, live.tokens, ttl_seconds - max(left, 0))
    return extended


async def gone(request: Any, status: int, text: str) -> bool:
    """Whether a call failed because the cache it named is gone (expired, deleted: 404, or 403); then it is
    dropped from the registry, and the caller sends the call again without it."""
    if request.cache_key is None or status not in (400, 403, 404):
        return False
    if status == 400 and "cachedcontent" not in text.lower().replace("_", "").replace(" ", ""):
        return False
    asked = ASKED.get()
    if asked is not None:
        await asked.registry.forget(request.cache_key)
    log.info("a context cache Gemini no longer knows was dropped (%s); sending without it", status)
    return True
