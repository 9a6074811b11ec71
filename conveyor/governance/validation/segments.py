"""Metrics per segment value and per time period, and the stability rule that flags groups.

Stability rule (warn level): a group with at least ``min_segment_rows`` rows whose
primary metric is defined is *unstable* when its primary metric is worse than the
metric on all the data by more than

    max(2 * max_degradation, 2 * standard error of the group's metric)

"Worse" uses the same measure as the champion comparison: the absolute drop of
ROC AUC, or the relative increase of RMSE. The standard-error term (Hanley &
McNeil for AUC, the delta method for RMSE) keeps small groups, whose metric is
noisy, from being flagged by chance; the ``2 * max_degradation`` floor keeps large
groups from being flagged for differences nobody would act on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from conveyor.errors import ValidationError
from conveyor.governance.validation.profile import is_numeric
from conveyor.governance.validation.schemas import (
    SegmentGroup,
    SegmentResult,
    ValidationThresholds,
)
from conveyor.governance.validation.tasks import Scored, Task

MAX_DISCRETE = 10
QUANTILES = 5
MISSING = "(missing)"


def _labels(values: pd.Series) -> np.ndarray:
    return np.where(values.notna(), values.astype(str), MISSING)


def _quintile_labels(series: pd.Series) -> tuple[np.ndarray, list[str]]:
    codes, edges = pd.qcut(series, QUANTILES, labels=False, retbins=True, duplicates="drop")
    names = [
        f"Q{i + 1} {'[' if i == 0 else '('}{edges[i]:.4g}, {edges[i + 1]:.4g}]" for i in range(len(edges) - 1)
    ]
    return _labels(codes.map(lambda code: names[int(code)], na_action="ignore")), names


def segment_labels(data: pd.DataFrame, column: str) -> tuple[np.ndarray, list[str]]:
    """A group label per row of ``data`` and the groups in display order.

    A numeric column with more than ten distinct values is cut into quintiles,
    labelled ``"Q1 [lo, hi]"``, ``"Q2 (lo, hi]"``...; any other column groups by
    value. Missing values form the group ``"(missing)"``, shown last.

    Raises:
        ValidationError: ``column`` is not in ``data`` (the field is the column name).
    """
    if column not in data.columns:
        raise ValidationError(f"segment column {column!r} is not in the data", field=column)
    series = data[column]
    if is_numeric(series) and series.nunique() > MAX_DISCRETE:
        labels, order = _quintile_labels(series)
    else:
        present = series.dropna().unique()
        order = [str(v) for v in sorted(present, key=lambda v: (str(type(v)), v))]
        labels = _labels(series)
    if series.isna().any():
        order.append(MISSING)
    return labels, order


def period_labels(data: pd.DataFrame, column: str, period: str) -> tuple[np.ndarray, list[str]]:
    """The ``period`` (a pandas period alias: "M", "Q", "W"...) of each row's time, and the periods in order.

    Timezone-aware times are converted to UTC first. Rows without a time form the
    group ``"(missing)"``, shown last.

    Raises:
        ValidationError: the column is missing, holds numbers or text that is not a
            date, or no time at all (field ``time_column``); ``period`` is not a
            period alias (field ``period``).
    """
    if column not in data.columns:
        raise ValidationError(f"time column {column!r} is not in the data", field="time_column")
    series = data[column]
    if is_numeric(series):
        raise ValidationError(
            f"time column {column!r} holds numbers ({series.dtype}); convert them to datetimes", field="time_column"
        )
    try:
        times = pd.Series(pd.to_datetime(series), index=series.index)
    except (ValueError, TypeError, OverflowError) as exc:
        reason = str(exc).splitlines()[0]
        raise ValidationError(f"time column {column!r} cannot be read as dates: {reason}", field="time_column") from exc
    if times.isna().all():
        raise ValidationError(f"time column {column!r} holds no dates", field="time_column")
    if times.dt.tz is not None:
        times = times.dt.tz_convert(None)
    try:
        periods = times.dt.to_period(period)
    except ValueError as exc:
        raise ValidationError(f"period {period!r} is not a pandas period alias such as 'M', 'Q' or 'W'",
                              field="period") from exc
    order = [str(p) for p in sorted(periods.dropna().unique())]
    if periods.isna().any():
        order.append(MISSING)
    return _labels(periods), order


def is_unstable(task: Task, part: Scored, value: float | None, overall: float | None,
                thresholds: ValidationThresholds) -> bool:
    """Whether a group breaks the stability rule of this module."""
    if len(part.y) < thresholds.min_segment_rows or value is None or overall is None:
        return False
    noise = task.noise(part, overall)
    margin = max(2 * thresholds.max_degradation, 2 * noise if noise is not None else 0.0)
    return task.degradation(value, overall) > margin


def group_metrics(task: Task, scored: Scored, labels: np.ndarray, order: list[str], column: str,
                  overall: float | None, thresholds: ValidationThresholds) -> SegmentResult:
    """Metrics of each group with rows, in ``order``; ``labels`` align with the rows of ``scored``."""
    groups = []
    for value in order:
        part = scored.take(labels == value)
        if not len(part.y):
            continue
        found = task.metrics(part)
        groups.append(
            SegmentGroup(
                value=value,
                rows=len(part.y),
                metrics=found,
                unstable=is_unstable(task, part, found[task.primary], overall, thresholds),
            )
        )
    return SegmentResult(column=column, groups=groups)
