"""``conveyor runs reproduce RUN``: re-execute a pipeline run from its records and say
whether it came out the same.

The run's resolved pipeline file, dataset snapshot (checked against its recorded
hash) and seed are replayed with the cache off; the gate and registration are not.
Metrics are compared value by value and the model's files by their sha256, and every
difference of code commit, Python or package versions is reported.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import yaml

from conveyor.errors import IntegrityError, NotFound, ValidationError
from conveyor.pipelines.loading import parse_pipeline
from conveyor.pipelines.outputs import PipelineResult, Progress
from conveyor.pipelines.publishing import model_files
from conveyor.pipelines.runner import (
    DATASET_ARTIFACT,
    DATASET_TAG,
    KEYS_TAG,
    PIPELINE_TAG,
    SPEC_ARTIFACT,
    PipelineRunner,
)
from conveyor.tracking import context as run_context
from conveyor.tracking.datasets import describe

if TYPE_CHECKING:
    from conveyor.core.workspace import Workspace

ENVIRONMENT_ARTIFACT = "_conveyor/environment.txt"
TOLERANCE = 1e-9


@dataclass
class Reproduction:
    """The outcome: the new run, metric by metric comparison, model identity, environment warnings."""

    original_run: str
    result: PipelineResult
    metrics: dict[str, tuple[float | None, float | None]]
    identical_model: bool
    warnings: list[str] = field(default_factory=list)

    @property
    def metrics_match(self) -> bool:
        """Every metric equal within a relative 1e-9."""
        return all(_same(a, b) for a, b in self.metrics.values())


def _same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return math.isclose(a, b, rel_tol=TOLERANCE, abs_tol=TOLERANCE)


def _packages(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line and not line.startswith("# platform")]
    return dict(line.split("==", 1) if "==" in line else (line, "") for line in lines)


def environment_warnings(workspace: Workspace, run_id: str, commit: str | None) -> list[str]:
    """How the environment now differs from the one the run recorded."""
    tracking = workspace.tracking
    warnings = []
    current = run_context.git_state().commit
    if commit != current:
        warnings.append(f"code commit differs: run had {commit or 'none'}, now {current or 'none'}")
    try:
        recorded = _packages(tracking.read_artifact(run_id, ENVIRONMENT_ARTIFACT).decode())
    except NotFound:
        return [*warnings, "the run recorded no environment to compare with"]
    now = _packages(run_context.environment_text())
    changed = sorted(name for name in recorded.keys() | now.keys() if recorded.get(name) != now.get(name))
    for name in changed[:10]:
        warnings.append(f"{name}: run had {recorded.get(name) or 'absent'}, now {now.get(name) or 'absent'}")
    if len(changed) > 10:
        warnings.append(f"... and {len(changed) - 10} more package differences")
    return warnings


def reproduce(workspace: Workspace, run_id: str, progress: Progress | None = None) -> Reproduction:
    """Re-run pipeline run ``run_id`` from its records into a new run and compare them.

    Raises:
        ValidationError: the run is not a pipeline run.
        IntegrityError: the stored dataset snapshot does not hash to what the run recorded.
    """
    tracking = workspace.tracking
    original = tracking.get_run(run_id)
    if PIPELINE_TAG not in original.tags:
        raise ValidationError(f"run {run_id} is not a pipeline run: nothing to reproduce", field="run_id")
    pipeline = parse_pipeline(yaml.safe_load(tracking.read_artifact(run_id, SPEC_ARTIFACT)), source=f"run {run_id}")
    frame = pd.read_parquet(io.BytesIO(tracking.read_artifact(run_id, DATASET_ARTIFACT)))
    recorded = original.tags.get(DATASET_TAG)
    found = describe(frame, None).digest
    if found != recorded:
        raise IntegrityError(f"the dataset snapshot of run {run_id} hashes to {found}, not the recorded {recorded}")
    keys = json.loads(original.tags.get(KEYS_TAG, "[]"))
    runner = PipelineRunner(
        workspace, pipeline, Path.cwd(), use_cache=False, progress=progress, snapshot=(frame, keys), publish=False,
        tags={"conveyor.reproduces": run_id},
    )
    result = runner.run()
    compared = {name: (original.metrics.get(name), value) for name, value in result.metrics.items()}
    identical = model_files(workspace, run_id) == model_files(workspace, result.run_id)
    warnings = environment_warnings(workspace, run_id, original.info.git_commit)
    outcome = Reproduction(run_id, result, compared, identical, warnings)
    tracking.set_tags(result.run_id, {
        "conveyor.reproduction.metrics_match": str(outcome.metrics_match).lower(),
        "conveyor.reproduction.identical_model": str(identical).lower(),
    })
    return outcome
