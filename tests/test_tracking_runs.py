"""Run lifecycle and logging, on SQLite and PostgreSQL alike."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import conveyor
from conveyor.core.workspace import Workspace
from conveyor.errors import Conflict, NotFound, ValidationError
from conveyor.tracking.schemas import RunStatus

pytestmark = pytest.mark.both_modes


def test_a_run_records_params_tags_and_metrics(workspace: Workspace) -> None:
    with conveyor.start_run(experiment="credit", name="lgbm-1", params={"model": "lgbm", "lr": 0.1},
                            tags={"team": "risk"}, workspace=workspace) as run:
        run.log_param("depth", 6)
        run.log_metric("auc", 0.8, step=0)
        run.log_metric("auc", 0.9, step=1)
        run.log_metrics({"loss": 0.3, "acc": 0.7}, step=1)
        run.set_tag("stage", "dev")
    data = conveyor.get_run(run.id, workspace=workspace)
    assert data.info.status == RunStatus.FINISHED
    assert data.info.name == "lgbm-1"
    assert data.info.end_time is not None and data.info.end_time >= data.info.start_time
    assert data.params == {"model": "lgbm", "lr": "0.1", "depth": "6"}
    assert data.metrics == {"auc": 0.9, "loss": 0.3, "acc": 0.7}
    assert data.tags == {"team": "risk", "stage": "dev"}


def test_the_latest_metric_is_the_highest_step_not_the_last_logged(workspace: Workspace) -> None:
    with conveyor.start_run(workspace=workspace) as run:
        run.log_metric("auc", 0.95, step=10)
        run.log_metric("auc", 0.5, step=2)
    assert conveyor.get_run(run.id, workspace=workspace).metrics["auc"] == 0.95


def test_metric_history_keeps_every_point_in_step_order(workspace: Workspace) -> None:
    with conveyor.start_run(workspace=workspace) as run:
        for step in range(50):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        run.log_metric("loss", float("nan"), step=50)
    history = conveyor.get_metric_history(run.id, "loss", workspace=workspace)
    assert list(history["step"]) == list(range(51))
    assert history["value"].iloc[0] == 1.0
    assert history["value"].iloc[49] == pytest.approx(1 / 50)
    assert math.isnan(history["value"].iloc[50])


def test_an_exception_in_the_block_marks_the_run_failed_with_the_error(workspace: Workspace) -> None:
    with pytest.raises(ZeroDivisionError), conveyor.start_run(workspace=workspace) as run:
        run.log_metric("before", 1.0)
        1 / 0  # noqa: B018
    data = conveyor.get_run(run.id, workspace=workspace)
    assert data.info.status == RunStatus.FAILED
    assert "ZeroDivisionError" in (data.info.error or "")
    assert data.metrics == {"before": 1.0}


def test_params_are_immutable(workspace: Workspace) -> None:
    with conveyor.start_run(params={"lr": 0.1}, workspace=workspace) as run:
        run.log_param("lr", 0.1)
        with pytest.raises(Conflict, match=r"param 'lr' .* is already '0.1'") as info:
            run.log_param("lr", 0.2)
    assert info.value.field == "params.lr"


def test_bad_keys_and_values_are_rejected_by_name(workspace: Workspace) -> None:
    with conveyor.start_run(workspace=workspace) as run:
        with pytest.raises(ValidationError, match=r"metric key 'a\\tb' is invalid"):
            run.log_metric("a\tb", 1.0)
        with pytest.raises(ValidationError, match=r"metric 'auc' must be a number, got 'high'"):
            run.log_metric("auc", "high")  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match=r"metric 'auc' step must be an integer"):
            run.log_metric("auc", 1.0, step=1.5)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match=r"param 'big' is 7000 characters"):
            run.log_param("big", "x" * 7000)


def test_nested_runs_point_to_their_parent(workspace: Workspace) -> None:
    with conveyor.start_run(experiment="tune", workspace=workspace) as parent:
        for trial in range(3):
            with conveyor.start_run(experiment="tune", parent=parent, params={"trial": trial}, workspace=workspace):
                assert conveyor.active_run() is not parent
        assert conveyor.active_run() is parent
    children = conveyor.search_runs("tune", filter=f"attributes.parent_id = '{parent.id}'", workspace=workspace)
    assert sorted(children["params.trial"]) == ["0", "1", "2"]


def test_logging_to_a_missing_run_is_not_found(tracking) -> None:  # noqa: ANN001
    with pytest.raises(NotFound, match="run 'nope' does not exist"):
        tracking.log_metrics("nope", {"a": 1.0})


def test_every_run_captures_environment_command_and_seed(workspace: Workspace) -> None:
    conveyor.seed_everything(1234)
    with conveyor.start_run(workspace=workspace) as run:
        pass
    data = conveyor.get_run(run.id, workspace=workspace)
    assert data.info.seed == 1234
    assert data.info.user and data.info.host and data.info.command
    assert data.info.python_version.count(".") == 2
    environment = workspace.tracking.read_artifact(run.id, "_conveyor/environment.txt").decode()
    assert "numpy==" + np.__version__ in environment
    assert "pandas==" + pd.__version__ in environment


def test_artifacts_files_folders_tables_and_figures_round_trip(workspace: Workspace, tmp_path: Path) -> None:
    folder = tmp_path / "report"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("alpha")
    (folder / "sub" / "b.json").write_text(json.dumps({"b": 2}))
    frame = pd.DataFrame({"x": [1, 2, 3], "y": ["a", "b", "c"]})
    figure, axis = plt.subplots()
    axis.plot([0, 1], [0, 1])
    with conveyor.start_run(workspace=workspace) as run:
        run.log_artifact(folder)
        run.log_artifact(folder / "a.txt", "single/alpha.txt")
        run.log_table(frame, "tables/sample")
        run.log_figure(figure, "plots/roc")
    service = workspace.tracking
    paths = {a.path for a in conveyor.get_run(run.id, workspace=workspace).artifacts}
    assert {"report/a.txt", "report/sub/b.json", "single/alpha.txt", "tables/sample.parquet", "plots/roc.png"} <= paths
    assert service.read_artifact(run.id, "report/sub/b.json") == b'{"b": 2}'
    target = service.download_artifact(run.id, "tables/sample.parquet", tmp_path / "out.parquet")
    pd.testing.assert_frame_equal(pd.read_parquet(target), frame)
    assert service.read_artifact(run.id, "plots/roc.png")[:8] == b"\x89PNG\r\n\x1a\n"


def test_artifact_paths_cannot_escape_the_run(workspace: Workspace, tmp_path: Path) -> None:
    file = tmp_path / "a.txt"
    file.write_text("x")
    with conveyor.start_run(workspace=workspace) as run, pytest.raises(ValidationError, match="must be relative"):
        run.log_artifact(file, "../../etc/passwd")


def test_datasets_record_hash_schema_rows_and_source(workspace: Workspace, tmp_path: Path) -> None:
    frame = pd.DataFrame({"income": [1.0, None, 3.0], "grade": ["A", "B", "A"]})
    path = tmp_path / "train.parquet"
    frame.to_parquet(path)
    with conveyor.start_run(workspace=workspace) as run:
        from_frame = run.log_dataset(frame, name="loans", context="train")
        from_file = run.log_dataset(path, name="loans-file", context="eval")
    same = conveyor.tracking.datasets.describe(frame.copy())
    changed = conveyor.tracking.datasets.describe(frame.assign(income=[1.0, 2.0, 3.0]))
    assert from_frame.digest == same.digest != changed.digest
    assert from_frame.rows == 3 and from_file.rows == 3
    schema = json.loads(from_frame.data_schema)
    assert schema[0] == {"name": "income", "dtype": "float64", "nullable": True}
    assert from_file.source == str(path.resolve())
    inputs = {(i.name, i.context) for i in conveyor.get_run(run.id, workspace=workspace).inputs}
    assert inputs == {("loans", "train"), ("loans-file", "eval")}


def test_deleted_runs_leave_search_but_stay_readable(workspace: Workspace) -> None:
    with conveyor.start_run(experiment="d", workspace=workspace) as keep, conveyor.start_run(
        experiment="d", workspace=workspace
    ) as gone:
        pass
    workspace.tracking.delete_run(gone.id)
    assert list(conveyor.search_runs("d", workspace=workspace)["run_id"]) == [keep.id]
    assert len(conveyor.search_runs("d", include_deleted=True, workspace=workspace)) == 2
    assert conveyor.get_run(gone.id, workspace=workspace).info.deleted


def test_compare_runs_puts_differences_first(workspace: Workspace) -> None:
    with conveyor.start_run(params={"model": "lr", "seed": 1}, workspace=workspace) as a:
        a.log_metric("auc", 0.7)
    with conveyor.start_run(params={"model": "rf", "seed": 1}, workspace=workspace) as b:
        b.log_metric("auc", 0.8)
    table = conveyor.compare_runs([a.id, b.id], workspace=workspace)
    assert list(table.index[:4]) == ["run_name", "status", "metrics.auc", "params.model"]
    assert table.loc["params.model", a.id] == "lr" and table.loc["params.model", b.id] == "rf"
    assert table.loc["params.seed", a.id] == table.loc["params.seed", b.id] == "1"


def test_experiments_are_created_once_and_listed(workspace: Workspace) -> None:
    conveyor.create_experiment("churn", "who leaves", workspace=workspace)
    with pytest.raises(Conflict, match="experiment 'churn' already exists"):
        conveyor.create_experiment("churn", workspace=workspace)
    with conveyor.start_run(experiment="churn", workspace=workspace):
        pass
    names = [e.name for e in conveyor.list_experiments(workspace=workspace)]
    assert names.count("churn") == 1


def test_history_across_flushes_is_ordered_by_step_and_keeps_infinities(workspace: Workspace) -> None:
    with conveyor.start_run(workspace=workspace) as run:
        run.log_metric("gain", 3.0, step=3)
        run.flush()
        run.log_metric("gain", float("inf"), step=1)
        run.log_metric("gain", -2.5, step=2)
        run.flush()
        run.log_metric("gain", 0.0, step=0)
    history = conveyor.get_metric_history(run.id, "gain", workspace=workspace)
    assert list(history["step"]) == [0, 1, 2, 3]
    assert list(history["value"]) == [0.0, float("inf"), -2.5, 3.0]
    assert conveyor.get_run(run.id, workspace=workspace).metrics["gain"] == 3.0
    assert workspace.tracking.count_metric_points() == 4
