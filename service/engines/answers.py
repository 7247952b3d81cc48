"""An upstream answer as a stream of LiteLLM chunks, opened on one deployment.

Gemini is called with the proxy's own pooled HTTP client: LiteLLM builds the request and parses
each line of the answer (:mod:`service.engines.litellm_adapter`), and none of its per-call machinery runs
(its logging object, model-info lookups, HTTP wrappers, the CustomStreamWrapper's per-chunk work:
most of the CPU of a call). Other providers an operator enables (``provider_prefixes``) are
called through ``litellm.acompletion``. Both give the same chunks to the translator. Which engine
serves a model is the provider table's (spec/providers.yaml, service.engines.providers).
"""
from __future__ import annotations

import ssl
from collections import deque
from typing import Any, Awaitable, Callable

import aiohttp
import certifi
from yarl import URL

from . import context_cache, litellm_adapter, vertex
from .. import offload
from ..config import GEMINI_API_BASE, Settings

ERROR_BODY_BYTES = 65536  # of an error answer, kept for its message (Gemini's are a few hundred bytes)
MAX_LINE_BYTES = 64 * 1024 * 1024  # one stream chunk (a generated image inline is a few MB)


def http_client(settings: Settings) -> aiohttp.ClientSession:
    """The pooled client every Gemini call goes through, open while the app serves.

    HTTP/1.1 with keep-alive: closing an unfinished response closes its connection, which is how
    Gemini learns that a client left. No connection limit (the proxy's own limits and Gemini's
    quotas bound the calls; a limit here would queue streams behind each other), and the proxy's
    timeouts (first byte, idle, whole request) apply, not the client's. A proxy from the
    environment (HTTPS_PROXY, NO_PROXY) is honoured as LiteLLM's client does, looked up once for
    Gemini's host rather than on every request."""
    connector = aiohttp.TCPConnector(limit=0, ssl=ssl.create_default_context(cafile=certifi.where()))
    proxy: URL | None
    try:
        proxy, proxy_auth = aiohttp.helpers.get_env_proxy_for_url(URL(settings.gemini_api_base or GEMINI_API_BASE))
    except LookupError:
        proxy = proxy_auth = None
    return aiohttp.ClientSession(connector=connector, proxy=proxy, proxy_auth=proxy_auth, auto_decompress=True,
                                 timeout=aiohttp.ClientTimeout(total=None, sock_connect=settings.first_byte_timeout_seconds))


class GeminiAnswer:
    """A streamGenerateContent response being read, as LiteLLM chunks."""

    def __init__(self, response: aiohttp.ClientResponse, request: litellm_adapter.GeminiRequest):
        self.response, self.request = response, request
        self.parser = litellm_adapter.GeminiParser(request)
        self.ready: deque[Any] = deque()     # chunks parsed from what has arrived
        self.tail = b""                      # the start of a line whose end has not arrived
        self.last: list[Any] | None = None   # the chunks due at the end, once the response is read

    def __aiter__(self) -> "GeminiAnswer":
        return self

    async def __anext__(self) -> Any:
        while not self.ready:
            if self.last is not None:
                if not self.last:
                    raise StopAsyncIteration
                return self.last.pop(0)
            await self._read()
        return self.ready.popleft()

    async def _read(self) -> None:
        """Parse every line that has arrived: one read for a burst, however many lines it holds."""
        try:
            data = await self.response.content.readany()
        except aiohttp.ClientError as exc:
            raise litellm_adapter.connection_error(self.request, exc) from None
        if not data:
            self._parse(self.tail)  # a last line without its newline
            self.last = self.parser.close()
            return
        lines = (self.tail + data).split(b"\n")
        self.tail = lines.pop()
        if len(self.tail) > MAX_LINE_BYTES:
            raise RuntimeError(f"A line of the upstream stream is longer than {MAX_LINE_BYTES} bytes.")
        for line in lines:
            self._parse(line)

    def _parse(self, line: bytes) -> None:
        if line.strip():
            chunk = self.parser.parse(line.decode())
            if chunk is not None:
                self.ready.append(chunk)

    def complete(self) -> bool:
        return self.parser.complete()

    def broken(self) -> bool:
        return self.parser.broken()

    async def aclose(self) -> None:
        # A response read to its end is already back in the pool (aiohttp releases it at EOF);
        # one left half-way closes its connection, which is how Gemini learns the client left.
        self.response.close()


class CacheGone(Exception):
    """Gemini no longer knows the context cache the call named (service.engines.context_cache dropped it)."""


async def send_cached(http: aiohttp.ClientSession,
                      build: Callable[[bool], Awaitable[litellm_adapter.GeminiRequest]]) -> GeminiAnswer:
    """POST the call ``build`` makes (naming a context cache where service.engines.context_cache says so; one
    the upstream no longer knows is dropped and the call built and sent again without one); an HTTP
    error is raised as the LiteLLM exception it maps to."""
    request = await _written(await build(True))
    try:
        return await send(http, request, gone=lambda status, text: context_cache.gone(request, status, text))
    except CacheGone:
        return await send(http, await _written(await build(False)))


async def _written(request: litellm_adapter.GeminiRequest) -> litellm_adapter.GeminiRequest:
    """``request`` with its body written, in a worker thread for a big request (service.offload)."""
    await offload.run(lambda: request.body)
    return request


async def open_gemini(http: aiohttp.ClientSession, kwargs: dict[str, Any], params: dict[str, Any]) -> GeminiAnswer:
    """The call on AI Studio."""
    return await send_cached(http, lambda cached: context_cache.gemini_request(http, kwargs, params, cached))


async def open_vertex(http: aiohttp.ClientSession, kwargs: dict[str, Any], params: dict[str, Any]) -> GeminiAnswer:
    """The same call on Vertex AI (service.engines.vertex: its credentials, URL and caches), read as Gemini's."""
    answer = await send_cached(http, lambda cached: vertex.request(http, kwargs, params, cached))
    answer.parser.platform = "vertex_ai/"
    return answer


async def send(http: aiohttp.ClientSession, request: litellm_adapter.GeminiRequest,
               gone: Callable[[int, str], Awaitable[bool]] | None = None) -> GeminiAnswer:
    """POST a Gemini request on the pooled client; an HTTP error is raised as LiteLLM's exception
    (:class:`CacheGone` where ``gone`` says the error is a context cache Gemini no longer knows)."""
    try:
        response = await http.post(request.url, data=request.body, headers=request.headers)
    except (aiohttp.ClientError, OSError) as exc:
        raise litellm_adapter.connection_error(request, exc) from None
    if response.status != 200:
        try:
            text = (await response.content.read(ERROR_BODY_BYTES)).decode(errors="replace")
        except aiohttp.ClientError:
            text = ""
        finally:
            response.close()
        if gone is not None and await gone(response.status, text):
            raise CacheGone
        raise litellm_adapter.http_error(request, response.status, text, response.headers)
    return GeminiAnswer(response, request)


class LiteLLMAnswer:
    """``litellm.acompletion``'s stream, for providers other than Gemini."""

    def __init__(self, stream: Any):
        self.stream = stream
        self.over = False

    def __aiter__(self) -> "LiteLLMAnswer":
        return self

    async def __anext__(self) -> Any:
        if self.over:
            raise StopAsyncIteration
        chunk = await self.stream.__anext__()
        # Usage comes last (include_usage); LiteLLM's iterator would only tidy up after it.
        self.over = getattr(chunk, "usage", None) is not None
        return chunk

    def complete(self) -> bool:
        return self.over  # LiteLLM reports usage only at the end of a whole answer

    def broken(self) -> bool:
        return False

    async def aclose(self) -> None:
        await self.stream.aclose()


async def open_litellm(kwargs: dict[str, Any], params: dict[str, Any]) -> LiteLLMAnswer:
    stream = await litellm_adapter.acompletion(**kwargs, **params, stream=True, stream_options={"include_usage": True})
    return LiteLLMAnswer(stream)


async def _open_litellm(http: aiohttp.ClientSession, kwargs: dict[str, Any], params: dict[str, Any]) -> LiteLLMAnswer:
    return await open_litellm(kwargs, params)


# The engines providers.yaml's rows name: how a deployment's answer is opened.
ENGINES: dict[str, Callable[[aiohttp.ClientSession, dict[str, Any], dict[str, Any]], Awaitable[Any]]] = {
    "gemini": open_gemini, "vertex": open_vertex, "litellm": _open_litellm}


async def open_answer(http: aiohttp.ClientSession, kwargs: dict[str, Any], engine: str, params: dict[str, Any]) -> Any:
    """The answer of one deployment by its provider's ``engine``, streamed (every answer is read as a
    stream: service.web.streaming)."""
    kwargs = {k: v for k, v in kwargs.items() if k not in ("stream", "stream_options")}
    return await ENGINES[engine](http, kwargs, params)
