"""Materialisation as records: each run of a view is a row (running, then committed, failed
or interrupted) with its window, counts, freshness and feature statistics.

The watermark of incremental runs is the end of the last committed window of the same
view version; a run killed midway never committed, so the next one starts from the same
watermark and nothing is skipped.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import func, select, update

from conveyor.core.db.base import now_ms
from conveyor.errors import NotFound, ValidationError
from conveyor.features.materialize import materialize_view, online_table
from conveyor.features.schemas import (
    FeatureStatistics,
    Materialization,
    MaterializationStatus,
)
from conveyor.features.tables import feature_materializations as runs
from conveyor.features.tables import feature_statistics
from conveyor.governance.permissions import Action, requires

if TYPE_CHECKING:
    from conveyor.features.store import FeatureStore

Progress = Callable[[str, int, int], None]
When = datetime | pd.Timestamp | str | None


def to_micros(value: When, field: str) -> int | None:
    """A time as epoch microseconds (naive times are UTC)."""
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as error:
        raise ValidationError(f"{field}: {value!r} is not a time", field=field) from error
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.value // 1000)


class MaterializationOperations:
    """The materialisation half of ``FeatureStore``."""

    @requires(Action.FEATURES_MATERIALIZE)
    def materialize(self: FeatureStore, start: When = None, end: When = None, views: Sequence[str] | None = None,
                    progress: Progress | None = None) -> list[Materialization]:
        """Load the newest value per entity with a timestamp in ``(start, end]`` (default: all of
        history up to now) of each view (default: every applied view) into the online store."""
        start_us, end_us = to_micros(start, "start"), to_micros(end, "end") or time.time_ns() // 1000
        if start_us is not None and start_us >= end_us:
            raise ValidationError("start must be before end", field="start")
        return [self._materialize_one(name, start_us, end_us, progress) for name in self._view_names(views)]

    @requires(Action.FEATURES_MATERIALIZE)
    def materialize_incremental(self: FeatureStore, end: When = None, views: Sequence[str] | None = None,
                                progress: Progress | None = None) -> list[Materialization]:
        """Like ``materialize``, each view starting where its last committed run ended."""
        end_us = to_micros(end, "end") or time.time_ns() // 1000
        done = []
        for name in self._view_names(views):
            version = self.catalog.get("feature_view", name).version
            watermark = self.watermark(name, version)
            if watermark is not None and watermark >= end_us:
                continue
            done.append(self._materialize_one(name, watermark, end_us, progress))
        return done

    def _view_names(self: FeatureStore, views: Sequence[str] | None) -> list[str]:
        applied = [view.name for _, view in self.list_definitions("feature_view")]
        if views is None:
            return applied
        for name in views:
            if name not in applied:
                raise NotFound(f"feature view {name!r} is not applied (conveyor features apply)", field="views")
        return list(views)

    @requires(Action.FEATURES_READ)
    def watermark(self: FeatureStore, view: str, version: int) -> int | None:
        """End (epoch µs) of the last committed window of a view version; None before the first."""
        query = select(func.max(runs.c.end_us)).where(
            runs.c.view == view, runs.c.view_version == version, runs.c.status == MaterializationStatus.COMMITTED.value
        )
        with self.workspace.metadata.read() as conn:
            return conn.execute(query).scalar()

    def _newest_online(self: FeatureStore, view: str, version: int) -> int | None:
        """Event time of the newest row already online for a view version (freshness carries over
        a run that found nothing new)."""
        query = select(func.max(runs.c.newest_event_us)).where(
            runs.c.view == view, runs.c.view_version == version, runs.c.status == MaterializationStatus.COMMITTED.value
        )
        with self.workspace.metadata.read() as conn:
            return conn.execute(query).scalar()

    def _materialize_one(self: FeatureStore, name: str, start_us: int | None, end_us: int,
                         progress: Progress | None) -> Materialization:
        stored = self.catalog.get("feature_view", name)
        view = self.get_feature_view(name, stored.version)
        table = online_table(view, stored.version)
        keys = tuple(k for e in view.entity_names for k in self.get_entity(e).join_keys)
        job = uuid.uuid4().hex
        with self.workspace.metadata.write() as conn:
            stale = conn.execute(select(runs.c.id).where(
                runs.c.view == name, runs.c.status == MaterializationStatus.RUNNING.value)).scalars().all()
            for old in stale:
                self.online.discard(table, old)
            if stale:
                conn.execute(update(runs).where(runs.c.id.in_(stale)).values(
                    status=MaterializationStatus.INTERRUPTED.value, finished_at=now_ms()))
            conn.execute(runs.insert().values(
                id=job, view=name, view_version=stored.version, start_us=start_us, end_us=end_us,
                status=MaterializationStatus.RUNNING.value, created_by=self.workspace.actor.name, started_at=now_ms(),
            ))
        report = (lambda done, total: progress(name, done, total)) if progress else (lambda done, total: None)
        try:
            result = materialize_view(self.duckdb, view, keys, self.online, table, job, (start_us, end_us), report)
        except BaseException:
            with self.workspace.metadata.write() as conn:
                conn.execute(update(runs).where(runs.c.id == job).values(
                    status=MaterializationStatus.FAILED.value, finished_at=now_ms()))
            raise
        newest = result.newest_event_us
        if newest is None:
            newest = self._newest_online(name, stored.version)
        with self.workspace.metadata.write() as conn:
            conn.execute(update(runs).where(runs.c.id == job).values(
                status=MaterializationStatus.COMMITTED.value, rows_read=result.rows_read,
                rows_written=result.rows_written, newest_event_us=newest, finished_at=now_ms(),
            ))
            if result.statistics:
                conn.execute(feature_statistics.insert(), [
                    {"materialization_id": job, "feature": feature, "stats": _plain(stats)}
                    for feature, stats in result.statistics.items()
                ])
        return self.get_materialization(job)

    @requires(Action.FEATURES_READ)
    def get_materialization(self: FeatureStore, materialization_id: str) -> Materialization:
        """One materialisation by id."""
        with self.workspace.metadata.read() as conn:
            row = conn.execute(select(runs).where(runs.c.id == materialization_id)).first()
        if row is None:
            raise NotFound(f"no materialisation {materialization_id!r}", field="materialization")
        return Materialization.model_validate(row._asdict())

    @requires(Action.FEATURES_READ)
    def list_materializations(self: FeatureStore, view: str | None = None, limit: int = 50) -> list[Materialization]:
        """Materialisations, newest first, optionally of one view."""
        query = select(runs).order_by(runs.c.started_at.desc()).limit(limit)
        if view is not None:
            query = query.where(runs.c.view == view)
        with self.workspace.metadata.read() as conn:
            return [Materialization.model_validate(row._asdict()) for row in conn.execute(query)]

    @requires(Action.FEATURES_READ)
    def last_materialization(self: FeatureStore, view: str) -> Materialization | None:
        """The view's last committed materialisation, if any."""
        query = select(runs).where(runs.c.view == view, runs.c.status == MaterializationStatus.COMMITTED.value) \
            .order_by(runs.c.finished_at.desc()).limit(1)
        with self.workspace.metadata.read() as conn:
            row = conn.execute(query).first()
        return Materialization.model_validate(row._asdict()) if row else None

    @requires(Action.FEATURES_READ)
    def feature_statistics(self: FeatureStore, view: str) -> list[FeatureStatistics]:
        """Statistics recorded by the view's last committed materialisation (the monitoring reference)."""
        last = self.last_materialization(view)
        if last is None:
            return []
        with self.workspace.metadata.read() as conn:
            rows = conn.execute(select(feature_statistics).where(feature_statistics.c.materialization_id == last.id)).all()
        return [FeatureStatistics.model_validate(row._asdict()) for row in rows]


def _plain(value: Any) -> Any:
    """JSON-ready: NaN and infinities become None, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if hasattr(value, "item"):
        return _plain(value.item())
    return value
