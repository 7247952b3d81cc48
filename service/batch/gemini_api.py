"""Gemini's Batch and Files APIs, called with the proxy's pooled HTTP client (service/engines/answers.py).

Each call names the key it runs on: a Gemini batch or file belongs to the project of the key that
made it. An HTTP error becomes the Anthropic error /v1/messages would answer for it (LiteLLM's
exception mapping, then errors.yaml), so a 429 carries its retry-after."""
from __future__ import annotations

import json
from typing import Any

import aiohttp

from translator import AnthropicError, Spec

from ..engines import litellm_adapter, upstream
from ..config import GEMINI_API_BASE, Settings

BATCH_OUTPUT_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"


class GeminiApi:
    """Batches (create, get, cancel, delete) and files (upload, delete) on one Gemini API base."""

    def __init__(self, http: aiohttp.ClientSession, settings: Settings, spec: Spec):
        self.http, self.settings, self.spec = http, settings, spec
        self.base = settings.gemini_api_base or GEMINI_API_BASE
        self.root = self.base.rpartition("/")[0]   # without /v1beta: uploads go to /upload/v1beta/files

    async def _call(self, method: str, url: str, key: str, model: str = "batch", **options: Any) -> Any:
        headers = {"x-goog-api-key": key, **options.pop("headers", {})}
        try:
            async with self.http.request(method, url, headers=headers, **options) as response:
                text = await response.text()
                if response.status >= 300:
                    request = litellm_adapter.GeminiRequest(url, {}, b"", model, {})
                    raise litellm_adapter.http_error(request, response.status, text, response.headers)
                return (json.loads(text) if text.strip() else {}), response.headers
        except AnthropicError:
            raise
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            request = litellm_adapter.GeminiRequest(url, {}, b"", model, {})
            raise upstream.to_anthropic_error(litellm_adapter.connection_error(request, exc), self.spec,
                                              self.settings) from None
        except Exception as exc:  # noqa: BLE001 - LiteLLM's mapped exception
            raise upstream.to_anthropic_error(exc, self.spec, self.settings) from None

    async def create_batch(self, model: str, display_name: str, requests: list[dict[str, Any]], key: str) -> str:
        """Enqueue inlined generateContent requests; Gemini's batch name (``batches/...``)."""
        body = {"batch": {"displayName": display_name, "inputConfig": {"requests": {"requests": requests}}}}
        operation, _ = await self._call("POST", f"{self.base}/models/{model}:batchGenerateContent", key, model,
                                        data=json.dumps(body, ensure_ascii=False).encode(),
                                        headers={"content-type": "application/json"})
        return str(operation.get("name") or operation["metadata"]["name"])

    async def get_batch(self, name: str, key: str) -> dict[str, Any]:
        operation, _ = await self._call("GET", f"{self.base}/{name}", key)
        return operation

    async def cancel_batch(self, name: str, key: str) -> None:
        await self._call("POST", f"{self.base}/{name}:cancel", key)

    async def delete_batch(self, name: str, key: str) -> None:
        await self._call("DELETE", f"{self.base}/{name}", key)

    async def upload_file(self, data: bytes, mime_type: str, display_name: str, key: str) -> dict[str, Any]:
        """Gemini's resumable upload (start, then upload and finalize in one request); the File resource."""
        start = {"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start",
                 "X-Goog-Upload-Header-Content-Length": str(len(data)),
                 "X-Goog-Upload-Header-Content-Type": mime_type, "content-type": "application/json"}
        _, headers = await self._call("POST", f"{self.root}/upload/v1beta/files", key, headers=start,
                                      data=json.dumps({"file": {"displayName": display_name}}).encode())
        upload_url = headers.get("X-Goog-Upload-URL")
        if not upload_url:
            raise self.spec.errors.own.no_upload_url.error()
        finish = {"X-Goog-Upload-Offset": "0", "X-Goog-Upload-Command": "upload, finalize",
                  "content-type": mime_type}
        answer, _ = await self._call("POST", upload_url, key, headers=finish, data=data)
        return dict(answer["file"])

    async def delete_file(self, name: str, key: str) -> None:
        await self._call("DELETE", f"{self.base}/{name}", key)


def inlined_responses(operation: dict[str, Any]) -> list[dict[str, Any]]:
    """A finished batch's inlined responses, in request order (``response``, where Gemini puts them, else
    ``metadata.output``)."""
    output = operation.get("response") or (operation.get("metadata") or {}).get("output") or {}
    return list((output.get("inlinedResponses") or {}).get("inlinedResponses") or [])
