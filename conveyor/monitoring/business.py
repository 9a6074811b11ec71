"""Business metrics: users' SQL over a window of the prediction log, run on DuckDB.

A definition reads the views ``predictions``, ``feedback`` and ``labelled`` (see
``predictions.py``) and returns one row with one numeric column, for example the
approval rate ``SELECT avg((score < 0.2)::INT) FROM predictions`` or the expected
loss ``SELECT sum(score * 0.45 * loan_amnt) FROM predictions``. A definition is
checked when it is saved, against empty views with the model's columns, so a typo
fails then, naming the metric, and not at 3 a.m. in a monitoring run.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import duckdb
from sqlalchemy import delete, select

from conveyor.core.db import MetadataStore
from conveyor.core.db.base import now_ms
from conveyor.errors import NotFound, ValidationError
from conveyor.governance.identity import ActingActor, Actor
from conveyor.governance.permissions import Action, requires
from conveyor.monitoring.predictions import empty_views
from conveyor.monitoring.results import Point
from conveyor.monitoring.sketch import NumericSketch, Profile
from conveyor.monitoring.tables import business_metrics

CHECK = "business"
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,127}$")
log = logging.getLogger(__name__)
NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
           "FLOAT", "DOUBLE", "DECIMAL", "BOOLEAN")


@dataclass(frozen=True)
class BusinessMetric:
    """A named SQL definition over one model's predictions."""

    name: str
    model: str
    sql: str
    description: str = ""


def _input_types(inputs: Profile | None) -> dict[str, str]:
    if inputs is None:
        return {}
    return {n: "DOUBLE" if isinstance(s, NumericSketch) else "VARCHAR" for n, s in inputs.columns.items()}


def check_definition(metric: BusinessMetric, inputs: Profile | None) -> None:
    """Compile the SQL against empty views of the model's columns.

    Raises:
        ValidationError: a bad name, SQL that does not compile, or a result that is not
            one numeric column, naming the metric.
    """
    if not NAME.match(metric.name):
        raise ValidationError(f"business metric name {metric.name!r}: letters, digits and _, starting with a letter",
                              field="name")
    con = duckdb.connect()
    try:
        empty_views(con, _input_types(inputs))
        try:
            described = con.execute(f"DESCRIBE {metric.sql.strip().rstrip(';')}").fetchall()
        except duckdb.Error as error:
            first = str(error).splitlines()[0]
            raise ValidationError(f"business metric '{metric.name}': {first}", field="sql") from error
    finally:
        con.close()
    if len(described) != 1 or not str(described[0][1]).upper().startswith(NUMERIC):
        columns = ", ".join(f"{row[0]} {row[1]}" for row in described)
        raise ValidationError(f"business metric '{metric.name}': the query must return one numeric column, "
                              f"it returns {columns}", field="sql")


class BusinessMetrics:
    """Definitions in the metadata store, and running them on a window."""

    actor = ActingActor()

    def __init__(self, store: MetadataStore, actor: Actor) -> None:
        self.store = store
        self.actor = actor

    @requires(Action.MONITORING_WRITE)
    def define(self, metric: BusinessMetric, inputs: Profile | None) -> BusinessMetric:
        """Check and store (or replace) a definition."""
        check_definition(metric, inputs)
        row = {"name": metric.name, "model": metric.model, "sql": metric.sql, "description": metric.description,
               "created_at": now_ms(), "updated_at": now_ms()}
        upsert = self.store.dialect.insert(business_metrics).values(**row)
        with self.store.write() as conn:
            conn.execute(upsert.on_conflict_do_update(
                index_elements=[business_metrics.c.name],
                set_={k: v for k, v in row.items() if k != "created_at"}))
        return metric

    @requires(Action.MONITORING_READ)
    def list(self, model: str | None = None) -> list[BusinessMetric]:
        """Definitions, of one model or all."""
        query = select(business_metrics).order_by(business_metrics.c.name)
        if model is not None:
            query = query.where(business_metrics.c.model == model)
        with self.store.read() as conn:
            return [BusinessMetric(r.name, r.model, r.sql, r.description) for r in conn.execute(query)]

    @requires(Action.MONITORING_WRITE)
    def delete(self, name: str) -> None:
        """Remove a definition.

        Raises:
            NotFound: no such metric.
        """
        with self.store.write() as conn:
            if not conn.execute(delete(business_metrics).where(business_metrics.c.name == name)).rowcount:
                raise NotFound(f"no business metric '{name}'", field="name")

    @requires(Action.MONITORING_WRITE)
    def run(self, con: duckdb.DuckDBPyConnection, model: str, rows: int) -> list[Point]:
        """Each of the model's metrics on the window's views; a query failing on real
        data is a ``fail`` point, not a failed monitoring run."""
        points = []
        for metric in self.list(model):
            try:
                value = next(iter(con.execute(metric.sql.strip().rstrip(";")).fetchall()), None)
                number = None if value is None or value[0] is None else float(value[0])
                points.append(Point(CHECK, metric.name, number, "ok" if number is not None else "insufficient", rows=rows))
            except duckdb.Error as error:
                log.warning("business metric %s failed on %s's window: %s", metric.name, model, error)
                points.append(Point(CHECK, metric.name, None, "fail", rows=rows))
        return points
