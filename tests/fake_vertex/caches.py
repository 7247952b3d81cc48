"""The fake Vertex's ``cachedContents``: explicit context caches as Vertex holds them, as strict as the
fake Gemini's (whose TTL, expiry, minimum token counts, operations and merging it shares).

``POST /v1/projects/{p}/locations/{l}/cachedContents`` (create), ``GET`` (list), ``GET|PATCH|DELETE
.../cachedContents/{id}``, Bearer tokens only (express mode has no cachedContents: Vertex's express-mode
API reference lists only the models' generate and countTokens methods). A cache belongs to its
``projects/{p}/locations/{l}`` (another project gets 403); its ``model`` is the full resource name
``projects/{p}/locations/{l}/publishers/google/models/{m}`` there; under the model's minimum Vertex
answers "The cached content is of N tokens. The minimum token count to start caching is M."; a generate
call naming one (by its full name) must be on the cache's model and may not set systemInstruction,
tools or toolConfig."""
from __future__ import annotations

import secrets
from typing import Any

from tests.fake_gemini.caches import Caches
from tests.fake_gemini.validation import Reject


class VertexCaches(Caches):
    """Every live cache, by its full name ``projects/{p}/locations/{l}/cachedContents/{id}``; a cache's
    key is its parent ``projects/{p}/locations/{l}``."""

    def model_of(self, body: dict[str, Any], key: str) -> str:
        prefix = f"{key}/publishers/google/models/"
        model = str(body.get("model", ""))
        if not model.startswith(prefix) or "/" in model.removeprefix(prefix):
            raise Reject(f"Model name {model!r} is not valid: the cached content's model must be "
                         f"{prefix}{{model}}, in the cache's own project and location.")
        return model.removeprefix(prefix)

    def too_small(self, tokens: int, minimum: int) -> Reject:
        return Reject(f"The cached content is of {tokens} tokens. The minimum token count to start caching "
                      f"is {minimum}.")

    def new_name(self, key: str) -> str:
        return f"{key}/cachedContents/{secrets.randbelow(10 ** 18)}"

    def refused_head(self) -> Reject:
        return Reject("Tool config, tools and system instruction should not be set in the request when using "
                      "cached content.")

    def other_model(self, model: str, cache: dict[str, Any]) -> Reject:
        return Reject(f"The model of the request ({model}) and the model of the cached content "
                      f"{cache['name']} ({cache['model']}) must be the same.")

    def shown(self, cache: dict[str, Any]) -> dict[str, Any]:
        return {**super().shown(cache), "model": f"{cache['key']}/publishers/google/models/{cache['model']}"}

    def resolve(self, req: dict[str, Any], key: str, model: str) -> tuple[dict[str, Any], int]:
        """A generate call naming a cache by its full name: ``key`` is the caller's ``{email}/{project}``
        (an express key has no project, and no cache)."""
        name = str(req.get("cachedContent", ""))
        project = key.split("/", 1)[1] if "/" in key else None
        owner = name.rsplit("/cachedContents/", 1)[0] if project and name.startswith(f"projects/{project}/") else ""
        return super().resolve(req, owner, model)
