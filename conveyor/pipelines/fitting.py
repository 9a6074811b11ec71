"""The ``train`` step's work: fit the model on the training rows, whole or per segment.

Fits run under an explicit native-thread limit (one core's share per parallel worker):
left to its defaults, LightGBM's OpenMP threads were seen to run 50× slower on a
loaded two-core machine.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
from threadpoolctl import threadpool_limits

from conveyor.errors import ValidationError
from conveyor.pipelines.building import build_model
from conveyor.pipelines.executors import Executor
from conveyor.pipelines.segments import SegmentedModel
from conveyor.pipelines.spec import Pipeline
from conveyor.pipelines.tuning import threads_per_worker


@dataclass(frozen=True)
class SegmentJob:
    """What each segment's fit shares: the pipeline, the training rows and the parameters."""

    pipeline: Pipeline
    rows: pd.DataFrame
    features: list[str]
    params: dict[str, Any]
    threads: int


def fit_segment(job: SegmentJob, value: Any) -> Any:
    """Fit one segment's model on its rows, without the segment column."""
    column = job.pipeline.train.segment_by
    rows = job.rows[job.rows[column] == value]
    model = build_model(job.pipeline, job.params, job.threads)
    with threadpool_limits(job.threads):
        model.fit(rows[[c for c in job.features if c != column]], rows[job.pipeline.target])
    return model


def fit_model(
    pipeline: Pipeline, rows: pd.DataFrame, features: list[str], params: dict[str, Any], executor: Callable[[], Executor],
    trusted_types: list[str], on_segment: Callable[[int, int], None] | None = None,
) -> Any:
    """The fitted model: one estimator, or a ``SegmentedModel`` whose segments the executor fits in parallel."""
    column = pipeline.train.segment_by
    if column is None:
        threads = os.cpu_count() or 1
        model = build_model(pipeline, params, threads)
        with threadpool_limits(threads):
            model.fit(rows[features], rows[pipeline.target])
        return model
    values = sorted(rows[column].unique().tolist(), key=str)
    if not values:
        raise ValidationError(f"train.segment_by: column {column!r} has no values in the training rows", field="train.segment_by")
    done = 0

    def advance(_index: int, _model: Any) -> None:
        nonlocal done
        done += 1
        if on_segment:
            on_segment(done, len(values))

    pool = executor()
    job = SegmentJob(pipeline, rows[[*features, pipeline.target]], features, params, threads_per_worker(pool))
    fitted = pool.map(fit_segment, values, shared=job, on_result=advance)
    return SegmentedModel.from_fitted(column, dict(zip(values, fitted)), trusted_types)
