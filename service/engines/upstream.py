"""Calls upstream: which model and key answer, retries, timeouts, and upstream errors as Anthropic errors.

LiteLLM itself is reached only through :mod:`service.engines.litellm_adapter`."""
from __future__ import annotations

import asyncio
import json
import logging
import random
from dataclasses import dataclass
from typing import Any, AsyncGenerator, Awaitable, Callable

from quart import has_app_context

from translator import AnthropicError, Spec, UpstreamCall, input_estimate, map_upstream_error

from . import answers, litellm_adapter, vertex
from ..current import current_app
from ..config import GEMINI_API_BASE, Settings
from .pool import Deployment, Pool

log = logging.getLogger("proxy.upstream")


def scrub(text: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return text


def to_anthropic_error(exc: BaseException, spec: Spec, settings: Settings) -> AnthropicError:
    """Any exception from a LiteLLM call → the Anthropic error to answer with."""
    if isinstance(exc, AnthropicError):
        return exc
    original = getattr(exc, "original_exception", None)  # MidStreamFallbackError wraps the real one
    source = original if isinstance(original, BaseException) else exc
    names = [cls.__name__ for cls in type(source).__mro__]
    if source is not exc:
        names += [cls.__name__ for cls in type(exc).__mro__]
    status = getattr(source, "status_code", None) or getattr(exc, "status_code", None)
    message = scrub(str(source) or type(source).__name__, settings.secrets)
    error = map_upstream_error(spec.errors, class_names=names, status=status if isinstance(status, int) else None,
                               message=message, upstream=getattr(source, "upstream", None) or "The upstream")
    if has_app_context():
        current_app.proxy.metrics.upstream_error(error.type)
    if error.status >= 500:
        log.warning("upstream failure %s → %s %s: %s", type(source).__name__, error.status, error.type, message[:500])
    return error


def upstream_status(exc: BaseException) -> int | None:
    """The upstream's own HTTP status, where LiteLLM kept it."""
    for source in (getattr(exc, "original_exception", None), exc):
        status = getattr(source, "status_code", None)
        if isinstance(status, int):
            return status
    return None


async def with_retries(attempt: Callable[[], Awaitable[Any]], spec: Spec, settings: Settings,
                       wait_until: float | None = None) -> Any:
    """Run ``attempt``; retry rate limits and overloads with backoff, within the configured budget.

    A wait that the budget (or ``wait_until``, a loop time: a stream's grace period) cannot hold
    in full is not shortened: the error goes back at once, with its retry-after, so the client
    waits as long as the upstream asked.
    """
    loop = asyncio.get_running_loop()
    waited = 0.0
    for number in range(settings.upstream_retries + 1):
        try:
            return await attempt()
        except Exception as exc:  # noqa: BLE001 - every failure becomes an Anthropic error
            error = to_anthropic_error(exc, spec, settings)
            if error.status not in spec.errors.retry_statuses or number == settings.upstream_retries:
                raise error from None
            backoff = spec.errors.retry_backoff
            wait = backoff.first_seconds * backoff.factor ** number if error.retry_after is None else error.retry_after
            delay = wait + random.uniform(0, backoff.jitter_seconds)
            room = settings.retry_max_wait_seconds - waited
            if wait_until is not None:
                room = min(room, wait_until - loop.time())
            if delay > room:
                raise error from None
            await asyncio.sleep(delay)
            waited += delay
    raise AssertionError("unreachable")


@dataclass
class Opened:
    """A stream that answered: its first chunk, and who answers."""

    stream: Any
    first: Any
    call: UpstreamCall
    deployment: Deployment


async def open_stream(call: UpstreamCall, deployment: Deployment, settings: Settings, http: Any) -> Opened:
    """Start the answer and pull its first chunk, within the first-byte timeout.

    Every answer is read as a stream, whether the client asked for one or not (see streaming.complete)."""
    async with asyncio.timeout(settings.first_byte_timeout_seconds):
        stream = await answers.open_answer(http, call.kwargs, deployment.engine, deployment.params)
        try:
            first = await stream.__anext__()
        except BaseException:
            await stream.aclose()
            raise
    return Opened(stream, first, call, deployment)


def served_tier(opened: Opened) -> str | None:
    """The Gemini service tier that serves an answer for which another than standard was asked: Gemini's
    ``x-gemini-service-tier`` header when it says (``standard`` when it downgraded a priority call),
    else the tier asked for; None when none was asked."""
    asked = opened.call.kwargs.get("service_tier")
    if asked is None:
        return None
    response = getattr(opened.stream, "response", None)  # a Gemini answer's HTTP response
    said = response.headers.get("x-gemini-service-tier") if response is not None else None
    return said.lower() if isinstance(said, str) and said else str(asked)


async def _open_on_keys(call: UpstreamCall, pool: Pool, spec: Spec, settings: Settings, http: Any) -> Opened:
    """The call on the first of its model's keys that answers: a key that gets a 429 rests as long as
    Gemini said (a rejected key longer), and the next key is tried at once."""
    target = call.route.target
    while True:
        deployment = await pool.pick(target)
        if deployment is None:
            raise spec.errors.own.keys_resting.error(model=call.route.gemini_name,
                                                     retry_after=await pool.shortest_rest([target]))
        try:
            return await open_stream(call, deployment, settings, http)
        except Exception as exc:  # noqa: BLE001 - every failure becomes an Anthropic error
            error = to_anthropic_error(exc, spec, settings)
            if error.status == 429:
                pool.rest(deployment, max(1.0, error.retry_after or settings.key_rest_seconds), "rate limited")
            elif upstream_status(exc) in (401, 403) and len(pool.deployment_ids(target)) > 1:
                pool.rest(deployment, settings.rejected_key_rest_seconds, "key rejected")
            else:
                raise error from None


async def open_answer(call: UpstreamCall, retarget: Callable[[str], UpstreamCall], pool: Pool, spec: Spec,
                      settings: Settings, http: Any, wait_until: float | None = None) -> Opened:
    """The first model of the call's chain that answers, each on its keys, retried as errors.yaml says;
    a model that cannot answer (fallback_statuses) hands over to the next. When every key of every
    model rests, the 429 carries the shortest rest as its retry-after."""
    targets = call.route.targets
    for number, target in enumerate(targets):
        model_call = call if number == 0 else retarget(target)
        try:
            return await with_retries(lambda: _open_on_keys(model_call, pool, spec, settings, http), spec, settings,
                                      wait_until)
        except AnthropicError as error:
            if error.status not in spec.errors.fallback_statuses or number == len(targets) - 1:
                if error.status == 429 and len(targets) > 1:
                    error.retry_after = await pool.shortest_rest(list(targets)) or error.retry_after
                raise
            log.info("%s could not answer (%s %s); falling back to %s", target, error.status, error.type,
                     targets[number + 1])
    raise AssertionError("unreachable")


class UpstreamStreamBroken(Exception):
    """Gemini's stream held data that is not JSON (mapped in errors.yaml)."""


class UpstreamStreamCut(Exception):
    """The upstream stream ended before the answer did (mapped in errors.yaml)."""


async def chunks(opened: Opened, settings: Settings) -> AsyncGenerator[Any, None]:
    """The answer's chunks, each within the idle timeout; an answer that stops short is an error."""
    stream = opened.stream
    try:
        chunk = opened.first
        while True:
            yield chunk
            try:
                async with asyncio.timeout(settings.idle_timeout_seconds):
                    chunk = await stream.__anext__()
            except StopAsyncIteration:
                break
        if stream.broken():
            raise UpstreamStreamBroken("The upstream stream held a chunk that is not valid JSON.")
        if not stream.complete():
            raise UpstreamStreamCut("The upstream stream ended before the answer was complete.")
    finally:
        await stream.aclose()


def count_tokens_locally(call: UpstreamCall) -> int:
    """A local estimate, used when Gemini's countTokens is not reachable: LiteLLM's bundled
    tokenizer, or, should that fail on some content, the size rule of thumb."""
    try:
        return litellm_adapter.token_counter(call.route.target, call.kwargs["messages"], call.kwargs.get("tools"))
    except Exception as exc:  # noqa: BLE001 - the estimate must not fail the request
        log.warning("local token count failed (%s); estimating from the request size", type(exc).__name__)
        return input_estimate(len(json.dumps([call.kwargs["messages"], call.kwargs.get("tools")], default=str)))


async def count_tokens(call: UpstreamCall, pool: Pool, settings: Settings, http: Any) -> tuple[int, str]:
    """Input tokens of the translated request: Gemini's countTokens when it answers, else a local
    estimate. Returns (count, "gemini" or "estimate")."""
    deployment = await pool.pick(call.route.target) if pool.providers.of(call.route.target).count_tokens else None
    if deployment is not None:
        try:
            async with asyncio.timeout(settings.first_byte_timeout_seconds):
                if deployment.engine == "vertex":
                    return await vertex.count_tokens(http, call.kwargs, deployment.params), "gemini"
                return await _gemini_count(call, deployment, settings, http), "gemini"
        except Exception as exc:  # noqa: BLE001 - any failure falls back to the estimate
            log.warning("Gemini countTokens failed (%s); using the local estimate",
                        scrub(str(exc), settings.secrets)[:200] or type(exc).__name__)
    return count_tokens_locally(call), "estimate"


async def _gemini_count(call: UpstreamCall, deployment: Deployment, settings: Settings, http: Any) -> int:
    name = call.route.gemini_name
    _, _, body = litellm_adapter.gemini_body(call.kwargs)
    request = {"model": f"models/{name}",
               **{k: v for k, v in body.items() if k in ("contents", "system_instruction", "tools")}}
    url = f"{settings.gemini_api_base or GEMINI_API_BASE}/models/{name}:countTokens"
    async with http.post(url, json={"generateContentRequest": request},
                         headers={"x-goog-api-key": deployment.params["api_key"]}) as response:
        if response.status != 200:
            raise RuntimeError(f"countTokens answered {response.status}")
        return int((await response.json())["totalTokens"])
