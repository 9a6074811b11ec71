"""The monitoring service: every check on a window of a model version's predictions,
stored as time series, then alert rules evaluated on them. SDK, CLI and HTTP are thin
over it."""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import duckdb
import orjson
from sqlalchemy import select

from conveyor.core.db.base import now_ms
from conveyor.errors import NotFound, ValidationError
from conveyor.governance.identity import Actor
from conveyor.governance.permissions import Action, requires
from conveyor.monitoring.business import BusinessMetric, BusinessMetrics
from conveyor.monitoring.detail import drift_rows
from conveyor.monitoring.drift import (
    DriftOptions,
    compare,
    profile_current,
    profile_reference,
)
from conveyor.monitoring.freshness import freshness
from conveyor.monitoring.model_quality import model_quality
from conveyor.monitoring.operations import operations, server_errors
from conveyor.monitoring.predictions import open_window
from conveyor.monitoring.quality import data_quality
from conveyor.monitoring.reference import (
    PREDICTION,
    REFERENCE_FILE,
    SCORE,
    ReferenceProfile,
    build_reference,
)
from conveyor.monitoring.results import MonitorRun, Point, ResultStore
from conveyor.monitoring.tables import monitor_references
from conveyor.monitoring.windows import Window, parse_duration, parse_time, windows
from conveyor.registry.uris import RunRef, parse_model_uri
from conveyor.serving.endpoint import ModelReference
from conveyor.serving.feedback import FeedbackService
from conveyor.serving.prediction_log import PredictionIndex

if TYPE_CHECKING:
    import pandas as pd

    from conveyor.core.workspace import Workspace
    from conveyor.monitoring.alerts import AlertEvent, AlertService
    from conveyor.registry.schemas import ModelVersion

log = logging.getLogger(__name__)
MIN_LABELS = 30
Progress = Callable[[int, int, Window], None]


class MonitoringService:
    """Runs checks, stores their results and raises alerts."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.store = workspace.metadata
        self.results = ResultStore(self.store, workspace.default_actor)
        self.business = BusinessMetrics(self.store, workspace.default_actor)
        self.index = PredictionIndex(self.store)
        self.feedback = FeedbackService(self.store)

    @property
    def actor(self) -> Actor:
        """Who acts: the workspace's acting user."""
        return self.workspace.actor

    @property
    def alerts(self) -> AlertService:
        """Alert rules, their state and deliveries."""
        from conveyor.monitoring.alerts import AlertService

        return AlertService(self.store, self.workspace.default_actor)

    @requires(Action.MONITORING_READ)
    def version(self, model: str) -> ModelVersion:
        """The version ``NAME@ALIAS``, ``NAME/VERSION`` or ``NAME`` (its champion, else its latest) names."""
        ref = ModelReference.parse(model)
        registry = self.workspace.registry
        try:
            return registry.get_model_version(ref.name, ref.selector[1:])
        except NotFound:
            if "@" in model or "/" in model:
                raise
            return registry.get_model_version(ref.name, "latest")

    @requires(Action.MONITORING_READ)
    def reference(self, version: ModelVersion) -> ReferenceProfile:
        """The version's reference: set explicitly, or stored with the model when it was
        logged with ``training_data``.

        Raises:
            NotFound: neither exists (set one with ``set_reference``).
        """
        table = monitor_references.c
        with self.store.read() as conn:
            sha = conn.execute(select(table.sha256).where(table.model == version.model,
                                                          table.version == version.version)).scalar()
        if sha is None and version.run_id:
            source = parse_model_uri(version.source)
            path = source.path if isinstance(source, RunRef) else "model"
            run = self.workspace.tracking.get_run(version.run_id)
            sha = next((a.sha256 for a in run.artifacts if a.path == f"{path}/{REFERENCE_FILE}"), None)
        if sha is None:
            raise NotFound(f"version {version.version} of '{version.model}' has no reference profile: log it with "
                           f"training_data=, or set one with `conveyor monitor reference {version.model}/"
                           f"{version.version} --data TRAIN.parquet`", field="reference")
        return ReferenceProfile.from_bytes(self.workspace.artifacts.get_bytes(sha))

    @requires(Action.MONITORING_WRITE)
    def set_reference(self, model: str, data: Any) -> ReferenceProfile:
        """Profile ``data`` (training features: a DataFrame or Parquet/CSV path) as a
        version's reference; for a DataFrame the model's answers on it are profiled too."""
        import pandas as pd

        version = self.version(model)
        if isinstance(data, pd.DataFrame):
            reference = _reference_with_predictor(data, self.workspace.registry.load_model(version.uri))
            source = f"DataFrame of {len(data):,} rows"
        else:
            reference, source = build_reference(data), str(data)
        sha, _ = self.workspace.artifacts.put_bytes(reference.to_bytes())
        row = {"model": version.model, "version": version.version, "sha256": sha, "rows": reference.inputs.rows,
               "source": source[:1024], "created_at": now_ms()}
        upsert = self.store.dialect.insert(monitor_references).values(**row)
        with self.store.write() as conn:
            conn.execute(upsert.on_conflict_do_update(index_elements=["model", "version"], set_=row))
        return reference

    @requires(Action.MONITORING_WRITE)
    def run(self, model: str, window: str | None = None, since: Any = None, until: Any = None, step: str | None = None,
            data: Any = None, options: DriftOptions | None = None, metrics_url: str | None = None,
            min_labels: int = MIN_LABELS, progress: Progress | None = None) -> list[MonitorRun]:
        """Run every check on each window of the model's predictions (or on ``data``),
        store the results and evaluate alert rules.

        Args:
            model: ``NAME@ALIAS``, ``NAME/VERSION`` or ``NAME``.
            window: window length (``1h``, ``1d``...); default: one window, from
                ``since`` to ``until`` when both are given, else the last day.
            since, until: the range to cover (ISO 8601 or datetime); fixed windows.
            step: make windows rolling: each ``window`` long, ending every ``step``.
            data: current data to check instead of the prediction log (DataFrame or path).
            metrics_url: a running server whose /metrics give the error rate.
            min_labels: labelled rows below which quality metrics are ``insufficient``.
        """
        if min_labels < 1:
            raise ValidationError("min_labels must be at least 1", field="min_labels")
        version = self.version(model)
        reference = self.reference(version)
        end = parse_time(until, "until") if until is not None else now_ms()
        size = parse_duration(window or "1d", "window")
        start = parse_time(since, "since") if since is not None else end - size
        if window is None and since is not None or data is not None:
            spans = [Window(start, end)] if start < end else windows(start, end, size)
        else:
            spans = windows(start, end, size, parse_duration(step, "step") if step else None)
        runs = []
        for position, span in enumerate(spans):
            runs.append(self._run_window(version, reference, span, data, options or DriftOptions(), metrics_url, min_labels))
            if progress is not None:
                progress(position + 1, len(spans), span)
        self.evaluate_alerts(version.model)
        return runs

    def _run_window(self, version: ModelVersion, reference: ReferenceProfile, window: Window, data: Any,
                    options: DriftOptions, metrics_url: str | None, min_labels: int) -> MonitorRun:
        con = duckdb.connect()
        try:
            if data is None:
                files = [f.path for f in self.index.files(version.model, version.version, window.start / 1000,
                                                          window.end / 1000)]
                rows = open_window(con, files, version.version, window, self.feedback)
                current: Any = con.table("predictions")
            else:
                current, rows = data, None
            points, detail, summary = self._checks(con, version, reference, current, window, options, min_labels,
                                                   from_log=data is None)
            rows = summary["rows"] if rows is None else rows
        finally:
            con.close()
        if metrics_url:
            points += server_errors(metrics_url, version.model)
        points += self._freshness(version)
        sha = self.workspace.artifacts.put_bytes(zlib.compress(orjson.dumps(detail), 6))[0] if detail else None
        return self.results.save(version.model, version.version, window, points, summary, sha)

    def _checks(self, con: duckdb.DuckDBPyConnection, version: ModelVersion, reference: ReferenceProfile,
                current: Any, window: Window, options: DriftOptions, min_labels: int,
                from_log: bool) -> tuple[list[Point], dict[str, Any], dict[str, Any]]:
        both = profile_current(reference.combined(), current)
        inputs = both.select(reference.inputs.columns)
        outputs = both.select(reference.outputs.columns) if reference.outputs is not None else None
        rows = both.rows
        points = [Point("volume", "rows", float(rows), "info", rows=rows)]
        summary: dict[str, Any] = {"rows": rows, "reference_rows": reference.inputs.rows}
        if not rows:
            return points, {}, {**summary, "columns": 0, "drifted_columns": 0, "share_drifted": 0.0,
                                "dataset_drift": False}
        table = compare(reference.inputs, inputs, options)
        points += _drift_points("data_drift", table, rows)
        points.append(Point("dataset_drift", "share_drifted", table.attrs["share_drifted"],
                            "drift" if table.attrs["dataset_drift"] else "ok", threshold=options.drift_share, rows=rows))
        points += data_quality(reference.inputs, inputs)
        detail = {"drift": drift_rows(table, reference.inputs, inputs)}
        if reference.outputs is not None and outputs is not None and outputs.columns:
            predicted = compare(reference.outputs, outputs, DriftOptions())
            points += _drift_points("prediction_drift", predicted, rows)
            detail["prediction_drift"] = drift_rows(predicted, reference.outputs, outputs)
        if from_log:
            labelled = con.execute(f"SELECT {PREDICTION}::VARCHAR AS prediction, {SCORE}, label FROM labelled").df()
            points += model_quality(labelled, rows, reference.classes if reference.task != "regression" else None,
                                    min_labels)
            points += operations(con, window)
            points += self.business.run(con, version.model, rows)
        summary.update(columns=len(table), drifted_columns=table.attrs["drifted_columns"],
                       share_drifted=table.attrs["share_drifted"], dataset_drift=table.attrs["dataset_drift"])
        return points, detail, summary

    def _freshness(self, version: ModelVersion) -> list[Point]:
        if not version.feature_service:
            return []
        from conveyor.features.store import FeatureStore

        store = FeatureStore(workspace=self.workspace)
        service = store.get_feature_service(version.feature_service)
        return freshness(store, sorted({s.view for s in service.features}))  # type: ignore[union-attr]

    @requires(Action.MONITORING_WRITE)
    def evaluate_alerts(self, model: str) -> list[AlertEvent]:
        """Evaluate the alert rules that watch ``model`` on its newest points."""
        return self.alerts.evaluate(model)

    @requires(Action.MONITORING_READ)
    def history(self, model: str, metric: str | None = None, column: str | None = None,
                since: Any = None, until: Any = None) -> pd.DataFrame:
        """Stored points of a model's series (``check.statistic``), in window order."""
        name = ModelReference.parse(model).name
        return self.results.history(name, metric, column,
                                    parse_time(since, "since") if since is not None else None,
                                    parse_time(until, "until") if until is not None else None)

    @requires(Action.MONITORING_WRITE)
    def define_metric(self, name: str, model: str, sql: str, description: str = "") -> BusinessMetric:
        """Define (or replace) a business metric over a model's prediction log, checked now."""
        version = self.version(model)
        try:
            inputs = self.reference(version).inputs
        except NotFound:
            inputs = None
        return self.business.define(BusinessMetric(name, version.model, sql, description), inputs)

    @requires(Action.MONITORING_READ)
    def detail(self, run: Mapping[str, Any]) -> dict[str, Any]:
        """The per-column distributions stored with a run."""
        if not run.get("detail_sha256"):
            return {}
        return orjson.loads(zlib.decompress(self.workspace.artifacts.get_bytes(run["detail_sha256"])))


def _drift_points(check: str, table: pd.DataFrame, rows: int) -> list[Point]:
    """A drift table as points: the number compared with the threshold (p-value for KS
    and chi-square, else the distance) under the test's name."""
    points = []
    for row in table.to_dict("records"):
        value = row["p_value"] if row["p_value"] is not None and row["test"] in ("ks", "chisquare") else row["statistic"]
        points.append(Point(check, row["test"], float(value), "drift" if row["drifted"] else "ok", row["column"],
                            row["threshold"], rows))
        points.append(Point(check, "drifted", 1.0 if row["drifted"] else 0.0, "drift" if row["drifted"] else "ok",
                            row["column"], None, rows))
    return points


def _reference_with_predictor(data: Any, predictor: Any) -> ReferenceProfile:
    """A reference whose outputs come from a registered model's predictor."""
    import pandas as pd

    from conveyor.serving.endpoint import output_classes, predict_rows

    inputs = profile_reference(data)
    classes = output_classes(predictor)
    predictions, proba = predict_rows(predictor, data, classes)
    outputs = pd.DataFrame({PREDICTION: predictions.astype(str) if classes else predictions.astype(float)})
    if proba is not None:
        outputs[SCORE] = proba[:, -1] if proba.shape[1] == 2 else proba.max(axis=1)
    return ReferenceProfile(inputs=inputs, outputs=profile_reference(outputs), classes=classes)

