"""Pipeline runs as tracking records them: a run tagged ``conveyor.pipeline`` (its tuning
trials are nested runs without the tag), each step's outcome a ``conveyor.pipeline.step.*``
tag, the failing step, the gate's verdict and the dataset's hash as tags too."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from conveyor.errors import NotFound, ValidationError
from conveyor.pipelines.runner import DATASET_TAG, PIPELINE_TAG
from conveyor.pipelines.spec import STEPS
from conveyor.tracking import RunData, RunStatus

if TYPE_CHECKING:
    from conveyor.core.workspace import Workspace

STEP_TAG = f"{PIPELINE_TAG}.step."
FAILED_STEP_TAG = f"{PIPELINE_TAG}.failed_step"
GATE_TAG = f"{PIPELINE_TAG}.gate"
REPRODUCES_TAG = "conveyor.reproduces"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


@dataclass(frozen=True)
class PipelineRun:
    """One run of a pipeline: where it stands, how each step went, its test metrics."""

    run_id: str
    pipeline: str
    experiment_id: str
    status: RunStatus
    start_time: int
    end_time: int | None
    user: str | None
    metrics: dict[str, float]
    steps: dict[str, str]
    failed_step: str | None = None
    gate: str | None = None
    dataset_sha256: str | None = None
    reproduces: str | None = None
    error: str | None = None


def _pipeline_run(info: dict[str, Any], metrics: dict[str, float], tags: dict[str, str]) -> PipelineRun:
    steps = {step: tags[STEP_TAG + step] for step in STEPS if STEP_TAG + step in tags}
    return PipelineRun(
        run_id=info["id"], pipeline=tags[PIPELINE_TAG], experiment_id=info["experiment_id"],
        status=RunStatus(info["status"]),
        start_time=info["start_time"], end_time=info["end_time"], user=info["user"], metrics=metrics, steps=steps,
        failed_step=tags.get(FAILED_STEP_TAG), gate=tags.get(GATE_TAG), dataset_sha256=tags.get(DATASET_TAG),
        reproduces=tags.get(REPRODUCES_TAG), error=info.get("error"),
    )


def _ms(value: Any) -> int | None:
    return None if pd.isna(value) else int(pd.Timestamp(value).value // 1_000_000)


def _from_row(row: dict[str, Any]) -> PipelineRun:
    """A row of ``search_runs``' frame (missing values as None) as a pipeline run."""
    metrics = {key.removeprefix("metrics."): float(value) for key, value in row.items()
               if key.startswith("metrics.") and value is not None}
    tags = {key.removeprefix("tags."): value for key, value in row.items() if key.startswith("tags.") and value is not None}
    info = {"id": row["run_id"], "experiment_id": row["experiment_id"], "status": row["status"],
            "start_time": _ms(row["start_time"]), "end_time": _ms(row["end_time"]), "user": row["user"]}
    return _pipeline_run(info, metrics, tags)


def _checked(value: str | None, field: str) -> str | None:
    if value is not None and not _NAME.match(value):
        raise ValidationError(f"{field} {value!r} is not a name (letters, digits, '_', '.', '-')", field=field)
    return value


def list_runs(workspace: Workspace, experiment: str | None = None, pipeline: str | None = None,
              status: RunStatus | None = None, max_results: int = 100, offset: int = 0) -> list[PipelineRun]:
    """Pipeline runs, newest first: of one experiment (default: every one), one pipeline, one status.

    Raises:
        ValidationError: a malformed pipeline name, or ``max_results``/``offset`` out of range.
        NotFound: the experiment does not exist.
    """
    tracking = workspace.tracking
    names = [experiment] if experiment else [found.name for found in tracking.list_experiments()]
    if not names:
        return []
    terms = [f"tags.`{PIPELINE_TAG}` LIKE '%'"]
    if _checked(pipeline, "pipeline") is not None:
        terms.append(f"tags.`{PIPELINE_TAG}` = '{pipeline}'")
    if status is not None:
        terms.append(f"attributes.status = '{RunStatus(status).value}'")
    frame = tracking.search_runs(names, " and ".join(terms), ["attributes.start_time DESC"], max_results,
                                 offset=offset)
    return [_from_row(row) for row in frame.astype(object).where(frame.notna(), None).to_dict("records")]


def get_run(workspace: Workspace, run_id: str) -> PipelineRun:
    """The pipeline run ``run_id``.

    Raises:
        NotFound: no such run, or the run is not a pipeline run.
    """
    run: RunData = workspace.tracking.get_run(run_id)
    if PIPELINE_TAG not in run.tags:
        raise NotFound(f"run {run_id} is not a pipeline run", field="run_id")
    return _pipeline_run(run.info.model_dump(), dict(run.metrics), dict(run.tags))
