"""Batch scoring: a file larger than the chunk size scores row for row like in-process,
keeps the input's other columns, and refuses bad input in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from registry_support import CATEGORICAL, NUMERIC, credit_frame, log_version

from conveyor.core.config import load_settings
from conveyor.core.workspace import Workspace
from conveyor.errors import ValidationError
from conveyor.serving.batch import score_file


@pytest.fixture
def local(tmp_path: Path) -> Workspace:
    """A workspace whose 'credit' champion is version 1."""
    root = tmp_path / "ws"
    root.mkdir()
    workspace = Workspace(load_settings(root))
    workspace.registry.create_registered_model("credit", risk_tier="low")
    log_version(workspace, "credit", credit_frame())
    workspace.registry.set_alias("credit", "champion", 1)
    yield workspace
    workspace.close()


def _input(tmp_path: Path, rows: int) -> tuple[Path, pd.DataFrame]:
    frame = credit_frame(rows=rows, seed=4)[NUMERIC + CATEGORICAL].assign(application_id=np.arange(rows))
    path = tmp_path / "applications.parquet"
    frame.to_parquet(path, row_group_size=1000)
    return path, frame


def test_a_file_larger_than_the_chunk_scores_row_for_row_like_in_process(local: Workspace, tmp_path: Path) -> None:
    path, frame = _input(tmp_path, 2_500)
    seen: list[int] = []
    summary = score_file(local.registry, "credit@champion", path, tmp_path / "out" / "scores.parquet", chunk_rows=700,
                         progress=lambda done, total: seen.append(done))
    assert (summary.rows, summary.chunks, summary.version) == (2_500, 4, 1)
    assert seen == [700, 1400, 2100, 2500]
    scores = pd.read_parquet(summary.output)
    model = local.registry.load_model("models:/credit@champion")
    proba = model.predict_proba(frame)
    assert scores["application_id"].tolist() == frame["application_id"].tolist()
    assert np.array_equal(scores["probability_1"].to_numpy(), proba[:, 1])
    assert scores["prediction"].tolist() == model.predict(frame).tolist()
    assert set(scores["model_version"]) == {1}
    assert not (tmp_path / "out" / "scores.parquet.partial").exists()


def test_a_chunk_that_does_not_fit_names_its_rows_and_writes_no_output(local: Workspace, tmp_path: Path) -> None:
    path, frame = _input(tmp_path, 1_500)
    frame.loc[1_200, "grade"] = "Z"
    frame.to_parquet(path)
    with pytest.raises(ValidationError, match=r"rows 1000-1499: .*'Z'"):
        score_file(local.registry, "credit", path, tmp_path / "scores.parquet", chunk_rows=500)
    assert not (tmp_path / "scores.parquet").exists() and not (tmp_path / "scores.parquet.partial").exists()


def test_the_cli_scores_and_refuses_a_missing_file_in_one_line(local: Workspace, tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    path, _ = _input(tmp_path, 300)
    done = run_cli(local, "score", "credit@champion", "-i", str(path), "-o", str(tmp_path / "s.parquet"),
                   "--chunk-rows", "100")
    assert done.returncode == 0, done.stderr
    assert "scored 300 rows in 3 chunk(s) with credit version 1" in done.stdout
    missing = run_cli(local, "score", "credit", "-i", str(tmp_path / "nope.parquet"), "-o", str(tmp_path / "x.parquet"))
    assert missing.returncode == 2
    assert missing.stderr.strip().startswith("error: --input") and len(missing.stderr.strip().splitlines()) == 1
