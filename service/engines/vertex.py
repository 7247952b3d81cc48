"""Vertex AI's credentials and the ``vertex`` engine's requests (the provider table's ``vertex_ai/`` row).

A Vertex deployment is one entry of the ``vertexai_deployments`` setting (service.engines.vertex_settings; pooled
and rested like an AI Studio key, named in ids by its hash): ``{"api_key": ...}`` for express mode,
or ``{"credentials": path, "project": ..., "location": ...}`` for a service account's JSON file,
``credentials`` empty for Application Default Credentials. Access tokens are google-auth's: each
credential's is cached per HTTP client (so per app) and refreshed ``REFRESH_MARGIN`` before it
expires, in a worker thread (google-auth's refresh is synchronous), one refresh at a time.
"""
from __future__ import annotations

import asyncio
import json
import weakref
from pathlib import Path
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Mapping

import aiohttp
import google.auth
import google.auth.exceptions
import google.auth.transport.requests
import google.oauth2.credentials
import google.oauth2.service_account

from . import context_cache, litellm_adapter
from .vertex_settings import DEFAULT_LOCATION

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
REFRESH_MARGIN = timedelta(minutes=5)   # a token this close to its expiry is replaced before use


def _utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)  # google-auth's expiry is naive UTC


class TokenSource:
    """One credential's OAuth access token, loaded and refreshed off the event loop."""

    def __init__(self, path: str, project: str, clock: Callable[[], datetime] = _utcnow):
        self.path, self.project, self.clock = path, project, clock
        self.credentials: Any = None
        self._lock = asyncio.Lock()

    def _fresh(self) -> bool:
        credentials = self.credentials
        if credentials is None or not credentials.token:
            return False
        return credentials.expiry is None or credentials.expiry - REFRESH_MARGIN > self.clock()

    async def token(self) -> str:
        """A token valid for at least REFRESH_MARGIN; callers arriving during a refresh wait for it."""
        if not self._fresh():
            async with self._lock:
                if not self._fresh():
                    await asyncio.to_thread(self._refresh)
        return str(self.credentials.token)

    def _refresh(self) -> None:
        """In a worker thread: load the credential (once), then fetch a new token."""
        try:
            if self.credentials is None:
                project: str | None
                if self.path:
                    credentials, project = _load_file(self.path)
                else:
                    credentials, project = google.auth.default(scopes=SCOPES)
                self.credentials, self.project = credentials, self.project or project or ""
            self.credentials.refresh(google.auth.transport.requests.Request())
        except google.auth.exceptions.TransportError as exc:
            raise ConnectionError(f"Vertex AI's token endpoint could not be reached ({type(exc).__name__}).") from None
        except (google.auth.exceptions.GoogleAuthError, OSError, ValueError) as exc:
            if getattr(exc, "retryable", False):  # the token endpoint's own 5xx or 429: a later try may pass
                raise ConnectionError(f"Vertex AI's token endpoint is failing for now: {_first_line(exc)}") from None
            raise VertexCredentialsError(f"Vertex AI credentials {self.path or '(application default)'} could "
                                         f"not give an access token: {_first_line(exc)}") from None


def _load_file(path: str) -> tuple[Any, str]:
    """A credential file of a type the proxy expects (google-auth's advice: load by type, so a file
    of another kind cannot make the proxy run an external command or reach other hosts)."""
    info = json.loads(Path(path).read_text())
    if info.get("type") == "service_account":
        credentials = google.oauth2.service_account.Credentials.from_service_account_info(info, scopes=SCOPES)
        return credentials, info.get("project_id", "")
    if info.get("type") == "authorized_user":
        credentials = google.oauth2.credentials.Credentials.from_authorized_user_info(info, scopes=SCOPES)
        return credentials, info.get("quota_project_id", "")
    raise ValueError(f"its type {info.get('type')!r} is not service_account or authorized_user")


class VertexCredentialsError(Exception):
    """No access token could be had (a missing or refused credential); mapped in spec/errors.yaml."""

    status_code = 401


def _first_line(exc: BaseException) -> str:
    """The error's first line: google-auth's RefreshError quotes the token endpoint's answer (never
    the private key or a token), kept short."""
    return (str(exc).splitlines() or [type(exc).__name__])[0][:300]


_SOURCES: "weakref.WeakKeyDictionary[aiohttp.ClientSession, dict[str, TokenSource]]" = weakref.WeakKeyDictionary()


def token_source(http: aiohttp.ClientSession, descriptor: Mapping[str, str]) -> TokenSource:
    """The token source of a credential for the app whose client is ``http`` (made the first time)."""
    sources = _SOURCES.setdefault(http, {})
    name = f"{descriptor.get('credentials', '')}|{descriptor.get('project', '')}"
    if name not in sources:
        sources[name] = TokenSource(descriptor.get("credentials", ""), descriptor.get("project", ""))
    return sources[name]


async def request(http: aiohttp.ClientSession, kwargs: dict[str, Any], params: dict[str, Any],
                  cached: bool = True) -> litellm_adapter.GeminiRequest:
    """The streamGenerateContent request of a deployment (its descriptor is ``params["api_key"]``),
    naming a context cache of its project where service.engines.context_cache says so (``cached``). Express
    mode has no cachedContents (Vertex's express-mode API reference lists only the models' methods)."""
    descriptor = json.loads(params["api_key"])
    if "api_key" in descriptor:
        return litellm_adapter.vertex_parts(kwargs, {"x-goog-api-key": descriptor["api_key"]}, None,
                                            DEFAULT_LOCATION, params.get("api_base"))[0]
    source = token_source(http, descriptor)
    token = await source.token()
    if not source.project:
        raise VertexCredentialsError("Vertex AI needs a project: set VERTEXAI_PROJECT (the credentials name none).")
    call, body = litellm_adapter.vertex_parts(kwargs, token, source.project, descriptor["location"],
                                              params.get("api_base"))
    parent = f"projects/{source.project}/locations/{descriptor['location']}/"
    host = context_cache.CacheHost(call.url.split("/projects/", 1)[0], parent,
                                   f"{parent}publishers/google/models/{call.model}", call.headers,
                                   context_cache.key_tag(params["api_key"]))
    return await context_cache.cached_call(http, call, body, host if cached else None)


async def count_tokens(http: aiohttp.ClientSession, kwargs: dict[str, Any], params: dict[str, Any]) -> int:
    """Vertex's countTokens for the call, on one deployment."""
    descriptor = json.loads(params["api_key"])
    model, body = litellm_adapter.vertex_count_body(kwargs)
    if "api_key" in descriptor:
        project, location, headers = None, DEFAULT_LOCATION, {"x-goog-api-key": descriptor["api_key"]}
    else:
        source = token_source(http, descriptor)
        headers = {"Authorization": f"Bearer {await source.token()}"}
        project, location = source.project, descriptor["location"]
    url = litellm_adapter.vertex_url(model, "countTokens", project, location, params.get("api_base"))
    async with http.post(url, json=body, headers=headers) as response:
        if response.status != 200:
            raise RuntimeError(f"Vertex countTokens answered {response.status}")
        return int((await response.json())["totalTokens"])
