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

from conveyor.automation import Job, Policy
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
from conveyor.features import (
    Entity,
    Feature,
    FeatureService,
    FeatureStore,
    FeatureView,
    FileSource,
    PostgresSource,
    SqlSource,
)
from conveyor.governance import AuditVerification
from conveyor.monitoring.drift import drift
from conveyor.pipelines.outputs import PipelineResult
from conveyor.pipelines.spec import Pipeline
from conveyor.registry import (
    Approval,
    LoggedModel,
    ModelVersion,
    RegisteredModel,
    RiskTier,
    VersionStatus,
)
from conveyor.registry.packaging import (
    Predictor,
    PythonModel,
    Signature,
    infer_signature,
)
from conveyor.tracking import Experiment, Run, RunData, RunStatus, seed_everything

__version__ = "0.1.0"

__all__ = [
    "Approval",
    "AuditVerification",
    "Conflict",
    "ConveyorError",
    "Entity",
    "Experiment",
    "Feature",
    "FeatureService",
    "FeatureStore",
    "FeatureView",
    "FileSource",
    "IntegrityError",
    "Job",
    "LoggedModel",
    "ModelVersion",
    "NotFound",
    "PermissionDenied",
    "Pipeline",
    "PipelineResult",
    "Policy",
    "PostgresSource",
    "Predictor",
    "PythonModel",
    "RegisteredModel",
    "RiskTier",
    "Run",
    "RunData",
    "RunStatus",
    "Signature",
    "SqlSource",
    "Unavailable",
    "ValidationError",
    "VersionStatus",
    "Workspace",
    "active_run",
    "apply_policy",
    "approve_model_version",
    "compare_runs",
    "create_experiment",
    "create_registered_model",
    "delete_alias",
    "drift",
    "get_metric_history",
    "get_model_version",
    "get_registered_model",
    "get_run",
    "infer_signature",
    "list_experiments",
    "list_jobs",
    "load_model",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "model_card",
    "open_workspace",
    "register_model",
    "reproduce_run",
    "run_pipeline",
    "reject_model_version",
    "request_approval",
    "search_runs",
    "seed_everything",
    "set_alias",
    "set_tag",
    "start_run",
    "validate_model_version",
    "verify_audit_log",
]

_run_stack: list[Run] = []


def _workspace(workspace: Workspace | str | Path | None) -> Workspace:
    return workspace if isinstance(workspace, Workspace) else open_workspace(workspace)


def _tracking(workspace: Workspace | str | Path | None) -> Any:
    return _workspace(workspace).tracking


def _registry(workspace: Workspace | str | Path | None) -> Any:
    return _workspace(workspace).registry


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
    opened = _workspace(workspace)
    parent_id = parent.id if isinstance(parent, Run) else parent
    info = opened.tracking.create_run(experiment, name=name, parent_id=parent_id, params=params, tags=tags)
    run = _StackedRun(opened.tracking, info, opened)
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


def log_model(model: Any, name: str = "model", **options: Any) -> LoggedModel:
    """Store a model in the active run (see ``Run.log_model``)."""
    return _active().log_model(model, name, **options)


def create_registered_model(
    name: str,
    description: str | None = None,
    owner_team: str | None = None,
    task_type: str | None = None,
    risk_tier: RiskTier | str | None = None,
    intended_use: str | None = None,
    limitations: str | None = None,
    tags: Mapping[str, Any] | None = None,
    workspace: Workspace | str | Path | None = None,
) -> RegisteredModel:
    """Create a registered model with its governance facts; ``Conflict`` if it exists."""
    return _registry(workspace).create_registered_model(
        name, description, owner_team, task_type, risk_tier, intended_use, limitations, tags
    )


def get_registered_model(name: str, workspace: Workspace | str | Path | None = None) -> RegisteredModel:
    """A registered model with its aliases and latest version."""
    return _registry(workspace).get_registered_model(name)


def register_model(
    model_uri: str, name: str, description: str | None = None, feature_service: str | None = None,
    workspace: Workspace | str | Path | None = None,
) -> ModelVersion:
    """Register the model at ``runs:/RUN/PATH`` as the next version of ``name`` (created if missing);
    ``feature_service`` names the features it consumes, so a change that breaks them is flagged.

    Example:
        >>> version = conveyor.register_model(f"runs:/{run.id}/model", "credit-risk", feature_service="credit_v1")
    """
    return _registry(workspace).create_model_version(name, model_uri, description, feature_service)


def get_model_version(name: str, version: int | str, workspace: Workspace | str | Path | None = None) -> ModelVersion:
    """A version by number, alias (``"champion"``) or ``"latest"``."""
    return _registry(workspace).get_model_version(name, version)


def set_alias(name: str, alias: str, version: int | str, workspace: Workspace | str | Path | None = None) -> ModelVersion:
    """Point ``alias`` at ``version`` atomically (approval rules apply to protected aliases)."""
    return _registry(workspace).set_alias(name, alias, version)


def delete_alias(name: str, alias: str, workspace: Workspace | str | Path | None = None) -> None:
    """Remove an alias."""
    _registry(workspace).delete_alias(name, alias)


def load_model(
    uri: str,
    allow_pickle: bool = False,
    trusted_types: Sequence[str] = (),
    schema_mode: str = "error",
    workspace: Workspace | str | Path | None = None,
) -> Predictor:
    """Load ``models:/NAME@ALIAS``, ``models:/NAME/VERSION`` or ``runs:/RUN/PATH`` behind one
    interface: ``predict(df)``, ``predict_proba(df)``, ``.signature``, ``.version``.

    Example:
        >>> model = conveyor.load_model("models:/credit-risk@champion")
        >>> model.predict_proba(applications)
    """
    return _registry(workspace).load_model(uri, allow_pickle, trusted_types, schema_mode)


def validate_model_version(
    name: str,
    version: int | str,
    data: pd.DataFrame,
    target: str | None = None,
    segment: str | None = None,
    time_column: str | None = None,
    period: str = "M",
    reference: pd.DataFrame | None = None,
    workspace: Workspace | str | Path | None = None,
) -> tuple[ModelVersion, Any]:
    """Validate a version on holdout data against the champion; returns the version (its
    status moved by the outcome) and the ``ValidationReport``."""
    return _registry(workspace).validate_version(name, version, data, target, segment, time_column, period, reference)


def request_approval(
    name: str, version: int | str, comment: str | None = None, workspace: Workspace | str | Path | None = None
) -> Approval:
    """Ask a validator to approve a validated version."""
    return _registry(workspace).request_approval(name, version, comment)


def approve_model_version(
    name: str, version: int | str, comment: str | None = None, workspace: Workspace | str | Path | None = None
) -> ModelVersion:
    """Approve a version (validators only, never the version's creator)."""
    return _registry(workspace).approve(name, version, comment)


def reject_model_version(name: str, version: int | str, reason: str, workspace: Workspace | str | Path | None = None) -> ModelVersion:
    """Reject a version with a reason (validators only)."""
    return _registry(workspace).reject(name, version, reason)


def model_card(name: str, version: int | str, format: str = "md", workspace: Workspace | str | Path | None = None) -> str:
    """The version's model card as Markdown (``"md"``) or HTML (``"html"``)."""
    from conveyor.registry.cards import render_card

    return render_card(_registry(workspace), name, version, format)  # type: ignore[arg-type]


def verify_audit_log(workspace: Workspace | str | Path | None = None) -> AuditVerification:
    """Check the audit log's hash chain; ``ok`` is False if any entry was edited or removed."""
    return _workspace(workspace).audit.verify()


def run_pipeline(
    pipeline: Pipeline | str | Path,
    overrides: Sequence[str] = (),
    use_cache: bool = True,
    show_progress: bool = False,
    workspace: Workspace | str | Path | None = None,
) -> PipelineResult:
    """Run a training pipeline (a YAML path or a ``Pipeline``) as one tracked run; steps whose
    inputs are unchanged reuse their cached outputs unless ``use_cache=False``;
    ``show_progress`` draws a progress bar per step and a line as each ends.

    Example:
        >>> result = conveyor.run_pipeline("pipeline.yaml", overrides=["train.params.max_depth=6"])
        >>> result.metrics["roc_auc"], result.model_version
    """
    from conveyor.pipelines.service import PipelineService

    service = PipelineService(_workspace(workspace))
    if not show_progress:
        return service.run(pipeline, overrides, use_cache)
    from conveyor.pipelines.cli import RichProgress, progress_bars

    with progress_bars() as bars:
        return service.run(pipeline, overrides, use_cache, RichProgress(bars))


def reproduce_run(run_id: str, workspace: Workspace | str | Path | None = None) -> Any:
    """Re-execute a pipeline run from its records and compare; returns a ``Reproduction``
    (``metrics_match``, ``identical_model``, ``warnings`` about the environment)."""
    from conveyor.pipelines.service import PipelineService

    return PipelineService(_workspace(workspace)).reproduce(run_id)


def apply_policy(policy: Policy | Mapping[str, Any] | str | Path,
                 workspace: Workspace | str | Path | None = None) -> Policy:
    """Check and store a retraining policy (a ``Policy``, a mapping or a YAML path); the
    agent (``conveyor agent run``) evaluates it from then on.

    Example:
        >>> conveyor.apply_policy("credit-risk-policy.yaml")
        >>> conveyor.list_jobs(policy="credit-risk-retrain")
    """
    source = dict(policy) if isinstance(policy, Mapping) else policy
    return _workspace(workspace).automation.apply_policy(source)


def list_jobs(policy: str | None = None, status: str | None = None, limit: int = 100,
              workspace: Workspace | str | Path | None = None) -> list[Job]:
    """Automation jobs (retrains, monitoring runs), newest first, of a policy and status when given."""
    return _workspace(workspace).automation.list_jobs(policy, status, limit=limit)
