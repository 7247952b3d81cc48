"""The tables of Message Batches and Files (migration 0003), for service.batch.batches and service.batch.files."""
from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text

metadata = MetaData()

message_batches = Table(
    "message_batches", metadata,
    Column("id", String, primary_key=True),
    Column("key_name", String, nullable=False),     # the client key's name: who may see the batch
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("ended_ms", BigInteger),
    Column("cancel_ms", BigInteger),
)

gemini_batches = Table(
    "gemini_batches", metadata,
    Column("name", String, primary_key=True),
    Column("batch_id", String, nullable=False),
    Column("target", String, nullable=False),
    Column("key_tag", String, nullable=False),
    Column("state", String, nullable=False),
    Column("claimed_ms", BigInteger),
)

batch_requests = Table(
    "batch_requests", metadata,
    Column("batch_id", String, primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("custom_id", String, nullable=False),
    Column("params", Text, nullable=False),
    Column("gemini_batch", String),
    Column("gemini_index", Integer),
    Column("result_type", String),
    Column("result", Text),
)

stored_files = Table(
    "stored_files", metadata,
    Column("id", String, primary_key=True),
    Column("key_name", String, nullable=False),
    Column("filename", String, nullable=False),
    Column("mime_type", String, nullable=False),
    Column("size_bytes", BigInteger, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
)

gemini_files = Table(
    "gemini_files", metadata,
    Column("file_id", String, primary_key=True),
    Column("key_tag", String, primary_key=True),
    Column("name", String, nullable=False),
    Column("uri", String, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
)
