"""Opening the metadata store: engine, automatic migrations, transactions."""

from __future__ import annotations

import contextlib
import functools
import os
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Table, bindparam, create_engine, exc
from sqlalchemy.engine import make_url
from sqlalchemy.sql.expression import Executable

from conveyor.core.db.dialects import Dialect, dialect_for
from conveyor.errors import Conflict, ConveyorError, Unavailable

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "migrations"
VERSION_TABLE = "conveyor_alembic_version"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for Conveyor's migrations, bound to ``connection`` if given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _forget_connections(ref: weakref.ref[MetadataStore]) -> None:
    """In a forked child, drop the parent's pooled connections without closing them."""
    store = ref()
    if store is not None:
        store.engine.dispose(close=False)


class MetadataStore:
    """A SQL database holding every Conveyor record, migrated to the current schema on open.

    Args:
        url: a SQLAlchemy URL, ``sqlite:///path`` or ``postgresql+psycopg://...``.
        pool_size: connections kept open (PostgreSQL).

    Raises:
        Unavailable: the database cannot be reached.
        ConveyorError: the database was made by a newer Conveyor.
    """

    def __init__(self, url: str, pool_size: int = 5) -> None:
        self.url = url
        self.dialect: Dialect = dialect_for(url, pool_size)
        self.engine = create_engine(url, **self.dialect.engine_options())
        self.dialect.configure(self.engine)
        self._compiled: dict[str, Any] = {}
        os.register_at_fork(after_in_child=functools.partial(_forget_connections, weakref.ref(self)))
        self._migrate()

    def __repr__(self) -> str:
        return f"MetadataStore({make_url(self.url).render_as_string(hide_password=True)!r})"

    def _current_revision(self) -> str | None:
        with self.read() as conn:
            return MigrationContext.configure(
                conn, opts={"version_table": VERSION_TABLE}
            ).get_current_revision()

    def _migrate(self) -> None:
        head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        if self._current_revision() == head:
            return
        with self.dialect.migration_lock(self.engine), self.translate_errors():
            with self.engine.connect().execution_options(conveyor_write=True) as conn:
                current = MigrationContext.configure(
                    conn, opts={"version_table": VERSION_TABLE}
                ).get_current_revision()
                scripts = ScriptDirectory.from_config(alembic_config())
                if current is not None and current not in {script.revision for script in scripts.walk_revisions()}:
                    raise ConveyorError(
                        f"metadata store {self!r} has schema revision {current}, newer than this "
                        "Conveyor knows: upgrade Conveyor"
                    )
                command.upgrade(alembic_config(conn), "head")
                conn.commit()

    @contextlib.contextmanager
    def translate_errors(self) -> Iterator[None]:
        """Turn driver errors into Conveyor's, keeping SQL out of the message."""
        try:
            yield
        except exc.IntegrityError as error:
            raise Conflict(f"conflicting write to the metadata store: {error.orig.__class__.__name__}") from error
        except (exc.OperationalError, exc.InterfaceError) as error:
            if "locked" in str(error.orig):
                raise Unavailable("metadata store is busy (database is locked); retry") from error
            raise Unavailable(f"metadata store {self!r} is unreachable: {str(error.orig).strip().splitlines()[0]}") from error

    @contextlib.contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads, in one consistent transaction."""
        with self.translate_errors(), self.engine.connect().execution_options(**self.dialect.read_options) as conn:
            yield conn

    @contextlib.contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction: committed on success, rolled back on any error."""
        with self.translate_errors(), self.engine.connect().execution_options(conveyor_write=True) as conn:
            with conn.begin():
                yield conn

    def execute_many(
        self,
        conn: Connection,
        name: str,
        build: Callable[[Dialect], Executable],
        columns: tuple[str, ...],
        rows: list[tuple[Any, ...]],
    ) -> None:
        """Run a statement once per row through the driver's ``executemany``.

        ``build`` makes the statement (with a bind parameter per column) the first time
        ``name`` is used; it is compiled once per store, so the hot path of metric logging
        pays neither statement construction nor per-row parameter processing.
        """
        compiled = self._compiled.get(name)
        if compiled is None:
            compiled = self._compiled[name] = build(self.dialect).compile(dialect=self.engine.dialect)
        if compiled.positional:
            order = [columns.index(bind) for bind in compiled.positiontup or ()]
            params: list[Any] = rows if order == list(range(len(columns))) else [tuple(r[i] for i in order) for r in rows]
        else:
            params = [dict(zip(columns, row)) for row in rows]
        conn.exec_driver_sql(str(compiled), params)

    def insert_many(self, conn: Connection, table: Table, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        """Plain INSERT of tuples in ``columns`` order (see ``execute_many``)."""
        self.execute_many(
            conn, f"insert {table.name} {columns}",
            lambda _dialect: table.insert().values({name: bindparam(name) for name in columns}), columns, rows,
        )

    def dispose(self) -> None:
        """Close pooled connections (call after fork, or when done)."""
        self.engine.dispose()
