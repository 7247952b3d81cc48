"""The usage ledger: a row per answered request, in SQLite or PostgreSQL (``DATABASE_URL``), through SQLAlchemy.

Plain URLs work as written: ``sqlite:///PATH`` is opened with aiosqlite, ``postgresql://...`` with
asyncpg. The schema is Alembic's migrations (``service/teams/migrations``), run at start-up under a lock, so
that several workers starting together migrate once.

Requests never wait for the database: a row is put in a queue in memory, and one writer task inserts
what is queued every ``LEDGER_FLUSH_SECONDS`` in one transaction (and at once when the usage report is
read, and at shutdown). A database that does not answer keeps the rows in the queue until it is back,
said once in the log; the queue holds at most ``LEDGER_QUEUE_ROWS`` rows, and rows that do not fit
(or are still queued when the shutdown's flush gives up) are counted and logged as lost.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import fcntl
import itertools
import logging
from pathlib import Path
from typing import Any, Callable

import alembic.command
import alembic.config
from sqlalchemy import (BigInteger, Boolean, Column, Float, Integer, MetaData, SmallInteger, String, Table, event,
                        func, select, text)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from translator import ReportQuery

from ..config import Settings
from ..engines.upstream import scrub

log = logging.getLogger("proxy.ledger")
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BATCH_ROWS = 1000
SHUTDOWN_FLUSH_SECONDS = 10.0
MIGRATION_LOCK = 7_346_011  # PostgreSQL advisory lock id

usage_ledger = Table(
    "usage_ledger", MetaData(),
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True),
    Column("time_ms", BigInteger, nullable=False),          # when the request came (Unix time, milliseconds)
    Column("request_id", String, nullable=False),
    Column("key_name", String, nullable=False),             # the client key's name, never the key
    Column("model", String),                                # as the client asked
    Column("answered_by", String),                          # the model that answered (gemini/...)
    Column("uncached_input_tokens", BigInteger, nullable=False),
    Column("cache_creation_input_tokens", BigInteger, nullable=False),
    Column("cache_read_input_tokens", BigInteger, nullable=False),
    Column("cache_creation_1h_input_tokens", BigInteger, nullable=False),   # of the writes, those kept 1 h
    Column("output_tokens", BigInteger, nullable=False),
    Column("web_search_requests", Integer, nullable=False),
    Column("stop_reason", String),
    Column("status", SmallInteger, nullable=False),
    Column("latency_ms", Float, nullable=False),
    Column("stream", Boolean, nullable=False),
    Column("service_tier", String, nullable=False),        # standard, priority, flex or batch
    Column("usage_source", String),                         # gemini or estimate (service/teams/partial.py)
    Column("long_context", Boolean, nullable=False),        # the prompt was over prices.yaml's long_context_tokens
)
SUMMED = ("uncached_input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
          "cache_creation_1h_input_tokens", "output_tokens",
          "web_search_requests")


def async_url(url: str) -> URL:
    """``DATABASE_URL`` with the proxy's async driver: aiosqlite for SQLite, asyncpg for PostgreSQL."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite" and parsed.drivername in ("sqlite", "sqlite+aiosqlite"):
        return parsed.set(drivername="sqlite+aiosqlite")
    if backend in ("postgresql", "postgres") and parsed.drivername in ("postgresql", "postgres", "postgresql+asyncpg"):
        parsed = parsed.set(drivername="postgresql+asyncpg")
        if "sslmode" in parsed.query:  # libpq's name; asyncpg calls it ssl
            parsed = parsed.difference_update_query(["sslmode"]).update_query_dict({"ssl": parsed.query["sslmode"]})
        return parsed
    raise ValueError(f"DATABASE_URL: {parsed.drivername}:// is not supported: use sqlite:///PATH or "
                     "postgresql://user:password@host:port/database (or DATABASE_URL=off for no ledger)")


def _engine(url: URL) -> AsyncEngine:
    if url.get_backend_name() != "sqlite":
        return create_async_engine(url, pool_pre_ping=True, pool_size=2, connect_args={"timeout": 5})
    engine = create_async_engine(url, connect_args={"timeout": 10})

    @event.listens_for(engine.sync_engine, "connect")
    def wal(connection: Any, _: Any) -> None:  # readers and the writers of other workers do not block each other
        connection.execute("PRAGMA journal_mode=WAL")
    return engine


def _upgrade(connection: Any) -> None:
    config = alembic.config.Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    alembic.command.upgrade(config, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to Alembic's head, one process at a time."""
    if engine.url.get_backend_name() == "sqlite":
        # flock on the database file itself: SQLite's own locks are fcntl locks, which flock does not touch.
        assert engine.url.database is not None  # a SQLite ledger is a file (an in-memory one has no lock to take)
        with open(engine.url.database, "a") as lock:
            await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
            async with engine.begin() as connection:
                await connection.run_sync(_upgrade)
        return
    async with engine.begin() as connection:
        await connection.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
        await connection.run_sync(_upgrade)


class Ledger:
    """The queue of rows, its writer, and the sums the reports read."""

    def __init__(self, settings: Settings, on_lost: Callable[[int], None] = lambda count: None):
        self.url = async_url(settings.database_url)
        self.shown = self.url.render_as_string(hide_password=True)
        self.secrets = settings.secrets
        self.max_rows, self.interval = settings.ledger_queue_rows, settings.ledger_flush_seconds
        self.on_lost = on_lost
        self.rows: collections.deque[dict[str, Any]] = collections.deque()
        self.lost = 0
        self.down = False
        self.engine: AsyncEngine | None = None
        self.writer: asyncio.Task | None = None
        self.lock = asyncio.Lock()
        self.closing = asyncio.Event()

    async def start(self) -> None:
        self.engine = _engine(self.url)
        await migrate(self.engine)
        self.writer = asyncio.get_running_loop().create_task(self._write_every_interval())

    def add(self, row: dict[str, Any]) -> None:
        """Queue a row (never waits); a full queue loses it, counted and logged."""
        if len(self.rows) < self.max_rows:
            self.rows.append(row)
            return
        self.lost += 1
        self.on_lost(1)
        if self.lost == 1 or self.lost % 1000 == 0:
            log.error("the usage ledger's queue is full (LEDGER_QUEUE_ROWS=%d, database %s): %d rows lost so far",
                      self.max_rows, self.shown, self.lost)

    async def _write_every_interval(self) -> None:
        while not self.closing.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.closing.wait(), self.interval)
            await self.flush()

    async def flush(self) -> bool:
        """Write every queued row; False when the database did not take them (they stay queued)."""
        async with self.lock:
            while self.rows:
                batch = list(itertools.islice(self.rows, BATCH_ROWS))
                try:
                    assert self.engine is not None  # flushes run after start()
                    async with self.engine.begin() as connection:
                        await connection.execute(usage_ledger.insert(), batch)
                except Exception as exc:  # noqa: BLE001 - any failure: the rows wait for the next try
                    self._unreachable(exc)
                    return False
                for _ in batch:
                    self.rows.popleft()
                if self.down:
                    self.down = False
                    log.warning("the usage ledger's database %s answers again; writing the %d rows that waited",
                                self.shown, len(self.rows) + len(batch))
        return True

    def _unreachable(self, exc: Exception) -> None:
        if not self.down:
            self.down = True
            log.error("the usage ledger's database %s does not take rows (%s: %s); they wait in memory (at most "
                      "LEDGER_QUEUE_ROWS=%d)", self.shown, type(exc).__name__,
                      scrub(str(exc), self.secrets)[:300], self.max_rows)

    async def close(self) -> None:
        """At shutdown: write what is queued (for up to SHUTDOWN_FLUSH_SECONDS), then say what could not be."""
        self.closing.set()
        if self.writer is not None:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SHUTDOWN_FLUSH_SECONDS):
                    await self.writer
                    while self.rows and not await self.flush():
                        await asyncio.sleep(0.5)  # retrying the database until the flush budget is spent
            self.writer.cancel()
        if self.rows:
            self.lost += len(self.rows)
            self.on_lost(len(self.rows))
            log.error("the usage ledger's database %s did not take %d rows before shutdown: they are lost",
                      self.shown, len(self.rows))
        if self.engine is not None:
            await self.engine.dispose()

    async def totals(self, query: ReportQuery, groups: tuple[str, ...]) -> list[dict[str, Any]]:
        """Sums per bucket of the query's page, and per ``groups`` (api_key_id: the key's name; model: the model
        that answered, else the one asked for; long_context: the cost report's long-context prices)."""
        columns = {"api_key_id": usage_ledger.c.key_name,
                   "model": func.coalesce(usage_ledger.c.answered_by, usage_ledger.c.model),
                   "service_tier": usage_ledger.c.service_tier, "long_context": usage_ledger.c.long_context}
        width_ms = query.width * 1000
        bucket = ((usage_ledger.c.time_ms // width_ms) * query.width).label("bucket")
        grouped = [columns[group].label(group) for group in groups]
        statement = (select(bucket, *grouped, *(func.sum(usage_ledger.c[name]).label(name) for name in SUMMED))
                     .where(usage_ledger.c.time_ms >= query.start * 1000, usage_ledger.c.time_ms < query.end * 1000)
                     .group_by(bucket, *grouped))
        for group, values in query.filters.items():
            statement = statement.where(columns[group].in_(values))
        assert self.engine is not None  # reports are read while serving, after start()
        async with self.engine.connect() as connection:
            result = await connection.execute(statement)
            return [{**row._mapping, "bucket": int(row.bucket), **{n: int(row._mapping[n]) for n in SUMMED}}
                    for row in result]
