"""The DuckDB side of the feature store: one configured connection, and each view's rows
as a SQL expression (source, then the view's optional transform)."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import duckdb

from conveyor.core.config import Settings
from conveyor.errors import ValidationError
from conveyor.features.definitions import FeatureView
from conveyor.features.sources import SourceContext, quote, sql_string


def connect(settings: Settings) -> SourceContext:
    """A DuckDB connection with the workspace's memory limit and spill folder, in UTC."""
    offline = settings.features.offline
    spill = Path(offline.temp_directory or settings.state_dir / "tmp")
    spill.mkdir(parents=True, exist_ok=True)
    config = {"memory_limit": offline.memory_limit.replace(" ", ""), "temp_directory": str(spill)}
    if offline.threads:
        config["threads"] = str(offline.threads)
    con = duckdb.connect(config=config)
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET file_search_path = {sql_string(str(settings.workspace))}")
    postgres = settings.features.postgres_url
    if postgres is None and settings.metadata_url.startswith("postgresql"):
        postgres = settings.metadata_url
    return SourceContext(settings.workspace, con, postgres)


def view_sql(view: FeatureView, context: SourceContext, schema_only: bool = False) -> str:
    """A ``FROM`` expression of the view's rows: its source, through its transform if it has one."""
    source = view.source.from_sql(context, schema_only)
    if not view.transform:
        return source
    return f"(WITH source AS (SELECT * FROM {source}) SELECT * FROM ({view.transform}))"


def describe(view: FeatureView, context: SourceContext) -> dict[str, str]:
    """Column name -> DuckDB type of the view's rows, read without scanning data.

    Raises:
        ValidationError: the source cannot be read or the transform does not run; names the view.
    """
    try:
        rows = context.con.sql(f"DESCRIBE SELECT * FROM {view_sql(view, context, schema_only=True)}").fetchall()
    except duckdb.IOException as error:
        raise ValidationError(f"{view.label}: source cannot be read: {_first_line(error)}",
                              field=f"{view.name}.source") from error
    except duckdb.Error as error:
        where = "transform" if view.transform else "source"
        raise ValidationError(f"{view.label}: {where} fails: {_first_line(error)}", field=f"{view.name}.{where}") from error
    return {name: kind for name, kind, *_ in rows}


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()[0]
    return text.replace(os.getcwd() + os.sep, "")


def timestamp_expr(column: str, duckdb_type: str) -> str:
    """The column as a naive UTC TIMESTAMP (microseconds), whatever timestamp type it has.

    Nanoseconds round up, so a row 1 ns after an entity row's time never joins it.
    """
    kind = duckdb_type.upper()
    if kind == "TIMESTAMP":
        return quote(column)
    if kind == "TIMESTAMP_NS":
        ns = f"epoch_ns({quote(column)})"
        return f"make_timestamp({ns} // 1000 + CASE WHEN {ns} % 1000 > 0 THEN 1 ELSE 0 END)"
    return f"CAST({quote(column)} AS TIMESTAMP)"


def ttl_micros(view: FeatureView) -> int | None:
    """The view's TTL in whole microseconds (no float rounding at the edge)."""
    return None if view.ttl is None else view.ttl // timedelta(microseconds=1)
