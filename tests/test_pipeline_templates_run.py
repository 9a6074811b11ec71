"""Every template runs end to end on its real data set and registers a model."""

from __future__ import annotations

from pathlib import Path

import pytest

from conveyor.core.config import load_settings
from conveyor.core.workspace import Workspace
from conveyor.pipelines import evaluation
from conveyor.pipelines.service import PipelineService
from conveyor.pipelines.templates import TEMPLATES, write_template

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("template", sorted(TEMPLATES))
def test_template_runs_end_to_end_and_registers_its_model(template: str, tmp_path: Path) -> None:
    workspace = Workspace(load_settings(tmp_path / "ws"))
    write_template(template, tmp_path / template)
    service = PipelineService(workspace)
    pipeline, _ = service.load(tmp_path / template / "pipeline.yaml")
    overrides = ["tune.n_trials=4"] if pipeline.tune else []
    result = service.run(tmp_path / template / "pipeline.yaml", overrides)
    primary = evaluation.primary_metric(pipeline.task)
    assert result.gate is not None and result.gate.passed, result.gate
    assert result.metrics[primary] is not None
    assert (result.model_version, result.alias) == (1, "champion")
    model = workspace.registry.load_model(f"models:/{template}@champion")
    assert model.version.version == 1
    workspace.close()
