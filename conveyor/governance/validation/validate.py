"""Validate a candidate model version on holdout data: the entry point of this package."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from conveyor.core.db.base import now_ms
from conveyor.errors import ValidationError
from conveyor.governance.validation import checks
from conveyor.governance.validation.profile import DataProfile
from conveyor.governance.validation.schemas import (
    SegmentResult,
    ValidationReport,
    ValidationThresholds,
)
from conveyor.governance.validation.segments import (
    group_metrics,
    period_labels,
    segment_labels,
)
from conveyor.governance.validation.tasks import Scored, Task, task_of

DEFAULT_THRESHOLDS = ValidationThresholds()


def _champion_task(champion: Any, task: Task) -> Task | None:
    if champion is None:
        return None
    theirs = task_of(champion, "champion")
    if theirs.name != task.name or set(theirs.labels) != set(task.labels):
        raise ValidationError(
            f"champion is a {theirs.name} model with classes {list(theirs.labels)}, "
            f"the candidate a {task.name} model with classes {list(task.labels)}",
            field="champion",
        )
    return theirs


def _known(found: dict[str, float | None]) -> dict[str, float]:
    return {name: value for name, value in found.items() if value is not None}


def _groups(task: Task, scored: Scored, grouping: tuple[np.ndarray, list[str]] | None, column: str | None,
            labelled: np.ndarray, overall: float | None, thresholds: ValidationThresholds) -> SegmentResult | None:
    if grouping is None or column is None:
        return None
    labels, order = grouping
    return group_metrics(task, scored, labels[labelled], order, column, overall, thresholds)


def validate_model(
    candidate: Any,
    data: pd.DataFrame,
    *,
    model: str,
    version: int,
    target: str,
    champion: Any = None,
    champion_version: int | None = None,
    segment: str | None = None,
    time_column: str | None = None,
    period: str = "M",
    reference: DataProfile | None = None,
    thresholds: ValidationThresholds = DEFAULT_THRESHOLDS,
    created_by: str = "",
) -> ValidationReport:
    """Measure a candidate on holdout ``data`` and apply the checks of model risk management.

    Predictors get ``data`` without the target column (and only its rows with a
    target); they pick their own inputs from it. Their errors on data they do not
    accept propagate unchanged. For a binary classifier the positive class is
    ``classes[1]``; the target may hold the class labels in any dtype.

    Args:
        candidate: the model version under validation (``predict``, ``predict_proba``, ``signature``).
        data: holdout rows, with the target and any segment or time column.
        model, version: the name and version the report is about.
        target: the column holding the true values.
        champion, champion_version: the model in production to compare with, if any.
        segment: a column to break metrics down by (numbers with over ten values in quintiles).
        time_column, period: a datetime column and a pandas period alias ("M", "Q", "W").
        reference: the training data profile, for the population stability index.
        thresholds: the limits the checks apply.
        created_by: who asked for the validation.

    Returns:
        The report; ``report.passed`` is false when any ``"fail"`` check failed.

    Raises:
        ValidationError: the target, segment or time column is missing (fields: the
            target name, the segment name, ``time_column``), no row has a target,
            the time column is not dates, or the models' outputs do not fit together.
    """
    if target not in data.columns:
        raise ValidationError(f"target column {target!r} is not in the data", field=target)
    task = task_of(candidate, "candidate")
    champion_task = _champion_task(champion, task)
    by_segment = segment_labels(data, segment) if segment is not None else None
    by_period = period_labels(data, time_column, period) if time_column is not None else None
    labelled = data[target].notna().to_numpy()
    if not labelled.any():
        raise ValidationError(f"no row of the data has a value in target {target!r}", field=target)

    rows = data.loc[labelled]
    features = rows.drop(columns=[target])
    scored = task.score(candidate, features, rows[target])
    metrics = _known(task.metrics(scored))
    curves = task.curves(scored)
    champion_metrics = differences = None
    if champion_task is not None:
        champion_scored = champion_task.score(champion, features, rows[target])
        champion_metrics = _known(champion_task.metrics(champion_scored))
        differences = {k: metrics[k] - champion_metrics[k] for k in metrics if k in champion_metrics}
        curves = curves.model_copy(update={"champion_roc": champion_task.curves(champion_scored).roc})

    overall = metrics.get(task.primary)
    segments = _groups(task, scored, by_segment, segment, labelled, overall, thresholds)
    periods = _groups(task, scored, by_period, time_column, labelled, overall, thresholds)
    psi = reference.psi(data) if reference is not None else None

    found = [
        checks.rows_check(len(rows), thresholds),
        checks.target_check(target, len(data) - len(rows)),
        checks.primary_check(task, metrics),
        checks.champion_check(task, metrics, champion_metrics, champion_version, thresholds),
        checks.psi_check(psi, thresholds),
        *task.checks(scored),
    ]
    if segments is not None:
        found.append(checks.stability_check("segment_stability", segments, task, thresholds))
    if periods is not None:
        found.append(checks.stability_check("period_stability", periods, task, thresholds))

    return ValidationReport(
        model=model,
        version=version,
        champion_version=champion_version,
        task=task.name,
        rows=len(data),
        target=target,
        created_at=now_ms(),
        created_by=created_by,
        thresholds=thresholds,
        primary_metric=task.primary,
        metrics=metrics,
        champion_metrics=champion_metrics,
        differences=differences,
        calibration=task.calibration(scored),
        segments=segments,
        periods=periods,
        psi=psi,
        curves=curves,
        checks=found,
        passed=all(c.passed for c in found if c.severity == "fail"),
    )
