"""A request's turn on a message thread: what to answer, and keeping the reply once it is whole.

``open_turn`` reads the request's ``thread`` (translator.thread_turn). A continue holds the reply
it continues from and is answered as the whole conversation; a create is answered as it is. The
reply is kept under its id once it is complete: at once for a non-streamed answer, and for a
stream just before its ``message_stop`` goes out, so a client that continues right after the
stream finds it. A turn that fails (an error, a stream cut short, a client that left) keeps
nothing and ends its hold, so the previous reply can be continued again.
"""
from __future__ import annotations

import asyncio
import contextlib
from typing import Any, AsyncGenerator, Callable

import translator
from translator import KeptStreamTranslator, Spec, StreamTranslator, ThreadTurn

from ..web import sse
from ..config import Settings
from ..web.errors import new_id
from . import SharedState
from .thread_store import LocalThreads, RedisThreads, Threads


def thread_store(settings: Settings, state: SharedState) -> Threads:
    local = LocalThreads(settings.thread_ttl_seconds, settings.thread_store_max_bytes)
    shared = None
    if state.client is not None:
        shared = RedisThreads(state.client, settings.thread_ttl_seconds, settings.thread_store_max_bytes)
    return Threads(state, local, shared)


class Turn:
    """One request on a thread (or on none: then every step does nothing)."""

    def __init__(self, body: Any, size: int, *, threads: Threads, spec: Spec, settings: Settings,
                 turn: ThreadTurn | None = None, holder: str = "", store: Any = None):
        self.body = body                   # the request to answer: the whole conversation of a continue
        self.size = size                   # its size in bytes (about, for a continue)
        self.threads, self.spec, self.settings, self.turn = threads, spec, settings, turn
        self.holder, self.store = holder, store
        self.ended = turn is None
        self._stream: KeptStreamTranslator | None = None

    @property
    def kind(self) -> str | None:
        """``create`` or ``continue`` (for the access log), ``None`` without a thread."""
        return None if self.turn is None else ("continue" if self.turn.continues else "create")

    async def keep(self, reply: dict) -> None:
        """Keep the thread with ``reply`` under its id, and end the turn."""
        if self.ended or self.turn is None:
            return
        self.ended = True
        data = await self._offloaded(translator.kept_thread, self.body, reply, self.spec)
        await self.threads.run("put", reply["id"], data, self.turn.previous_message_id, self.holder or None,
                               store=self.store)

    async def end(self) -> None:
        """End a turn that kept nothing: the previous reply can be continued again."""
        if self.ended or self.turn is None:
            return
        self.ended = True
        if self.turn.continues:  # shielded: this also runs when the request is being cancelled
            await asyncio.shield(self.threads.run("release", self.turn.previous_message_id, self.holder,
                                                  store=self.store))

    def translators(self, build: Callable[[type[StreamTranslator]], StreamTranslator],
                    ) -> Callable[[], StreamTranslator]:
        """The stream-translator factory for this request; a thread turn's keep their events."""
        if self.turn is None:
            return lambda: build(StreamTranslator)

        def make() -> StreamTranslator:
            stream = build(KeptStreamTranslator)
            self._stream = stream if isinstance(stream, KeptStreamTranslator) else None
            return stream
        return make

    def relay(self, frames: AsyncGenerator[bytes, None]) -> AsyncGenerator[bytes, None]:
        """The stream's frames, with the reply kept before the frame that ends it goes out."""
        return frames if self.turn is None else self._relayed(frames)

    async def _relayed(self, frames: AsyncGenerator[bytes, None]) -> AsyncGenerator[bytes, None]:
        # The turn ends before the frame that ends the stream goes out (a client may continue as
        # soon as it reads that), and before the frames are closed, which cancels the upstream.
        async with contextlib.aclosing(frames):
            try:
                async for data in frames:
                    if not self.ended:
                        reply = self._stream.reply if self._stream is not None else None
                        if reply is not None:
                            await self.keep(reply)
                        elif sse.is_error(data):
                            await self.end()
                    yield data
            finally:
                await self.end()

    async def _offloaded(self, function: Callable[..., Any], *args: Any) -> Any:
        """Encode or decode a large thread in a worker thread, as large requests are translated."""
        if self.size > self.settings.offload_bytes:
            return await asyncio.to_thread(function, *args)
        return function(*args)


async def open_turn(body: Any, size: int, threads: Threads, spec: Spec, settings: Settings) -> Turn:
    """The turn of a ``/v1/messages`` request of ``size`` bytes; a continue holds its previous reply
    until the turn ends."""
    turn = translator.thread_turn(body, spec)
    if turn is None or not turn.continues:
        return Turn(body, size, threads=threads, spec=spec, settings=settings, turn=turn)
    holder = new_id("turn_")
    store, (state, data) = await threads.run("begin", turn.previous_message_id, holder,
                                             settings.request_timeout_seconds)
    if state != "held":
        raise translator.thread_error(spec, state, message_id=turn.previous_message_id or "")
    opened = Turn(body, size + len(data), threads=threads, spec=spec, settings=settings, turn=turn,
                  holder=holder, store=store)
    try:
        held = await opened._offloaded(translator.read_thread, data)
        opened.body = translator.continued_request(held, body)
    except BaseException:
        await opened.end()
        raise
    return opened


async def counted_request(body: Any, threads: Threads, spec: Spec) -> Any:
    """What ``/v1/messages/count_tokens`` counts: with a continue, the whole conversation."""
    turn = translator.thread_turn(body, spec)
    if turn is None or not turn.continues:
        return body
    _, (state, data) = await threads.run("peek", turn.previous_message_id)
    if state != "found":
        raise translator.thread_error(spec, state, message_id=turn.previous_message_id or "")
    return translator.continued_request(translator.read_thread(data), body)
