"""Conveyor SDK: one road from raw data to a monitored production model.

Example:
    >>> import conveyor
    >>> with conveyor.start_run(experiment="credit", params={"model": "lgbm"}) as run:
    ...     run.log_metric("auc", 0.91)
    >>> conveyor.search_runs("credit", filter="metrics.auc > 0.9", order_by=["metrics.auc DESC"])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from conveyor.core.workspace import Workspace, open_workspace
from conveyor.errors import (
    Conflict,
    ConveyorError,
    IntegrityError,
    NotFound,
    PermissionDenied,
    Unavailable,
    ValidationError,
)
from conveyor.tracking import Experiment, Run, RunData, RunStatus, seed_everything

__version__ = "0.1.0"

__all__ = [
    "Conflict",
    "ConveyorError",
    "Experiment",
    "IntegrityError",
    "NotFound",
    "PermissionDenied",
    "Run",
    "RunData",
    "RunStatus",
    "Unavailable",
    "ValidationError",
    "Workspace",
    "active_run",
    "compare_runs",
    "create_experiment",
    "get_metric_history",
    "get_run",
    "list_experiments",
    "log_metric",
    "log_metrics",
    "log_param",
    "log_params",
    "open_workspace",
    "search_runs",
    "seed_everything",
    "set_tag",
    "start_run",
]

_run_stack: list[Run] = []


def _tracking(workspace: Workspace | str | Path | None) -> Any:
    if isinstance(workspace, Workspace):
        return workspace.tracking
    return open_workspace(workspace).tracking


class _StackedRun(Run):
    """A run that is the active run while its ``with`` block runs."""

    def end(self, status: RunStatus | str = RunStatus.FINISHED, error: str | None = None) -> None:
        super().end(status, error)
        if self in _run_stack:
            _run_stack.remove(self)


def start_run(
    experiment: str = "Default",
    name: str | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    parent: Run | str | None = None,
    workspace: Workspace | str | Path | None = None,
) -> Run:
    """Start a run in ``experiment`` (created if missing) and make it the active run.

    Args:
        experiment: experiment name.
        name: run name (default: ``run-<id prefix>``).
        params: parameters to record at once.
        tags: tags to record at once.
        parent: the parent run (or its id) for nested runs such as tuning trials.
        workspace: a workspace, or its folder; default: the current one.

    Returns:
        A ``Run``; use it in a ``with`` block so it ends as finished or failed.
    """
    service = _tracking(workspace)
    parent_id = parent.id if isinstance(parent, Run) else parent
    info = service.create_run(experiment, name=name, parent_id=parent_id, params=params, tags=tags)
    run = _StackedRun(service, info)
    _run_stack.append(run)
    return run


def active_run() -> Run | None:
    """The innermost run started and not yet ended in this process."""
    return _run_stack[-1] if _run_stack else None


def _active() -> Run:
    run = active_run()
    if run is None:
        raise ValidationError("no active run: call conveyor.start_run() first", field="run")
    return run


def log_param(key: str, value: Any) -> None:
    """Record a parameter on the active run."""
    _active().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    """Record parameters on the active run."""
    _active().log_params(params)


def log_metric(key: str, value: float, step: int = 0) -> None:
    """Log a metric on the active run."""
    _active().log_metric(key, value, step)


def log_metrics(metrics: Mapping[str, float], step: int = 0) -> None:
    """Log metrics on the active run."""
    _active().log_metrics(metrics, step)


def set_tag(key: str, value: Any) -> None:
    """Set a tag on the active run."""
    _active().set_tag(key, value)


def create_experiment(name: str, description: str | None = None, workspace: Workspace | str | Path | None = None) -> Experiment:
    """Create an experiment; ``Conflict`` if the name exists."""
    return _tracking(workspace).create_experiment(name, description)


def list_experiments(workspace: Workspace | str | Path | None = None) -> list[Experiment]:
    """Every experiment of the workspace."""
    return _tracking(workspace).list_experiments()


def get_run(run_id: str, workspace: Workspace | str | Path | None = None) -> RunData:
    """A run with its params, metrics, tags, artifacts and inputs."""
    return _tracking(workspace).get_run(run_id)


def search_runs(
    experiments: str | Sequence[str] | None = None,
    filter: str | None = None,
    order_by: Sequence[str] | None = None,
    max_results: int = 1000,
    include_deleted: bool = False,
    workspace: Workspace | str | Path | None = None,
) -> pd.DataFrame:
    """Search runs with a filter such as ``"metrics.auc > 0.9 and params.model = 'lgbm'"``
    and an order such as ``["metrics.auc DESC"]``; one DataFrame row per run."""
    return _tracking(workspace).search_runs(experiments, filter, order_by, max_results, include_deleted)


def get_metric_history(run_id: str, key: str, workspace: Workspace | str | Path | None = None) -> pd.DataFrame:
    """Every value logged for a metric of a run (``step, value, timestamp``)."""
    return _tracking(workspace).get_metric_history(run_id, key)


def compare_runs(run_ids: Sequence[str], workspace: Workspace | str | Path | None = None) -> pd.DataFrame:
    """Params, metrics and tags of runs side by side, differing rows first."""
    return _tracking(workspace).compare_runs(run_ids)
