"""Where feature rows come from: files, a DuckDB query, or a PostgreSQL table.

Each source turns into one DuckDB ``FROM`` expression, so the offline join, the
materialisation and the checks on ``apply`` read every kind of source the same way.
"""

from __future__ import annotations

import glob
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import duckdb

from conveyor.errors import Unavailable, ValidationError

_FORMATS = ("parquet", "csv")
_TABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def sql_string(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def quote(identifier: str) -> str:
    """A quoted SQL identifier."""
    return '"' + identifier.replace('"', '""') + '"'


@dataclass
class SourceContext:
    """What reading a source needs: the workspace folder, the DuckDB connection, the PostgreSQL URL."""

    root: Path
    con: duckdb.DuckDBPyConnection
    postgres_url: str | None = None


class Source:
    """A table of feature rows that DuckDB can scan."""

    kind: ClassVar[str]

    def to_spec(self) -> dict[str, Any]:
        """The JSON-ready description stored with the view."""
        raise NotImplementedError

    def from_sql(self, context: SourceContext, schema_only: bool = False) -> str:
        """A DuckDB ``FROM`` expression yielding the source's rows (none when ``schema_only``)."""
        raise NotImplementedError

    def addressed_sql(self, context: SourceContext) -> str | None:
        """Like ``from_sql`` plus a ``__rid`` column naming each row, stable across scans in one
        query; None when the source cannot address its rows. A join can then sort only keys,
        times and row ids, and fetch the feature values of the matched rows afterwards."""
        return None


@dataclass(frozen=True)
class FileSource(Source):
    """Parquet or CSV files matching a glob; relative paths start at the workspace folder."""

    kind: ClassVar[str] = "file"
    path: str
    format: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.path, str) or not self.path:
            raise ValidationError("FileSource: path must be a file path or glob", field="source.path")
        fmt = self.format or ("csv" if self.path.lower().rstrip("*").endswith((".csv", ".csv.gz")) else "parquet")
        if fmt not in _FORMATS:
            raise ValidationError(f"FileSource {self.path!r}: format {fmt!r} is not parquet or csv", field="source.format")
        object.__setattr__(self, "format", fmt)

    def to_spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path, "format": self.format}

    def resolved(self, root: Path) -> str:
        """The glob with a relative path anchored at the workspace folder."""
        path = Path(self.path).expanduser()
        return str(path if path.is_absolute() else root / path)

    def from_sql(self, context: SourceContext, schema_only: bool = False) -> str:
        reader = "read_parquet" if self.format == "parquet" else "read_csv"
        scan = f"{reader}({sql_string(self.resolved(context.root))}, union_by_name = true)"
        return f"(SELECT * FROM {scan} LIMIT 0)" if schema_only else scan

    def addressed_sql(self, context: SourceContext) -> str | None:
        if self.format != "parquet":
            return None
        files = sorted(glob.glob(self.resolved(context.root), recursive=True))
        if not files:
            return None
        listed = ", ".join(sql_string(f) for f in files)
        scan = f"read_parquet([{listed}], union_by_name = true, file_row_number = true)"
        return f"(SELECT *, (file_index::BIGINT << 40) + file_row_number AS __rid FROM {scan})"


@dataclass(frozen=True)
class SqlSource(Source):
    """Any DuckDB query, e.g. a join of Parquet files; relative file paths start at the workspace folder."""

    kind: ClassVar[str] = "sql"
    query: str

    def __post_init__(self) -> None:
        if not isinstance(self.query, str) or not self.query.strip():
            raise ValidationError("SqlSource: query must be a non-empty SQL query", field="source.query")

    def to_spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "query": self.query}

    def from_sql(self, context: SourceContext, schema_only: bool = False) -> str:
        return f"(SELECT * FROM ({self.query}) LIMIT 0)" if schema_only else f"({self.query})"


@dataclass(frozen=True)
class PostgresSource(Source):
    """A PostgreSQL table or query, read as Arrow through ADBC.

    ``url`` defaults to ``features.postgres_url``, else the metadata store when it is PostgreSQL.
    """

    kind: ClassVar[str] = "postgres"
    table: str | None = None
    query: str | None = None
    url: str | None = None

    def __post_init__(self) -> None:
        if (self.table is None) == (self.query is None):
            raise ValidationError("PostgresSource: give exactly one of table or query", field="source.table")
        if self.table is not None and not _TABLE.match(self.table):
            raise ValidationError(f"PostgresSource: table {self.table!r} must be name or schema.name",
                                  field="source.table")

    def to_spec(self) -> dict[str, Any]:
        return {"kind": self.kind, "table": self.table, "query": self.query, "url": self.url}

    def from_sql(self, context: SourceContext, schema_only: bool = False) -> str:
        url = self.url or context.postgres_url
        if not url:
            raise ValidationError("PostgresSource needs a url, features.postgres_url, or a PostgreSQL metadata.url",
                                  field="source.url")
        query = self.query or f"SELECT * FROM {'.'.join(quote(part) for part in self.table.split('.'))}"  # type: ignore[union-attr]
        if schema_only:
            query = f"SELECT * FROM ({query}) AS q LIMIT 0"
        table = _read_postgres(url, query)
        name = f"__pg_{abs(hash((url, query))):x}"
        context.con.register(name, table)
        return name


def _libpq_url(url: str) -> str:
    """A libpq URI from a SQLAlchemy one (``postgresql+psycopg://`` -> ``postgresql://``)."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def _read_postgres(url: str, query: str) -> Any:
    """The query's rows as an Arrow table."""
    import adbc_driver_postgresql.dbapi as pg

    try:
        with pg.connect(_libpq_url(url)) as conn, conn.cursor() as cursor:
            cursor.execute(query)
            return cursor.fetch_arrow_table()
    except pg.OperationalError as error:
        raise Unavailable(f"PostgreSQL source unreachable: {str(error).splitlines()[0]}") from error
    except pg.ProgrammingError as error:
        raise ValidationError(f"PostgresSource query failed: {str(error).splitlines()[0]}", field="source.query") from error


def source_from_spec(spec: dict[str, Any]) -> Source:
    """Rebuild a stored source."""
    fields = {k: v for k, v in spec.items() if k != "kind"}
    kinds: dict[str, type[Source]] = {"file": FileSource, "sql": SqlSource, "postgres": PostgresSource}
    return kinds[spec["kind"]](**fields)
