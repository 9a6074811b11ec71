"""Reading runs back: one run, search, metric history, comparison."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from conveyor.errors import ValidationError
from conveyor.governance.permissions import Action, requires
from conveyor.tracking.chunks import unpack
from conveyor.tracking.filters import parse_filter, parse_order_by
from conveyor.tracking.schemas import ArtifactInfo, DatasetInput, RunData, RunInfo
from conveyor.tracking.search import build_query
from conveyor.tracking.tables import (
    artifacts,
    datasets,
    latest_metrics,
    metric_chunks,
    params,
    run_inputs,
    runs,
    tags,
)

if TYPE_CHECKING:
    from conveyor.core.db import MetadataStore

RUN_COLUMNS = ["run_id", "experiment_id", "run_name", "status", "start_time", "end_time", "user", "parent_id"]


def _value(value: float | None) -> float:
    return float("nan") if value is None else value


class RunQueries:
    """The read side of ``TrackingService``."""

    store: MetadataStore
    if TYPE_CHECKING:  # provided by TrackingService

        def get_run_info(self, run_id: str) -> RunInfo: ...
        def get_experiment(self, name_or_id: str) -> Any: ...
        def reap_dead_runs(self) -> list[str]: ...

    @requires(Action.EXPERIMENTS_READ)
    def get_run(self, run_id: str) -> RunData:
        """A run with its params, latest metrics, tags, artifacts and input datasets."""
        self.reap_dead_runs()
        info = self.get_run_info(run_id)
        with self.store.read() as conn:
            run_params = dict(conn.execute(select(params.c.key, params.c.value).where(params.c.run_id == run_id)).all())
            run_tags = dict(conn.execute(select(tags.c.key, tags.c.value).where(tags.c.run_id == run_id)).all())
            run_metrics = {
                key: _value(value)
                for key, value in conn.execute(
                    select(latest_metrics.c.key, latest_metrics.c.value).where(latest_metrics.c.run_id == run_id)
                ).all()
            }
            files = conn.execute(
                select(artifacts.c.path, artifacts.c.sha256, artifacts.c.size, artifacts.c.kind)
                .where(artifacts.c.run_id == run_id)
                .order_by(artifacts.c.path)
            ).all()
            inputs = conn.execute(
                select(datasets, run_inputs.c.context)
                .join(run_inputs, run_inputs.c.dataset_id == datasets.c.id)
                .where(run_inputs.c.run_id == run_id)
            ).all()
        return RunData(
            info=info,
            params=run_params,
            metrics=run_metrics,
            tags=run_tags,
            artifacts=[ArtifactInfo(**row._mapping) for row in files],
            inputs=[
                DatasetInput(
                    id=row.id, name=row.name, digest=row.digest, source=row.source,
                    data_schema=row.schema, rows=row.rows, context=row.context,
                )
                for row in inputs
            ],
        )

    @requires(Action.EXPERIMENTS_READ)
    def search_runs(
        self,
        experiments: str | Sequence[str] | None = None,
        filter: str | None = None,
        order_by: Sequence[str] | None = None,
        max_results: int = 1000,
        include_deleted: bool = False,
        offset: int = 0,
    ) -> pd.DataFrame:
        """Runs matching ``filter`` as a DataFrame: one row per run, columns
        ``run_id ... parent_id`` then ``metrics.*``, ``params.*``, ``tags.*``.
        ``offset`` skips that many matching runs: pages are ``offset, offset + max_results``.

        Raises:
            ValidationError: a malformed filter or order_by (the message gives the position).
            NotFound: an experiment does not exist.
        """
        if isinstance(max_results, bool) or not isinstance(max_results, int) or not 0 < max_results <= 1_000_000:
            raise ValidationError(f"max_results must be an integer in [1, 1000000], got {max_results!r}", field="max_results")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise ValidationError(f"offset must be a non-negative integer, got {offset!r}", field="offset")
        names = ["Default"] if experiments is None else [experiments] if isinstance(experiments, str) else list(experiments)
        experiment_ids = [self.get_experiment(name).id for name in names]
        query = build_query(experiment_ids, parse_filter(filter), parse_order_by(list(order_by or [])), include_deleted)
        self.reap_dead_runs()
        with self.store.read() as conn:
            run_ids = list(conn.execute(query.limit(max_results).offset(offset)).scalars())
            return self._frame(conn, run_ids)

    def _frame(self, conn: Any, run_ids: list[str]) -> pd.DataFrame:
        if not run_ids:
            return pd.DataFrame(columns=RUN_COLUMNS)
        info = {
            row.id: row
            for row in conn.execute(
                select(runs.c.id, runs.c.experiment_id, runs.c.name, runs.c.status, runs.c.start_time,
                       runs.c.end_time, runs.c.user, runs.c.parent_id).where(runs.c.id.in_(run_ids))
            )
        }
        columns: dict[str, dict[str, Any]] = defaultdict(dict)
        for prefix, table in (("metrics", latest_metrics), ("params", params), ("tags", tags)):
            for run_id, key, value in conn.execute(
                select(table.c.run_id, table.c.key, table.c.value).where(table.c.run_id.in_(run_ids))
            ):
                columns[f"{prefix}.{key}"][run_id] = _value(value) if prefix == "metrics" else value
        data: dict[str, Any] = {
            "run_id": run_ids,
            "experiment_id": [info[r].experiment_id for r in run_ids],
            "run_name": [info[r].name for r in run_ids],
            "status": [info[r].status for r in run_ids],
            "start_time": pd.to_datetime([info[r].start_time for r in run_ids], unit="ms", utc=True),
            "end_time": pd.to_datetime([info[r].end_time for r in run_ids], unit="ms", utc=True),
            "user": [info[r].user for r in run_ids],
            "parent_id": [info[r].parent_id for r in run_ids],
        }
        for name, values in sorted(columns.items()):
            missing = np.nan if name.startswith("metrics.") else None
            data[name] = [values.get(r, missing) for r in run_ids]
        return pd.DataFrame(data)

    @requires(Action.EXPERIMENTS_READ)
    def get_metric_history(self, run_id: str, key: str) -> pd.DataFrame:
        """Every logged value of a metric, ordered by step then time: ``step, value, timestamp``."""
        self.get_run_info(run_id)
        with self.store.read() as conn:
            rows = conn.execute(
                select(metric_chunks.c.steps, metric_chunks.c["values"], metric_chunks.c.timestamps)
                .where(metric_chunks.c.run_id == run_id, metric_chunks.c.key == key)
                .order_by(metric_chunks.c.id)
            ).all()
        return unpack(rows)

    @requires(Action.EXPERIMENTS_READ)
    def compare_runs(self, run_ids: Sequence[str]) -> pd.DataFrame:
        """Params, latest metrics and tags of several runs side by side: one column per
        run, one row per ``params.x`` / ``metrics.y`` / ``tags.z``; rows that differ come first."""
        if len(run_ids) < 1:
            raise ValidationError("compare_runs needs at least one run id", field="run_ids")
        data = {run_id: self.get_run(run_id) for run_id in run_ids}
        table: dict[str, dict[str, Any]] = {}
        for run_id, run in data.items():
            column: dict[str, Any] = {"run_name": run.info.name, "status": run.info.status.value}
            column.update({f"params.{k}": v for k, v in run.params.items()})
            column.update({f"metrics.{k}": v for k, v in run.metrics.items()})
            column.update({f"tags.{k}": v for k, v in run.tags.items() if not k.startswith("conveyor.")})
            table[run_id] = column
        frame = pd.DataFrame(table)
        header = frame.loc[["run_name", "status"]]
        body = frame.drop(index=["run_name", "status"])
        differs = body.astype(str).nunique(axis=1) > 1
        body = pd.concat([body[differs].sort_index(), body[~differs].sort_index()])
        return pd.concat([header, body])
