"""Monitoring results as time series in the metadata store: every check writes points
(check, column, statistic, value, threshold, status, window), so any series can be
queried, plotted and alerted on, and survives restarts."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd
from sqlalchemy import and_, select

from conveyor.core.db import MetadataStore
from conveyor.core.db.base import now_ms
from conveyor.errors import NotFound, ValidationError
from conveyor.governance.identity import ActingActor, Actor
from conveyor.governance.permissions import Action, requires
from conveyor.monitoring.tables import monitor_results, monitor_runs
from conveyor.monitoring.windows import Window, iso

STATUSES = ("ok", "drift", "warn", "fail", "insufficient", "info")
HISTORY_COLUMNS = ["window_start", "window_end", "model", "version", "check", "column", "statistic",
                   "value", "threshold", "status", "rows"]


@dataclass(frozen=True)
class Point:
    """One value of one series in one window."""

    check: str
    statistic: str
    value: float | None
    status: str
    column: str = ""
    threshold: float | None = None
    rows: int | None = None

    @property
    def metric(self) -> str:
        """``check.statistic``: how users name the series."""
        return f"{self.check}.{self.statistic}"


@dataclass(frozen=True)
class MonitorRun:
    """One monitoring pass over one window of one model version."""

    id: str
    model: str
    version: int | None
    window: Window
    summary: dict[str, Any]
    detail_sha256: str | None
    points: list[Point]


def split_metric(metric: str) -> tuple[str, str]:
    """``check.statistic`` as its two parts."""
    check, dot, statistic = metric.partition(".")
    if not dot or not check or not statistic:
        raise ValidationError(f"metric {metric!r}: expected CHECK.STATISTIC, e.g. model_quality.roc_auc", field="metric")
    return check, statistic


class ResultStore:
    """Writes monitoring runs and reads series back."""

    actor = ActingActor()

    def __init__(self, store: MetadataStore, actor: Actor) -> None:
        self.store = store
        self.actor = actor

    @requires(Action.MONITORING_WRITE)
    def save(self, model: str, version: int | None, window: Window, points: Sequence[Point],
             summary: dict[str, Any], detail_sha256: str | None = None) -> MonitorRun:
        """Store a run and its points in one transaction."""
        run_id, created = uuid.uuid4().hex, now_ms()
        with self.store.write() as conn:
            conn.execute(monitor_runs.insert().values(
                id=run_id, model=model, version=version, window_start=window.start, window_end=window.end,
                summary=summary, detail_sha256=detail_sha256, created_at=created))
            if points:
                conn.execute(monitor_results.insert(), [
                    {**asdict(point), "run_id": run_id, "model": model, "version": version,
                     "window_start": window.start, "window_end": window.end, "created_at": created}
                    for point in points
                ])
        return MonitorRun(run_id, model, version, window, summary, detail_sha256, list(points))

    @requires(Action.MONITORING_READ)
    def history(self, model: str, metric: str | None = None, column: str | None = None,
                since: int | None = None, until: int | None = None, limit: int = 10_000) -> pd.DataFrame:
        """Points of a model's series in window order; where a window of a version was
        monitored more than once (labels arrived later), the newest point wins (two versions
        served in one window keep a point each)."""
        query = select(monitor_results).where(monitor_results.c.model == model)
        if metric:
            check, statistic = split_metric(metric)
            query = query.where(and_(monitor_results.c.check == check, monitor_results.c.statistic == statistic))
        if column is not None:
            query = query.where(monitor_results.c.column == column)
        if since is not None:
            query = query.where(monitor_results.c.window_end > since)
        if until is not None:
            query = query.where(monitor_results.c.window_start < until)
        query = query.order_by(monitor_results.c.window_end, monitor_results.c.id)
        with self.store.read() as conn:
            rows = [dict(row._mapping) for row in conn.execute(query)]
        latest: dict[tuple[Any, ...], dict[str, Any]] = {}
        for row in rows:
            latest[(row["version"], row["check"], row["statistic"], row["column"], row["window_start"],
                    row["window_end"])] = row
        frame = pd.DataFrame(list(latest.values())[-limit:], columns=HISTORY_COLUMNS)
        for name in ("window_start", "window_end"):
            frame[name] = pd.to_datetime(frame[name], unit="ms", utc=True)
        return frame.sort_values(["window_end", "check", "statistic", "column"], ignore_index=True)

    @requires(Action.MONITORING_READ)
    def points(self, run_id: str) -> list[Point]:
        """The points one run wrote."""
        table = monitor_results.c
        query = select(table.check, table.statistic, table.value, table.status, table.column, table.threshold,
                       table.rows).where(table.run_id == run_id).order_by(table.id)
        with self.store.read() as conn:
            return [Point(*row) for row in conn.execute(query)]

    @requires(Action.MONITORING_READ)
    def runs(self, model: str, limit: int = 50) -> list[dict[str, Any]]:
        """The newest monitoring runs of a model."""
        query = (select(monitor_runs).where(monitor_runs.c.model == model)
                 .order_by(monitor_runs.c.created_at.desc()).limit(limit))
        with self.store.read() as conn:
            return [{**dict(row._mapping), "window": f"{iso(row.window_start)} .. {iso(row.window_end)}"}
                    for row in conn.execute(query)]

    @requires(Action.MONITORING_READ)
    def latest_run(self, model: str) -> dict[str, Any]:
        """The newest run of a model, by window end.

        Raises:
            NotFound: the model was never monitored.
        """
        query = (select(monitor_runs).where(monitor_runs.c.model == model)
                 .order_by(monitor_runs.c.window_end.desc(), monitor_runs.c.created_at.desc()).limit(1))
        with self.store.read() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"model '{model}' has no monitoring results yet: run `conveyor monitor run {model}`", field="model")
        return dict(row._mapping)
