"""``/v1/files``: the Files API (beta ``files-api-2025-04-14``), as the Anthropic SDK's ``beta.files`` calls it.

The proxy keeps the bytes (``FILES_DIR``, at most ``FILES_MAX_BYTES_PER_KEY`` per client key) and their
metadata in the ledger's database. A message (or a batch request) naming a ``file_id`` in an image or
document source gets the file uploaded to Gemini's Files API with the Gemini key its call uses, once per
key and reused until Gemini's copy nears its expiry (48 h); the source handed to the translator is then
a URL source naming Gemini's file, which the translator sends as ``fileData``: the translator stays pure.
"""
from __future__ import annotations

import asyncio
import copy
import datetime
import mimetypes
import os
from pathlib import Path
from typing import Any, AsyncGenerator, Iterator

from quart import Blueprint, Response, g, request
from sqlalchemy import delete, func, select

import translator
from translator import AnthropicError

from ..current import ProxyApp, current_app
from .batch_jobs import now_ms
from .batch_tables import gemini_files, stored_files
from .batches import rfc3339, served
from ..web.errors import json_response, new_id, own_errors
from .gemini_api import GeminiApi
from ..teams.keys import Client
from ..engines.pool import key_tag

files = Blueprint("files", __name__)
MAX_FILE_BYTES = 500 * 1024 * 1024       # Anthropic's limit on one file
REUPLOAD_MARGIN_MS = 3600 * 1000         # a Gemini copy expiring within the hour is uploaded again


class FileStore:
    """The files of every key: bytes on disk, rows in the database, copies at Gemini per key."""

    def __init__(self, proxy: Any, engine: Any):
        self.proxy, self.engine = proxy, engine
        self.directory = Path(proxy.settings.files_dir)   # made at the first upload
        self.api = GeminiApi(proxy.http, proxy.settings, proxy.spec)

    def path(self, file_id: str) -> Path:
        return self.directory / file_id

    async def row(self, file_id: str, client: Client) -> dict[str, Any]:
        """The file's row, if ``client`` may use it; else a 404 naming it (deleted, unknown or another key's)."""
        async with self.engine.connect() as connection:
            row = (await connection.execute(select(stored_files).where(stored_files.c.id == file_id))).mappings().first()
        if row is None or not (client.admin or row["key_name"] == client.name):
            raise self.api.spec.errors.own.file_not_found.error(file_id=file_id)
        return dict(row)

    async def used_bytes(self, client: Client) -> int:
        async with self.engine.connect() as connection:
            used = await connection.scalar(select(func.coalesce(func.sum(stored_files.c.size_bytes), 0)).where(
                stored_files.c.key_name == client.name))
        return int(used or 0)

    async def gemini_uri(self, row: dict[str, Any], key: str) -> str:
        """Gemini's URI of the file for ``key``: the copy uploaded before, or a new upload."""
        tag, now = key_tag(key), now_ms()
        async with self.engine.connect() as connection:
            copy_row = (await connection.execute(select(gemini_files).where(
                gemini_files.c.file_id == row["id"], gemini_files.c.key_tag == tag))).mappings().first()
        if copy_row is not None and copy_row["expires_ms"] > now + REUPLOAD_MARGIN_MS:
            return str(copy_row["uri"])
        data = await asyncio.to_thread(self.path(row["id"]).read_bytes)
        uploaded = await self.api.upload_file(data, row["mime_type"], row["id"], key)
        expires = _expiry_ms(uploaded.get("expirationTime"), now)
        async with self.engine.begin() as connection:
            await connection.execute(delete(gemini_files).where(gemini_files.c.file_id == row["id"],
                                                                gemini_files.c.key_tag == tag))
            await connection.execute(gemini_files.insert().values(file_id=row["id"], key_tag=tag,
                                                                  name=uploaded["name"], uri=uploaded["uri"],
                                                                  expires_ms=expires))
        return str(uploaded["uri"])

    async def resolved(self, params: Any, client: Client, key: str) -> Any:
        """``params`` with each file source of a user message's image or document block replaced by a URL source
        naming Gemini's copy for ``key`` (``params`` itself is left as it was)."""
        if not any(True for _ in file_sources(params)):
            return params
        params = copy.deepcopy(params)
        for where, block in file_sources(params):
            file_id = block["source"].get("file_id")
            if not isinstance(file_id, str):
                raise self.api.spec.errors.own.file_id_missing.error(where=where)
            try:
                row = await self.row(file_id, client)
            except AnthropicError as error:
                raise self.api.spec.errors.own.file_id_refused.error(where=where, reason=error.message) from None
            block["source"] = {"type": "url", "url": await self.gemini_uri(row, key), "media_type": row["mime_type"]}
        return params

    async def forget(self, row: dict[str, Any]) -> None:
        """The file gone: its row, its bytes, and its copies at Gemini (best effort)."""
        async with self.engine.begin() as connection:
            copies = (await connection.execute(select(gemini_files).where(
                gemini_files.c.file_id == row["id"]))).mappings().all()
            await connection.execute(delete(gemini_files).where(gemini_files.c.file_id == row["id"]))
            await connection.execute(delete(stored_files).where(stored_files.c.id == row["id"]))
        await asyncio.to_thread(lambda: self.path(row["id"]).unlink(missing_ok=True))
        keys = {key_tag(key): key for key in self.proxy.settings.gemini_api_keys}
        for gemini_copy in copies:
            if gemini_copy["key_tag"] in keys:
                try:
                    await self.api.delete_file(gemini_copy["name"], keys[gemini_copy["key_tag"]])
                except AnthropicError:
                    pass  # Gemini deletes it itself after 48 h


def _expiry_ms(stamp: Any, now: int) -> int:
    """Gemini's ``expirationTime`` (RFC 3339) in ms; 48 h from now when it is missing or unreadable."""
    try:
        return int(datetime.datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        return now + 48 * 3600 * 1000


def file_sources(params: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """The image and document blocks of user messages whose source is a file, each with where it is."""
    messages = params.get("messages") if isinstance(params, dict) else None
    for number, message in enumerate(messages if isinstance(messages, list) else ()):
        content = message.get("content") if isinstance(message, dict) and message.get("role") == "user" else None
        for index, block in enumerate(content if isinstance(content, list) else ()):
            if (isinstance(block, dict) and block.get("type") in ("image", "document")
                    and isinstance(block.get("source"), dict) and block["source"].get("type") == "file"):
                yield f"messages.{number}.content.{index}.source", block


def store() -> FileStore:
    return served("files", "Files API")


async def resolve_file_sources(body: Any) -> Any:
    """For /v1/messages: a body naming file_ids, with them resolved for the key its model's call will use."""
    if not any(True for _ in file_sources(body)):
        return body
    proxy = current_app.proxy
    route = translator.resolve_model(body.get("model"), proxy.spec.models)
    deployment = await proxy.pool.pick(route.target)
    keys = proxy.settings.gemini_api_keys
    key = deployment.params.get("api_key") if deployment is not None else (keys[0] if keys else None)
    if not key or getattr(current_app, "files", None) is None:
        raise proxy.spec.errors.own.files_need_database.error()
    return await store().resolved(body, g.client, key)


def metadata(row: dict[str, Any]) -> dict[str, Any]:
    return {"id": row["id"], "type": "file", "filename": row["filename"], "mime_type": row["mime_type"],
            "size_bytes": row["size_bytes"], "created_at": rfc3339(row["created_ms"]), "downloadable": False}


@files.post("/v1/files")
async def upload() -> Response:
    files_store, client = store(), g.client
    limit = current_app.proxy.settings.files_max_bytes_per_key
    room = min(MAX_FILE_BYTES, limit - await files_store.used_bytes(client))
    own = own_errors()
    too_large = own.file_too_large.error(key=client.name, limit=limit, left=max(0, room))
    if request.content_length is None:  # the bound is checked before reading (the SDK always sends a length)
        raise own.upload_without_length.error()
    if request.content_length > room + 64 * 1024:
        raise too_large
    g.body_read = True
    form = await request.files
    part = form.get("file")
    if part is None:
        raise own.upload_without_file.error()
    data = part.read()
    if len(data) > room:
        raise too_large
    filename = part.filename or "file"
    mime_type = part.mimetype or mimetypes.guess_type(filename)[0] or "application/octet-stream"
    row = {"id": new_id("file_"), "key_name": client.name, "filename": os.path.basename(filename),
           "mime_type": mime_type, "size_bytes": len(data), "created_ms": now_ms()}
    await asyncio.to_thread(files_store.directory.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread(files_store.path(row["id"]).write_bytes, data)
    async with files_store.engine.begin() as connection:
        await connection.execute(stored_files.insert().values(**row))
    return json_response(metadata(row))


@files.get("/v1/files")
async def listing() -> Response:
    client = g.client
    statement = select(stored_files).order_by(stored_files.c.created_ms.desc(), stored_files.c.id)
    if not client.admin:
        statement = statement.where(stored_files.c.key_name == client.name)
    async with store().engine.connect() as connection:
        rows = [dict(row) for row in (await connection.execute(statement)).mappings()]
    after = (request.args.get("page") or "").removeprefix("page_") or request.args.get("after_id")
    page = translator.model_page(rows, request.args.get("limit", type=int), after, request.args.get("before_id"),
                                 default_limit=20, max_limit=1000)
    page["data"] = [metadata(row) for row in page["data"]]
    page["next_page"] = f"page_{page['last_id']}" if page["has_more"] else None
    return json_response(page)


@files.get("/v1/files/<file_id>")
async def retrieve(file_id: str) -> Response:
    return json_response(metadata(await store().row(file_id, g.client)))


@files.delete("/v1/files/<file_id>")
async def remove(file_id: str) -> Response:
    files_store = store()
    await files_store.forget(await files_store.row(file_id, g.client))
    return json_response({"id": file_id, "type": "file_deleted"})


@files.get("/v1/files/<file_id>/content")
async def content(file_id: str) -> Response:
    await store().row(file_id, g.client)
    raise own_errors().file_not_downloadable.error(file_id=file_id)


def register(app: ProxyApp) -> None:
    app.register_blueprint(files)

    @app.while_serving
    async def open_files() -> AsyncGenerator[None, None]:
        """After the app's own resources open (the ledger's database)."""
        if app.proxy.ledger is not None:
            app.files = FileStore(app.proxy, app.proxy.ledger.engine)
        yield
