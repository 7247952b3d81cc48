"""A fake Vertex AI, as strict as the fake Gemini whose answer machinery it shares (the same
GenerateContent API): a service account's OAuth token endpoint (the JWT-bearer grant, its signature
checked with the public key of a keypair the test made, and its claims), Bearer tokens on the project
routes ``/v1/projects/{p}/locations/{l}/publishers/google/models/{m}:{action}``, express-mode keys on
the global ``/v1/publishers/google/models/{m}:{action}``, and a role on every content."""
from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

import google.auth.exceptions
import google.auth.jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fake_gemini.routes import FakeGemini

from tests.fake_gemini.caches import answer_caches

from .caches import VertexCaches

SCOPE = "https://www.googleapis.com/auth/cloud-platform"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
AUDIENCE = "https://oauth2.googleapis.com/token"  # what Google's token endpoint requires, whatever its URL
_ACTIONS = ("generateContent", "streamGenerateContent", "countTokens")


class FakeVertex(FakeGemini):
    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self.public_keys: dict[str, bytes] = {}      # client_email → PEM public key
        self.projects: dict[str, set[str]] = {}      # client_email → projects it may call
        self.express_keys: set[str] = set()
        self.tokens: dict[str, tuple[str, float]] = {}  # access token → (client_email, expiry, monotonic)
        self.token_lifetime = 3600                    # seconds, as expires_in
        self.token_requests = 0
        self.token_outage = 0  # the next N token requests answer 503, as Google's token endpoint in an outage
        self.caches = VertexCaches()

    def reset(self) -> None:
        super().reset()
        self.caches = VertexCaches()
        self.token_outage = 0

    def service_account(self, directory: Path, email: str, projects: tuple[str, ...]) -> Path:
        """A service-account JSON file with a new keypair, whose token_uri is this fake."""
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()).decode()
        self.public_keys[email] = private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.projects[email] = set(projects)
        path = directory / f"{email.split('@')[0]}.json"
        path.write_text(json.dumps({
            "type": "service_account", "project_id": projects[0], "private_key_id": secrets.token_hex(20),
            "private_key": pem, "client_email": email, "client_id": "1",
            "token_uri": f"{self.root_url}/token"}))
        return path

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=512 * 1024 * 1024)
        app.router.add_post("/token", self._handle_token)
        app.router.add_post("/v1/projects/{project}/locations/{location}/publishers/google/models/{tail}",
                            self._handle_model)
        app.router.add_post("/v1/publishers/google/models/{tail}", self._handle_model)
        app.router.add_route("*", "/v1/projects/{project}/locations/{location}/cachedContents{rest:(/[0-9]+)?}",
                             self._handle_vertex_caches)
        app.router.add_route("*", "/{path:.*}", self._handle_other)
        return app

    async def _handle_token(self, request: web.Request) -> web.Response:
        form = await request.post()
        self.token_requests += 1
        if self.token_outage:
            self.token_outage -= 1
            return _oauth_error("temporarily_unavailable", "The service is currently unavailable.", 503)
        if form.get("grant_type") != JWT_BEARER:
            return _oauth_error("unsupported_grant_type", "Invalid grant_type.")
        assertion = str(form.get("assertion") or "")
        try:
            claims = google.auth.jwt.decode(assertion, verify=False)
            key = self.public_keys.get(claims.get("iss", ""))
            if key is None:
                return _oauth_error("invalid_client", "The OAuth client was not found.", 401)
            claims = google.auth.jwt.decode(assertion, certs=key.decode(), audience=AUDIENCE)
        except (ValueError, google.auth.exceptions.GoogleAuthError) as exc:
            return _oauth_error("invalid_grant", f"Invalid JWT: {exc}")
        if SCOPE not in str(claims.get("scope", "")).split() or claims["exp"] - claims["iat"] > 3600:
            return _oauth_error("invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        self.tokens[token] = (claims["iss"], time.monotonic() + self.token_lifetime)
        return web.json_response({"access_token": token, "expires_in": self.token_lifetime, "token_type": "Bearer"})

    async def _serve(self, request: web.Request, rec: dict, model: str, action: str) -> web.StreamResponse:
        project = request.match_info.get("project")
        key, refusal = self._vertex_caller(request, rec, project, f"publishers/google/models/{model}")
        if refusal is not None:
            return refusal
        rec["key"] = key
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            return self._error(rec, 400, "Invalid JSON payload received. Unexpected token.")
        for number, content in enumerate((body or {}).get("contents") or ()):
            if isinstance(content, dict) and not content.get("role"):
                rec["body"] = body
                return self._error(rec, 400, f"Please use a valid role: user, model. (contents[{number}] has none)")
        if action == "countTokens" and isinstance(body, dict):
            body = {"generateContentRequest": {"model": f"models/{model}", **body}}
        return await self._respond(request, rec, model, action, key, body)

    def _vertex_caller(self, request: web.Request, rec: dict, project: str | None,
                       resource: str) -> tuple[str, web.Response | None]:
        """Who calls: a service account by its Bearer token on a project route, an express key on
        the global one; else Vertex's 401 UNAUTHENTICATED or 403 PERMISSION_DENIED."""
        if project is None:
            key = request.headers.get("x-goog-api-key") or request.query.get("key") or ""
            if key in self.express_keys:
                return key, None
            return key, self._error(rec, 401, "API keys are not supported by this API. Expected OAuth2 access "
                                              "token or other authentication credentials that assert a principal.",
                                    "UNAUTHENTICATED")
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        holder = self.tokens.get(token) if scheme == "Bearer" else None
        if holder is None or holder[1] < time.monotonic():
            return "", self._error(rec, 401, "Request had invalid authentication credentials. Expected OAuth 2 "
                                             "access token, login cookie or other valid authentication credential.",
                                   "UNAUTHENTICATED")
        if project not in self.projects.get(holder[0], ()):
            location = request.match_info["location"]
            return "", self._error(rec, 403, f"Permission 'aiplatform.endpoints.predict' denied on resource "
                                             f"'//aiplatform.googleapis.com/projects/{project}/locations/{location}/"
                                             f"{resource}' (or it may not exist).",
                                   "PERMISSION_DENIED")
        return f"{holder[0]}/{project}", None

    async def _handle_vertex_caches(self, request: web.Request) -> web.Response:
        """cachedContents on a project route, for a Bearer token allowed on the project."""
        rec = self._new_record(request, None, "cachedContents")
        project = request.match_info["project"]
        _, refusal = self._vertex_caller(request, rec, project, "cachedContents")
        if refusal is not None:
            self._finish(rec)
            return refusal
        rec["key"] = parent = f"projects/{project}/locations/{request.match_info['location']}"
        return await answer_caches(self, request, rec, parent, parent + "/cachedContents")

    async def _handle_model(self, request: web.Request) -> web.StreamResponse:
        model, sep, action = request.match_info["tail"].partition(":")
        if not sep or action not in _ACTIONS:
            return await self._handle_other(request)
        return await super()._handle_model(request)


def _oauth_error(error: str, description: str, status: int = 400) -> web.Response:
    return web.json_response({"error": error, "error_description": description}, status=status)
