"""A real PostgreSQL server for tests: Debian's PostgreSQL 15 (``initdb`` + ``pg_ctl``) on a free loopback port,
in a temporary directory, as the ``postgres`` user when the tests run as root (PostgreSQL refuses root).
``stop()`` and ``start()`` again make a database that is down for a while."""
from __future__ import annotations

import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.servers import free_port

BIN = Path("/usr/lib/postgresql/15/bin")
AVAILABLE = (BIN / "initdb").exists() and (BIN / "pg_ctl").exists()
MISSING = "PostgreSQL 15 is not installed (Debian: apt-get install postgresql-15; .ci/run installs it)"


class PostgresServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="proxy-pg-"))
        self.data = self.directory / "data"
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.as_postgres = os.geteuid() == 0
        if self.as_postgres:
            user = pwd.getpwnam("postgres")
            os.chown(self.directory, user.pw_uid, user.pw_gid)

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_postgres else []
        subprocess.run([*prefix, *command], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)

    def start(self) -> "PostgresServer":
        if not self.data.exists():
            self._run(str(BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-w", "-l", str(self.directory / "log"),
                  "-o", f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off", "start")
        return self

    def database(self, name: str) -> str:
        """A new, empty database on this server, by its URL."""
        self._run(str(BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name)
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-w", "-m", "fast", "stop")

    def __enter__(self) -> "PostgresServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


# The fixtures of the tests that run on both databases (the ledger's, Message Batches'), through conftest.py.
needs_postgres = pytest.mark.skipif(not AVAILABLE, reason=MISSING)
_databases = itertools.count()


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL 15 server for the module's tests."""
    if not AVAILABLE:
        pytest.skip(MISSING)
    with PostgresServer() as server:
        yield server


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=needs_postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'proxy.db'}"
    return request.getfixturevalue("postgres").database(f"db{next(_databases)}")
