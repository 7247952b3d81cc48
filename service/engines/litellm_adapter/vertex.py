"""Vertex AI requests, built as LiteLLM builds them for ``vertex_ai/`` Gemini models: the same body
(LiteLLM's Vertex transformation), the URL of LiteLLM's ``_get_token_and_url`` for a project, and
the header of its express mode (an API key on the global endpoint, no project). The answer is read
by the Gemini parser (:class:`GeminiParser`): Vertex streams the same GenerateContentResponse."""
from __future__ import annotations

from typing import Any

from litellm.llms.vertex_ai.gemini.vertex_and_google_ai_studio_gemini import VertexLLM

from .gemini import GEMINI, GeminiRequest, gemini_body

EXPRESS_BASE = "https://aiplatform.googleapis.com"   # express mode's only endpoint (global)


def vertex_parts(kwargs: dict[str, Any], auth: str | dict[str, str], project: str | None, location: str,
                 api_base: str | None) -> tuple[GeminiRequest, dict[str, Any]]:
    """The streamGenerateContent call for ``kwargs`` and its body as a dict (which a context cache
    splits): with a project, ``auth`` is its OAuth access token (a Bearer header); without one
    (express mode) it is ``{"x-goog-api-key": key}``."""
    model, optional, body = gemini_body(kwargs, provider="vertex_ai")
    url = vertex_url(model, "streamGenerateContent", project, location, api_base)
    headers = GEMINI.validate_environment(headers=None, model=model, messages=[], optional_params=optional,
                                          litellm_params={}, api_key=auth)
    return GeminiRequest(url, headers, body, model, optional, upstream="Vertex AI"), body


def vertex_url(model: str, action: str, project: str | None, location: str, api_base: str | None) -> str:
    """A model action's URL: LiteLLM's for a project (regional or global host, or ``api_base`` in their
    place), ``{base}/v1/publishers/google/models/{model}:{action}`` in express mode."""
    stream = action == "streamGenerateContent"
    if project is None:
        return f"{(api_base or EXPRESS_BASE).rstrip('/')}/v1/publishers/google/models/{model}:{action}" + (
            "?alt=sse" if stream else "")
    _, url = VertexLLM()._get_token_and_url(
        model=model, auth_header=None, gemini_api_key=None, vertex_project=project, vertex_location=location,
        vertex_credentials=None, stream=True, custom_llm_provider="vertex_ai", api_base=api_base or None)
    return url if stream else url.split("?", 1)[0].replace(":streamGenerateContent", f":{action}")


def count_tokens_body(kwargs: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Vertex's countTokens body (contents, system instruction and tools at the top level, unlike
    AI Studio's ``generateContentRequest``) and the model's name."""
    model, _, body = gemini_body(kwargs, provider="vertex_ai")
    return model, {k: v for k, v in body.items() if k in ("contents", "system_instruction", "tools")}
