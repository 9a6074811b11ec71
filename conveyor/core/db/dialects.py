"""What differs between the SQL databases the metadata store runs on.

The rest of the code asks a ``Dialect`` and never which database it has.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import Connection, Engine, Table, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url


class Dialect(Protocol):
    """The few places where SQLite and PostgreSQL need different SQL."""

    read_options: dict[str, Any]

    def engine_options(self) -> dict[str, Any]:
        """Keyword arguments for ``create_engine``."""

    def configure(self, engine: Engine) -> None:
        """Install per-connection settings on a new engine."""

    def insert(self, table: Table) -> Any:
        """An INSERT that supports ``on_conflict_do_update`` / ``do_nothing``."""

    def migration_lock(self, engine: Engine) -> contextlib.AbstractContextManager[None]:
        """Serialise schema migrations across processes."""


class SqliteDialect:
    """Embedded SQLite: WAL journal, busy timeout, foreign keys, immediate write transactions."""

    busy_timeout_ms = 60_000

    read_options: dict[str, Any] = {}  # a read transaction is a snapshot under WAL already

    def __init__(self, url: str) -> None:
        self.path = make_url(url).database

    def engine_options(self) -> dict[str, Any]:
        return {"connect_args": {"timeout": self.busy_timeout_ms / 1000, "check_same_thread": False}}

    def configure(self, engine: Engine) -> None:
        if self.path and self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")
            # Searches over 100k runs touch index pages all over a file of hundreds of MB:
            # a 64 MiB page cache and memory-mapped reads keep them off the read() path.
            cursor.execute("PRAGMA cache_size=-65536")
            cursor.execute(f"PRAGMA mmap_size={256 * 1024 * 1024}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            # A write transaction takes the write lock up front: a deferred one that
            # upgrades later can fail with "database is locked" despite the timeout.
            writing = conn.get_execution_options().get("conveyor_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if writing else "BEGIN")

    def insert(self, table: Table) -> Any:
        return sqlite.insert(table)

    @contextlib.contextmanager
    def migration_lock(self, engine: Engine) -> Iterator[None]:
        if not self.path or self.path == ":memory:":
            yield
            return
        with open(f"{self.path}.migrate.lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


class PostgresDialect:
    """PostgreSQL through psycopg 3."""

    lock_key = 0x636F6E76  # "conv"

    # One snapshot per read transaction (read committed gives each statement its own): a
    # search that selects runs then reads their metrics sees one state of a busy store.
    read_options: dict[str, Any] = {"isolation_level": "REPEATABLE READ"}

    def __init__(self, url: str, pool_size: int = 5) -> None:
        self.pool_size = pool_size

    def engine_options(self) -> dict[str, Any]:
        return {"pool_size": self.pool_size, "pool_pre_ping": True}

    def configure(self, engine: Engine) -> None:
        return None

    def insert(self, table: Table) -> Any:
        return postgresql.insert(table)

    @contextlib.contextmanager
    def migration_lock(self, engine: Engine) -> Iterator[None]:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": self.lock_key})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.lock_key})
                conn.commit()


def dialect_for(url: str, pool_size: int = 5) -> Dialect:
    """The dialect for a SQLAlchemy URL; only SQLite and PostgreSQL are supported."""
    from conveyor.errors import ValidationError

    backend = make_url(url).get_backend_name()
    if backend == "sqlite":
        return SqliteDialect(url)
    if backend == "postgresql":
        return PostgresDialect(url, pool_size)
    raise ValidationError(
        f"setting 'metadata.url': unsupported database '{backend}' (use sqlite:/// or postgresql+psycopg://)",
        field="metadata.url",
    )
