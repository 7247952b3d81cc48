"""Streaming answers: hold the headers until Gemini shows content, then relay events with pings.

Errors before the first content go back as real HTTP statuses (clients retry those); after the
headers are out they become an ``error`` event. The upstream is read by its own task feeding a
queue, so waiting for it (grace period, pings) never cancels a read half-way; the task is
cancelled, and the upstream connection closed, whenever the response ends or the client leaves.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, AsyncGenerator, AsyncIterator, Callable, Iterator

from translator import (AnthropicError, Fallback, Spec, StreamProtocolError, StreamTranslator, UpstreamCall, collect,
                        unusable_answer_error)

from ..teams import partial
from ..engines import upstream
from ..config import Settings
from ..engines.pool import Pool
from .sse import PING, frame

log = logging.getLogger("proxy")


@dataclass
class Job:
    """One request's answer: the translated call, the same request for another model of its chain,
    a new translator per attempt, the HTTP client that reaches Gemini, and (once known) the
    deployment that answered."""

    call: UpstreamCall
    retarget: Callable[[str], UpstreamCall]
    make_translator: Callable[[], StreamTranslator]
    http: Any
    answered_by: str | None = None
    fallbacks: tuple[Fallback, ...] = ()   # the request's `fallbacks`: who answers when a model declines
    service_tier: str | None = None        # the Gemini tier that served, when another than standard was asked


@dataclass
class Declined:
    """Put between two models' chunks: the consumer, which translates, says whether the answer so far
    declined (and so ``fallback`` answers on) by setting ``handed_over``."""

    fallback: Fallback
    handed_over: asyncio.Future


class Head:
    """What is known before the response starts: bytes to send first, or an error to answer with."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.error: AnthropicError | None = None
        self.complete = False


async def _pump(source: AsyncGenerator[Any, None], queue: asyncio.Queue, idle_timeout: float) -> None:
    # Bounded puts: a reader whose consumer never started (the client left before the body
    # was sent) gives up instead of holding the upstream connection for ever.
    async with contextlib.aclosing(source):
        try:
            async for chunk in source:
                if queue.full():
                    async with asyncio.timeout(idle_timeout):
                        await queue.put(("chunk", chunk))
                else:
                    # No yield to the consumer here: the chunks of a burst (parsed in ~10 µs each)
                    # are sent in one write (UpstreamStream._frames).
                    queue.put_nowait(("chunk", chunk))
            await queue.put(("end", None))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - reported to the consumer
            await queue.put(("error", exc))


class UpstreamStream:
    """One attempt at a streamed answer, from open to end."""

    def __init__(self, job: Job, spec: Spec, settings: Settings, pool: Pool):
        self.job, self.spec, self.settings, self.pool = job, spec, settings, pool
        self.translator = job.make_translator()
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=64)
        self.reader: asyncio.Task | None = None
        self.on_done: Callable[[dict], None] | None = None   # access log, with how the stream ended
        self.ended = "client left"
        self.request_id: str | None = None
        self.live: set[UpstreamStream] | None = None         # streams a shutdown must end (service.web.lifecycle)
        self.upstream: Any = None                            # the upstream answer being read, once open
        self.sent_chars = self.framed_chars = 0              # answer written to the client / framed (partial.py)

    def open(self, retry_seconds: float) -> None:
        """Start reading; retries of the opening end ``retry_seconds`` from now."""
        self.grace_ends = asyncio.get_running_loop().time() + retry_seconds
        self.reader = asyncio.create_task(_pump(self._chunks(), self.queue, self.settings.idle_timeout_seconds))

    async def _chunks(self) -> AsyncGenerator[Any, None]:
        # Opening (and its retries) happens in the reader too, so the grace period and the
        # pings also cover the wait for Gemini's first byte. Retries end with the grace period:
        # after it the headers are out and a 429 could no longer be a real 429.
        call, retarget = self.job.call, self.job.retarget
        for fallback in (*self.job.fallbacks, None):
            opened = await upstream.open_answer(call, retarget, self.pool, self.spec, self.settings,
                                                self.job.http, wait_until=self.grace_ends)
            self.job.answered_by = opened.deployment.id
            self.job.service_tier = upstream.served_tier(opened)
            self.upstream = opened.stream
            async with contextlib.aclosing(upstream.chunks(opened, self.settings)) as chunks:
                async for chunk in chunks:
                    yield chunk
            if fallback is None:
                return
            declined = Declined(fallback, asyncio.get_running_loop().create_future())
            yield declined
            if not await declined.handed_over:
                return
            log.info("%s declined; falling back to %s", call.route.target, fallback.call.route.target)
            call, retarget = fallback.call, fallback.retarget

    def _feed(self, item: Any) -> list[dict]:
        """The events of one queued chunk; at a :class:`Declined`, the hand-over to the fallback, if the
        answer so far declined."""
        if type(item) is not Declined:
            return self.translator.feed(item)
        handing = self.translator.declined
        if not item.handed_over.done():
            item.handed_over.set_result(handing)
        return self.translator.hand_over(item.fallback.call, item.fallback.model) if handing else []

    async def close(self) -> None:
        if self.reader is not None and not self.reader.done():
            self.reader.cancel()
            with contextlib.suppress(BaseException):
                await self.reader

    async def head(self) -> Head:
        """Read until content appears, the stream ends, an error comes, or the grace period is over."""
        head = Head()
        head.events = self.translator.start()
        loop = asyncio.get_running_loop()
        while not self.translator.has_content:
            remaining = self.grace_ends - loop.time()
            if remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):
                    kind, item = await self.queue.get()
            except TimeoutError:
                break
            if kind == "chunk":
                head.events += self._feed(item)
            elif kind == "error":
                head.error = upstream.to_anthropic_error(item, self.spec, self.settings)
                return head
            else:
                head.complete = True
                head.error = self._ending_error()
                if head.error is None:
                    head.events += self.translator.finish()
                return head
        return head

    async def body(self, head: Head) -> AsyncGenerator[bytes, None]:
        """The response body: each yield is one write, watched by the write timeout."""
        if self.live is not None:
            self.live.add(self)
        try:
            async for data in self._frames(head):
                with self._write_deadline():
                    yield data
                self.sent_chars = self.framed_chars
        finally:
            if self.live is not None:
                self.live.discard(self)
            await self.close()
            if self.on_done:
                booked = partial.booked_usage(self.translator, self.upstream, self.sent_chars)
                self.on_done({"stop": self.ended, **booked})

    @contextlib.contextmanager
    def _write_deadline(self) -> Iterator[None]:
        # The yield returns once the server has written the bytes; a client that stopped reading
        # keeps it waiting, and its stream (and the upstream) is ended rather than held for ever.
        task = asyncio.current_task()
        timer = asyncio.get_running_loop().call_later(self.settings.write_timeout_seconds, self._stalled, task)
        try:
            yield
        finally:
            timer.cancel()

    def _stalled(self, task: asyncio.Task | None) -> None:
        self.ended = "client stopped reading"
        log.warning("ending a stream whose client stopped reading for %gs (request %s)",
                    self.settings.write_timeout_seconds, self.request_id)
        if task is not None:
            task.cancel()

    async def stop(self, error: AnthropicError) -> None:
        """End the stream with ``error`` as its last event (a shutdown's grace period is over)."""
        await self.close()
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(("stop", error))

    async def read_all(self) -> list[dict]:
        """Every event of the answer, for a client that did not ask for a stream."""
        events = self.translator.start()
        try:
            while True:
                kind, item = await self.queue.get()
                if kind == "chunk":
                    events += self._feed(item)
                elif kind == "end":
                    return events
                elif kind == "stop":
                    raise item
                else:
                    raise upstream.to_anthropic_error(item, self.spec, self.settings)
        finally:
            await self.close()

    async def _frames(self, head: Head) -> AsyncIterator[bytes]:
        # One write per batch of events: fewer sends through Hypercorn, same bytes. Chunks that
        # arrived together (a burst from Gemini, or a client that reads slower than it comes) go in
        # one write too.
        yield b"".join(self._framed(head.events))
        if head.complete:
            return
        pending: tuple[str, Any] | None = None
        while True:
            kind, item = pending or await self._next()
            pending = None
            if kind == "ping":
                yield PING
            elif kind == "chunk":
                parts: list[bytes] = []
                while kind == "chunk":
                    try:
                        parts += self._framed(self._feed(item))
                    except StreamProtocolError as exc:
                        log.error("stream translation failed: %s", exc)
                        yield self._error_frame(self.spec.errors.own.untranslatable_answer.error())
                        return
                    if self.queue.empty():
                        break
                    kind, item = self.queue.get_nowait()
                else:
                    pending = (kind, item)
                if parts:
                    yield b"".join(parts)
            elif kind == "end":
                error = self._ending_error()
                if error:
                    # Too late for a status or a quiet retry; an error event makes clients retry.
                    yield self._error_frame(error)
                    return
                yield b"".join(self._framed(self.translator.finish()))
                self.ended = self.translator.outcome.stop_reason
                return
            elif kind == "stop":
                yield self._error_frame(item, ended="shutdown")
                return
            else:
                yield self._error_frame(upstream.to_anthropic_error(item, self.spec, self.settings))
                return

    def _framed(self, events: list[dict]) -> list[bytes]:
        """The events' frames, their answer counted as framed (sent once the write returns)."""
        self.framed_chars += sum(partial.content_chars(event) for event in events)
        return [frame(event) for event in events]

    async def _next(self) -> tuple[str, Any]:
        """The next queued item; ("ping", None) when none came for the ping interval."""
        if not self.queue.empty():
            return self.queue.get_nowait()
        try:
            async with asyncio.timeout(self.settings.ping_interval_seconds):
                return await self.queue.get()
        except TimeoutError:
            return "ping", None

    def _ending_error(self) -> AnthropicError | None:
        """Why a finished upstream stream cannot end as a message, if it cannot."""
        result = self.translator.outcome
        return unusable_answer_error(result, self.spec.stop_reasons) if result.malformed else None

    def _error_frame(self, error: AnthropicError, ended: str | None = None) -> bytes:
        self.ended = ended or f"error {error.type}"
        return frame(error.body(self.request_id))


async def start(job: Job, spec: Spec, settings: Settings, pool: Pool) -> tuple[UpstreamStream, Head]:
    """Open the stream and read its head; a malformed empty answer is retried as stop_reasons.yaml says."""
    retries = spec.stop_reasons.malformed_retries
    for attempt in range(retries + 1):
        stream = UpstreamStream(job, spec, settings, pool)
        stream.open(settings.stream_grace_seconds)
        try:
            head = await stream.head()
        except BaseException:
            await stream.close()
            raise
        if head.complete and stream.translator.outcome.malformed and attempt < retries:
            await stream.close()
            continue
        if head.error:
            await stream.close()
        return stream, head
    raise AssertionError("unreachable")


async def complete(job: Job, spec: Spec, settings: Settings, pool: Pool, live: set[UpstreamStream]) -> dict:
    """A whole answer for a client that did not ask for a stream, read from an upstream stream.

    Reading a stream gives non-streaming calls the first-byte and idle timeouts too (a silent
    upstream is a 504 in ``FIRST_BYTE_TIMEOUT_SECONDS``, while a long answer that keeps coming is
    not cut), and the Message is the stream's events folded, so both kinds of answer agree.
    ``REQUEST_TIMEOUT_SECONDS`` bounds the whole call, retries included."""
    retries = spec.stop_reasons.malformed_retries
    try:
        async with asyncio.timeout(settings.request_timeout_seconds):
            for attempt in range(retries + 1):
                stream = UpstreamStream(job, spec, settings, pool)
                stream.open(settings.request_timeout_seconds)
                live.add(stream)
                try:
                    events = await stream.read_all()
                finally:
                    live.discard(stream)
                result = stream.translator.outcome
                if not result.malformed:
                    return collect(events + stream.translator.finish())
            raise unusable_answer_error(result, spec.stop_reasons)
    except TimeoutError as exc:
        raise upstream.to_anthropic_error(exc, spec, settings) from None
