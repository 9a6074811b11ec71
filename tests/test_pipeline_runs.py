"""Running a pipeline: one tracked run with nested trials, cached steps, failures that keep
what was done, the gate, registration, reproduction and per-segment models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pipeline_support import FEATURES, write_pipeline

import conveyor
from conveyor.core.config import load_settings
from conveyor.core.workspace import Workspace
from conveyor.errors import ConveyorError, NotFound, ValidationError
from conveyor.pipelines.service import PipelineService

CACHED_STEPS = ("dataset", "split", "preprocess", "tune", "train", "evaluate")


@pytest.fixture
def local(tmp_path: Path) -> Workspace:
    """A workspace on the embedded defaults."""
    root = tmp_path / "ws"
    root.mkdir()
    workspace = Workspace(load_settings(root))
    yield workspace
    workspace.close()


def _statuses(result: conveyor.PipelineResult) -> dict[str, str]:
    return {report.step: report.status for report in result.steps}


def test_a_run_is_one_tracked_run_with_nested_trials_and_step_artifacts(workspace: Workspace, tmp_path: Path) -> None:
    result = PipelineService(workspace).run(write_pipeline(tmp_path))
    assert set(_statuses(result).values()) == {"ran"}
    assert result.metrics["roc_auc"] > 0.9
    run = workspace.tracking.get_run(result.run_id)
    assert run.info.status.value == "FINISHED"
    assert run.params["train.estimator"] == "sklearn.linear_model.LogisticRegression"
    assert run.metrics["roc_auc"] == result.metrics["roc_auc"]
    paths = {a.path for a in run.artifacts}
    assert {"pipeline.yaml", "steps/dataset.parquet", "steps/split.npz", "steps/tune.json", "steps/evaluate.json",
            "model/conveyor-model.json", "plots/tuning.png", "plots/evaluation.png"} <= paths
    children = [r for r in workspace.tracking.search_runs("cancer").itertuples() if r.run_id != result.run_id]
    assert len(children) == 6
    assert all(workspace.tracking.get_run_info(c.run_id).parent_id == result.run_id for c in children)
    assert (result.model_version, result.alias) == (1, "champion")
    version = workspace.registry.get_model_version("cancer", "champion")
    assert version.source == f"runs:/{result.run_id}/model"
    assert version.status.value == "validated"


def test_a_cached_rerun_skips_unchanged_steps_and_a_changed_step_reruns(workspace: Workspace, tmp_path: Path) -> None:
    service = PipelineService(workspace)
    path = write_pipeline(tmp_path)
    first = service.run(path)
    second = service.run(path)
    assert all(_statuses(second)[step] == "cached" for step in CACHED_STEPS)
    assert second.metrics == first.metrics and second.best_params == first.best_params
    assert second.step("register").detail == "unchanged: cancer version 1 holds these very model files"
    assert [v.version for v in workspace.registry.list_model_versions("cancer")] == [1]
    assert len(workspace.tracking.search_runs("cancer")) == 6 + 2
    reused = workspace.registry.load_model(f"runs:/{second.run_id}/model").predict_proba(_rows(tmp_path))
    trained = workspace.registry.load_model(f"runs:/{first.run_id}/model").predict_proba(_rows(tmp_path))
    assert reused.shape == (5, 2) and np.array_equal(reused, trained)
    changed = service.run(path, ["evaluate.k=5"])
    assert _statuses(changed)["train"] == "cached" and _statuses(changed)["evaluate"] == "ran"
    forced = service.run(path, use_cache=False)
    assert all(_statuses(forced)[step] == "ran" for step in CACHED_STEPS)
    assert forced.metrics == first.metrics


def _rows(folder: Path):  # noqa: ANN202
    import pandas as pd

    return pd.read_parquet(folder / "data" / "cancer.parquet").head(5)


def test_a_failing_step_fails_the_run_keeps_earlier_outputs_and_registers_nothing(local: Workspace, tmp_path: Path) -> None:
    service = PipelineService(local)
    path = write_pipeline(tmp_path, tune=None)
    with pytest.raises(ConveyorError, match="pipeline 'cancer' failed at step 'train': .*max_iter") as caught:
        service.run(path, ["train.params.max_iter=-5"])
    failed = local.tracking.search_runs("cancer")
    run = local.tracking.get_run(failed["run_id"].iloc[0])
    assert run.info.status.value == "FAILED"
    assert run.tags["conveyor.pipeline.failed_step"] == "train"
    assert "failed at step 'train'" in run.info.error
    assert "steps/split.npz" in {a.path for a in run.artifacts}
    with pytest.raises(NotFound):
        local.registry.get_registered_model("cancer")
    resumed = service.run(path)
    assert _statuses(resumed)["dataset"] == _statuses(resumed)["split"] == "cached"
    assert _statuses(resumed)["train"] == "ran" and resumed.model_version == 1
    assert caught.value.exit_code == 1


def test_a_failed_gate_registers_nothing(local: Workspace, tmp_path: Path) -> None:
    result = PipelineService(local).run(write_pipeline(tmp_path, tune=None), ["gate.thresholds.roc_auc.min=0.9999"])
    assert result.gate is not None and not result.gate.passed
    assert any(reason.startswith("roc_auc") and "< min 0.9999" in reason for reason in result.gate.reasons)
    assert _statuses(result)["register"] == "skipped" and result.model_version is None
    with pytest.raises(NotFound):
        local.registry.get_registered_model("cancer")
    assert local.tracking.get_run(result.run_id).tags["conveyor.pipeline.gate"] == "failed"


def test_the_candidate_must_beat_the_champion_on_the_same_test_rows(local: Workspace, tmp_path: Path) -> None:
    service = PipelineService(local)
    path = write_pipeline(tmp_path, tune=None)
    champion = service.run(path)
    worse = service.run(path, ["train.params.C=0.00001", "gate.beat_champion.by=0.01"])
    assert not worse.gate.passed
    assert f"does not beat cancer@champion (version 1) at {champion.metrics['roc_auc']:.4f}" in worse.gate.reasons[-1]
    assert [v.version for v in local.registry.list_model_versions("cancer")] == [1]


def test_reproduce_confirms_a_run_with_byte_identical_model_files(local: Workspace, tmp_path: Path) -> None:
    service = PipelineService(local)
    original = service.run(write_pipeline(tmp_path))
    outcome = service.reproduce(original.run_id)
    assert outcome.metrics_match and outcome.identical_model
    assert outcome.metrics["roc_auc"] == (original.metrics["roc_auc"], original.metrics["roc_auc"])
    assert all(report.status != "cached" for report in outcome.result.steps)
    assert outcome.result.model_version is None
    tags = local.tracking.get_run(outcome.result.run_id).tags
    assert tags["conveyor.reproduces"] == original.run_id
    assert tags["conveyor.reproduction.identical_model"] == "true"
    rerun = service.run(tmp_path / "pipeline.yaml")
    assert rerun.step("register").detail == "unchanged: cancer version 1 holds these very model files"


def test_reproduce_refuses_a_run_that_is_not_a_pipeline_run(local: Workspace) -> None:
    with conveyor.start_run(experiment="plain", workspace=local) as run:
        run.log_metric("x", 1.0)
    with pytest.raises(ValidationError, match="is not a pipeline run"):
        PipelineService(local).reproduce(run.id)


def test_segment_models_are_one_version_that_dispatches_rows_by_segment(local: Workspace, tmp_path: Path) -> None:
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    path = write_pipeline(tmp_path, tune=None, split={"method": "random", "test_size": 0.25},
                          train={"estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 500},
                                 "segment_by": "site"})
    result = PipelineService(local).run(path)
    assert "2 segment models" in result.step("train").detail
    model = local.registry.load_model("models:/cancer@champion")
    data = pd.read_parquet(tmp_path / "data" / "cancer.parquet")
    for site in ("north", "south"):
        rows = data[data["site"] == site]
        train = rows.loc[rows.index.isin(_train_index(local, result.run_id, data))]
        alone = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, random_state=3))
        alone.fit(train[FEATURES], train["malignant"])
        assert np.array_equal(model.predict_proba(rows[[*FEATURES, "site"]]), alone.predict_proba(rows[FEATURES]))
    unknown = data.head(2).assign(site="east")[[*FEATURES, "site"]]
    with pytest.raises(ConveyorError, match=r"column 'site' has 2 value\(s\) outside the levels the model knows, e.g. 'east'"):
        model.predict(unknown)


def _train_index(workspace: Workspace, run_id: str, data) -> np.ndarray:  # noqa: ANN001
    from conveyor.pipelines.splitting import Split

    return Split.from_bytes(workspace.tracking.read_artifact(run_id, "steps/split.npz")).train


@pytest.mark.slow
def test_ray_finds_the_same_best_parameters_as_local_processes(local: Workspace, tmp_path: Path) -> None:
    service = PipelineService(local)
    path = write_pipeline(tmp_path, gate=None, register=None)
    on_local = service.run(path, ["executor.type=local", "executor.workers=2"])
    on_ray = service.run(path, ["executor.type=ray", "executor.workers=2"], use_cache=False)
    assert on_ray.best_params == on_local.best_params
    assert on_ray.metrics == on_local.metrics
    assert local.tracking.get_run(on_ray.run_id).params["executor.type"] == "ray"
