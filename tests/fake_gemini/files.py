"""The fake Gemini's Files API: resumable upload (``POST /upload/v1beta/files`` with ``X-Goog-Upload-Command:
start``, then ``upload, finalize`` on the URL it answers), ``GET`` and ``DELETE /v1beta/files/{id}``; each file
belongs to the key that uploaded it (another key gets Gemini's 403), expires ``file_lifetime_s`` (48 h) after
upload (``expire_file`` makes one expire now), and a ``fileData`` naming a Files API URI must name a live file of the
calling key (else 403, as Gemini answers)."""
from __future__ import annotations

import datetime
import hashlib
import json
import re
import secrets
import time

from aiohttp import web

from .validation import Reject

FILE_URI = "https://generativelanguage.googleapis.com/v1beta/files/"
_URI_RE = re.compile(r"^https://generativelanguage\.googleapis\.com/v1beta/files/([a-z0-9-]+)$")
LIFETIME_S = 48 * 3600


def stamp(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat().replace("+00:00", "Z")


class FilesMixin:
    """Mixed into FakeGemini: ``gemini_files`` (id → file resource, with its owner key and bytes)."""

    def reset_files(self) -> None:
        self.gemini_files: dict[str, dict] = {}
        self._uploads: dict[str, dict] = {}
        self.file_lifetime_s: float = LIFETIME_S

    def expire_file(self, file_id: str) -> None:
        self.gemini_files[file_id]["expires"] = time.time() - 1

    def add_file_routes(self, app: web.Application) -> None:
        app.router.add_post("/upload/v1beta/files", self._upload)
        app.router.add_get("/v1beta/files/{id}", self._get_file)
        app.router.add_delete("/v1beta/files/{id}", self._delete_file)

    def _live_file(self, file_id: str, key: str) -> dict:
        found = self.gemini_files.get(file_id)
        if found is None or found["key"] != key or found["expires"] <= time.time():
            raise Reject(f"You do not have permission to access the File {file_id} or it may not exist.", 403,
                         "PERMISSION_DENIED")
        return found

    def check_file_data(self, req: dict, key: str) -> None:
        """Every Files API URI of the request names a live file of ``key``."""
        for content in req.get("contents") or ():
            for part in content.get("parts") or ():
                match = _URI_RE.match(str((part.get("fileData") or {}).get("fileUri") or ""))
                if match:
                    self._live_file(match.group(1), key)

    async def _upload(self, request: web.Request) -> web.Response:
        rec = self._new_record(request, None, "upload")
        try:
            return await self._upload_step(request, rec)
        except Reject as e:
            return self._error(rec, e.code, e.message, e.status)
        finally:
            self._finish(rec)

    async def _upload_step(self, request: web.Request, rec: dict) -> web.Response:
        key = self._known_key(request)
        command = request.headers.get("X-Goog-Upload-Command", "")
        if "upload_id" in request.query:
            pending = self._uploads.pop(request.query["upload_id"], None)
            if pending is None or pending["key"] != key:
                raise Reject("Upload session not found.", 404, "NOT_FOUND")
            if command != "upload, finalize" or request.headers.get("X-Goog-Upload-Offset") != "0":
                raise Reject("Expected X-Goog-Upload-Command 'upload, finalize' at offset 0.")
            data = await request.read()
            if len(data) != pending["size"]:
                raise Reject(f"Received {len(data)} bytes, {pending['size']} were announced.")
            rec["status"] = 200
            return web.json_response({"file": self._stored(pending, data, key)})
        if request.headers.get("X-Goog-Upload-Protocol") != "resumable" or command != "start":
            raise Reject("Uploads must use X-Goog-Upload-Protocol: resumable and start with X-Goog-Upload-Command: "
                         "start.")
        size, mime = (request.headers.get("X-Goog-Upload-Header-Content-Length"),
                      request.headers.get("X-Goog-Upload-Header-Content-Type"))
        if not (size and size.isdigit()) or not mime:
            raise Reject("X-Goog-Upload-Header-Content-Length and -Content-Type are required.")
        raw = await request.read()
        meta = json.loads(raw) if raw else {}
        unknown = set(meta) - {"file"} or set(meta.get("file") or {}) - {"displayName", "display_name"}
        if unknown:
            raise Reject(f'Invalid JSON payload received. Unknown name "{sorted(unknown)[0]}": Cannot find field.')
        upload_id = secrets.token_urlsafe(12)
        self._uploads[upload_id] = {"key": key, "size": int(size), "mime": mime,
                                    "display": (meta.get("file") or {}).get("displayName")}
        rec["status"] = 200
        return web.Response(headers={"X-Goog-Upload-URL": f"{self.root_url}/upload/v1beta/files?upload_id={upload_id}",
                                     "X-Goog-Upload-Status": "active"})

    def _stored(self, pending: dict, data: bytes, key: str) -> dict:
        file_id = secrets.token_hex(6)
        now = time.time()
        self.gemini_files[file_id] = {"key": key, "data": data, "mime": pending["mime"], "created": now,
                                      "expires": now + self.file_lifetime_s, "display": pending["display"]}
        return self._file_resource(file_id)

    def _file_resource(self, file_id: str) -> dict:
        found = self.gemini_files[file_id]
        resource = {"name": f"files/{file_id}", "mimeType": found["mime"], "sizeBytes": str(len(found["data"])),
                    "createTime": stamp(found["created"]), "updateTime": stamp(found["created"]),
                    "expirationTime": stamp(found["expires"]),
                    "sha256Hash": hashlib.sha256(found["data"]).hexdigest(), "uri": FILE_URI + file_id,
                    "state": "ACTIVE", "source": "UPLOADED"}
        return {**resource, "displayName": found["display"]} if found["display"] else resource

    async def _get_file(self, request: web.Request) -> web.Response:
        return await self._file_call(request, lambda file_id: self._file_resource(file_id))

    async def _delete_file(self, request: web.Request) -> web.Response:
        return await self._file_call(request, lambda file_id: self.gemini_files.pop(file_id) and {})

    async def _file_call(self, request: web.Request, answer) -> web.Response:
        rec = self._new_record(request, None, request.method.lower() + "File")
        try:
            file_id = request.match_info["id"]
            self._live_file(file_id, self._known_key(request))
            rec["status"] = 200
            return web.json_response(answer(file_id))
        except Reject as e:
            return self._error(rec, e.code, e.message, e.status)
        finally:
            self._finish(rec)

    def _known_key(self, request: web.Request) -> str:
        """The caller's key (Gemini's 403 without one, 400 for one it does not know)."""
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            raise Reject("Method doesn't allow unregistered callers (callers without established identity). Please "
                         "use API Key or other form of API consumer identity to call this API.", 403,
                         "PERMISSION_DENIED")
        if key == "invalid-key" or not self.quotas.knows(key):
            raise Reject("API key not valid. Please pass a valid API key.")
        return key
