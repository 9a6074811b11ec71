"""A registered champion over the small breast-cancer pipeline, policies over it, and
monitored figures written to the real monitoring store, for the automation tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pipeline_support import FEATURES, write_pipeline

from conveyor.automation import Policy
from conveyor.core.workspace import Workspace
from conveyor.monitoring.results import Point
from conveyor.monitoring.windows import Window
from conveyor.pipelines.service import PipelineService

START = 1_704_067_200  # 2024-01-01T00:00:00Z
HOUR, DAY = 3600, 86_400
WEAK = [f"preprocess.transforms=[{{columns: ['{FEATURES[0]}'], transform: standard}}]"]


def champion_workspace(workspace: Workspace, tier: str = "low", weak: bool = True) -> Path:
    """Register version 1 of ``cancer`` as champion (on one feature when ``weak``, so a full
    retrain beats it); returns the pipeline file. A high tier is approved by a validator."""
    root = Path(workspace.settings.workspace)
    path = write_pipeline(root, tune=None, register={"model": "cancer", "alias": "champion", "risk_tier": tier})
    overrides = [*(WEAK if weak else []), *(["register.alias=null"] if tier == "high" else [])]
    result = PipelineService(workspace).run(path, overrides)
    assert result.model_version == 1
    if tier == "high":
        from conveyor.core.workspace import Workspace as Opened

        validator = Opened(workspace.settings.model_copy(update={"user": "val", "roles": {"val": ["validator"]}}))
        workspace.registry.request_approval("cancer", 1)
        validator.registry.approve("cancer", 1)
        workspace.registry.set_alias("cancer", "champion", 1)
    return path


def policy(path: Path, **changes: Any) -> dict[str, Any]:
    """A policy document over the pipeline; ``changes`` replace top-level sections."""
    document: dict[str, Any] = {
        "name": "cancer-retrain", "model": "cancer",
        "triggers": [{"type": "schedule", "cron": "0 * * * *"}],
        "retrain": {"pipeline": str(path)},
        "limits": {"cooldown": "1m", "max_retrains": 1000, "per": "1d"},
    }
    document.update(changes)
    return document


def write_points(workspace: Workspace, version: int, start: float, end: float, points: Sequence[Point],
                 model: str = "cancer") -> None:
    """One stored monitoring run of ``version`` over ``[start, end)`` (epoch seconds)."""
    workspace.monitoring.results.save(model, version, Window(int(start * 1000), int(end * 1000)), points,
                                      {"rows": 500})


def drift_points(share: float) -> list[Point]:
    """Dataset drift of a window with ``share`` of its columns drifted."""
    return [Point("dataset_drift", "share_drifted", share, "drift" if share > 0.5 else "ok", rows=500)]


def quality_points(auc: float, labelled: int) -> list[Point]:
    """ROC AUC on ``labelled`` rows of a window."""
    return [Point("model_quality", "roc_auc", auc, "ok", rows=500),
            Point("model_quality", "labelled_rows", float(labelled), "info", rows=500)]


def stored_policy(workspace: Workspace, document: dict[str, Any]) -> Policy:
    """Apply the policy and return it as stored."""
    return workspace.automation.apply_policy(document)
