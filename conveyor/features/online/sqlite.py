"""The embedded online store: one SQLite file in WAL mode.

Each online table is a ``WITHOUT ROWID`` table keyed by ``__key`` (so a lookup is one
B-tree descent) named ``ol:<table>``; each (table, job) stages into its own table
``stage:<table>:<job>`` of the same layout. ``commit`` is one transaction that upserts
the staging table into the live one under the event-time guard and drops it, so a killed
process leaves either all of it or none. Every thread gets its own connection: WAL lets
readers go on, on the last committed state, while a materialisation writes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from conveyor.errors import Conflict
from conveyor.features.online.base import (
    KEY_COLUMN,
    TS_COLUMN,
    OnlineTable,
    batch_columns,
)

_SQL_TYPES = {"int64": "INTEGER", "int32": "INTEGER", "float64": "REAL", "float32": "REAL",
              "string": "TEXT", "bool": "INTEGER", "timestamp": "INTEGER"}
_dumps = json.JSONEncoder(separators=(",", ":")).encode


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced, so ``close`` reaches every thread's one."""


@dataclass
class _Plan:
    """The SQL of one online table, built once so that a read formats no string."""

    table: OnlineTable
    live: str
    values: tuple[str, ...]  # quoted __ts, "f1", ...
    read_one: str
    read_many: str
    bools: tuple[int, ...]  # positions of bool values in a read tuple (ts is 0)

    def fix(self, row: tuple) -> tuple:
        """SQLite stores bools as 0/1: turn them back into bools."""
        values = list(row)
        for i in self.bools:
            if values[i] is not None:
                values[i] = bool(values[i])
        return tuple(values)

    @property
    def columns(self) -> str:
        return ", ".join((KEY_COLUMN, *self.values))

    def stage_name(self, job: str) -> str:
        return _quote(f"stage:{self.table.name}:{job}")

    def layout(self, name: str) -> str:
        features = "".join(f", {_quote(f)} {_SQL_TYPES[dtype]}" for f, dtype in self.table.features)
        return (f"CREATE TABLE IF NOT EXISTS {name} ({KEY_COLUMN} TEXT PRIMARY KEY, "
                f"{TS_COLUMN} INTEGER NOT NULL{features}) WITHOUT ROWID")

    def upsert(self, target: str, source: str) -> str:
        """Rows from ``source`` into ``target``, each replacing a row of its key only if not older."""
        updates = ", ".join(f"{c} = excluded.{c}" for c in self.values)
        return (f"INSERT INTO {target} AS t ({self.columns}) {source} "
                f"ON CONFLICT({KEY_COLUMN}) DO UPDATE SET {updates} WHERE excluded.{TS_COLUMN} >= t.{TS_COLUMN}")


class SqliteOnlineStore:
    """An ``OnlineStore`` in one SQLite file; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._connections: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._plans: dict[str, _Plan] = {}
        self._connection()

    def _connection(self) -> sqlite3.Connection:
        try:
            return self._local.connection
        except AttributeError:
            pass
        connection = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False,
                                     cached_statements=512, factory=_Connection)
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = FULL")  # a returned stage or commit survives power loss
        # Reads must not pay a system call per page: map the file, and keep WAL pages cached.
        connection.execute("PRAGMA mmap_size = 1073741824")
        connection.execute("PRAGMA cache_size = -32768")
        self._local.connection = connection
        with self._lock:
            self._connections.add(connection)
        return connection

    def _plan(self, table: OnlineTable) -> _Plan:
        plan = self._plans.get(table.name)
        if plan is not None and (plan.table is table or plan.table == table):
            return plan
        live = _quote(f"ol:{table.name}")
        values = (TS_COLUMN, *(_quote(name) for name, _ in table.features))
        bools = tuple(i + 1 for i, (_, dtype) in enumerate(table.features) if dtype == "bool")
        # Many keys: one JSON array parameter; CROSS JOIN keeps it the outer loop, so each key
        # is one primary-key lookup, and its array index says where the row goes.
        read_many = (f"SELECT j.key, {', '.join(f't.{v}' for v in values)} FROM json_each(?) AS j "
                     f"CROSS JOIN {live} AS t ON t.{KEY_COLUMN} = j.value")
        plan = _Plan(table=table, live=live, values=values, bools=bools, read_many=read_many,
                     read_one=f"SELECT {', '.join(values)} FROM {live} WHERE {KEY_COLUMN} = ?")
        self._plans[table.name] = plan
        return plan

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        connection = self._connection()
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield connection
            connection.execute("COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise

    def stage(self, table: OnlineTable, job: str, batch: pa.RecordBatch) -> None:
        plan = self._plan(table)
        rows = zip(*batch_columns(table, batch), strict=True)
        stage = plan.stage_name(job)
        marks = ", ".join("?" * (len(table.features) + 2))
        with self._transaction() as connection:
            connection.execute(plan.layout(stage))
            connection.executemany(plan.upsert(stage, f"VALUES ({marks})"), rows)

    def commit(self, table: OnlineTable, job: str) -> int:
        plan = self._plan(table)
        stage = plan.stage_name(job)
        with self._transaction() as connection:
            connection.execute(plan.layout(plan.live))
            self._check_layout(connection, plan)
            if not _exists(connection, f"stage:{table.name}:{job}"):
                return 0
            applied = connection.execute(plan.upsert(plan.live, f"SELECT {plan.columns} FROM {stage} WHERE true"))
            connection.execute(f"DROP TABLE {stage}")
            return applied.rowcount

    def _check_layout(self, connection: sqlite3.Connection, plan: _Plan) -> None:
        found = [row[1] for row in connection.execute(f"PRAGMA table_info({plan.live})")]
        expected = [KEY_COLUMN, TS_COLUMN, *(name for name, _ in plan.table.features)]
        if found != expected:
            raise Conflict(f"online table {plan.table.name} exists in {self.path} with columns {found}, "
                           f"not {expected}", field="features")

    def discard(self, table: OnlineTable, job: str) -> None:
        with self._transaction() as connection:
            connection.execute(f"DROP TABLE IF EXISTS {self._plan(table).stage_name(job)}")

    def read(self, table: OnlineTable, keys: Sequence[str]) -> list[tuple | None]:
        plan = self._plan(table)
        connection = self._connection()
        try:
            if len(keys) == 1:
                row = connection.execute(plan.read_one, (keys[0],)).fetchone()
                return [plan.fix(row) if plan.bools and row else row]
            found: list[tuple | None] = [None] * len(keys)
            if keys:
                for row in connection.execute(plan.read_many, (_dumps(list(keys)),)):
                    found[row[0]] = plan.fix(row[1:]) if plan.bools else row[1:]
            return found
        except sqlite3.OperationalError as error:
            if _no_such_table(error):
                return [None] * len(keys)
            raise

    def count(self, table: OnlineTable) -> int:
        try:
            return self._connection().execute(f"SELECT count(*) FROM {self._plan(table).live}").fetchone()[0]
        except sqlite3.OperationalError as error:
            if _no_such_table(error):
                return 0
            raise

    def drop(self, table: OnlineTable) -> None:
        prefix = f"stage:{table.name}:"
        with self._transaction() as connection:
            stages = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                        "AND substr(name, 1, ?) = ?", (len(prefix), prefix)).fetchall()
            for (name,) in stages:
                connection.execute(f"DROP TABLE {_quote(name)}")
            connection.execute(f"DROP TABLE IF EXISTS {self._plan(table).live}")

    def close(self) -> None:
        with self._lock:
            for connection in list(self._connections):
                connection.close()
            self._connections.clear()
        self._local = threading.local()


def _exists(connection: sqlite3.Connection, name: str) -> bool:
    return connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() \
        is not None


def _no_such_table(error: sqlite3.OperationalError) -> bool:
    return str(error).startswith("no such table")

