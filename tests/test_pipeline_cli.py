"""``conveyor pipeline`` and ``conveyor runs reproduce`` from a shell, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from pipeline_support import document, write_pipeline

from conveyor.core.config import load_settings
from conveyor.core.workspace import Workspace


def _workspace(tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    root.mkdir()
    return Workspace(load_settings(root))


def test_run_prints_each_step_then_a_cached_rerun_and_reproduce(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    ws = _workspace(tmp_path)
    path = write_pipeline(tmp_path, tune=None)
    first = run_cli(ws, "pipeline", "run", str(path))
    assert first.returncode == 0, first.stderr
    for step in ("dataset", "split", "preprocess", "train", "evaluate", "gate", "register"):
        assert any(line.split()[1:2] == [step] for line in first.stdout.splitlines()), (step, first.stdout)
    assert "cancer version 1, validation passed, now cancer@champion" in first.stdout
    second = run_cli(ws, "pipeline", "run", str(path), "--json")
    result = json.loads(second.stdout)
    assert {s["step"]: s["status"] for s in result["steps"]}["train"] == "cached"
    reproduced = run_cli(ws, "runs", "reproduce", result["run_id"])
    assert reproduced.returncode == 0, reproduced.stderr
    assert "metrics match; model files byte-identical" in reproduced.stdout


def test_a_bad_pipeline_file_is_one_line_and_exit_2(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    ws = _workspace(tmp_path)
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(document(split={"method": "time", "time_column": "admitted_at", "test_size": 2})))
    result = run_cli(ws, "pipeline", "run", str(path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {path} line {_line(path, 'test_size')}, key split.test_size: Input should be less than 1"
    ]


def test_a_failing_step_is_one_line_naming_the_step(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    ws = _workspace(tmp_path)
    path = write_pipeline(tmp_path, tune=None, dataset={"path": "data/cancer.parquet", "drop": ["site"]},
                          train={"estimator": "sklearn.linear_model.LogisticRegression", "features": ["site"]})
    result = run_cli(ws, "pipeline", "run", str(path))
    assert result.returncode == 2
    assert result.stderr.strip() == ("error: pipeline 'cancer' failed at step 'split': train.features: "
                                     "the dataset has no column 'site'")


def test_init_writes_a_template_that_validates(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    ws = _workspace(tmp_path)
    target = tmp_path / "credit"
    written = run_cli(ws, "pipeline", "init", "--template", "credit-scoring", "--dir", str(target))
    assert written.returncode == 0, written.stderr
    checked = run_cli(ws, "pipeline", "validate", str(target / "pipeline.yaml"))
    assert checked.returncode == 0 and "pipeline credit-scoring (binary) is valid" in checked.stdout
    unknown = run_cli(ws, "pipeline", "init", "--template", "churn", "--dir", str(tmp_path / "x"))
    assert unknown.returncode == 2 and "unknown template 'churn'" in unknown.stderr


def _line(path: Path, key: str) -> int:
    return next(i for i, row in enumerate(path.read_text().splitlines(), 1) if row.strip().startswith(f"{key}:"))
