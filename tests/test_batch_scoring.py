"""Batch scoring: a file larger than the chunk size scores row for row like in-process, on
this process or on Ray; entity rows are joined with a feature service point in time; the
input's other columns are kept; bad input is refused in one line and leaves no file."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from features_support import T0
from registry_support import CATEGORICAL, NUMERIC, credit_frame, log_version
from serving_support import featured_workspace

from conveyor.core.config import load_settings
from conveyor.core.workspace import Workspace
from conveyor.errors import ValidationError
from conveyor.features import (
    FeatureStore,
)
from conveyor.serving.batch import score_file
from conveyor.serving.batch_ray import Partition, plan_partitions

EXECUTORS = ["local", pytest.param("ray", marks=pytest.mark.slow)]


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    """A local Ray of 2 CPUs for the module's Ray tests, which join it (starting Ray takes seconds)."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("this process is connected to a Ray already")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture
def executor(request: pytest.FixtureRequest) -> str:
    """The executor of a test parametrized with ``EXECUTORS``, with Ray running for ``ray``."""
    if request.param == "ray":
        request.getfixturevalue("ray_cluster")
    return request.param


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Workspace]:
    """A workspace whose 'credit' champion is version 1."""
    root = tmp_path / "ws"
    root.mkdir()
    workspace = Workspace(load_settings(root))
    workspace.registry.create_registered_model("credit", risk_tier="low")
    log_version(workspace, "credit", credit_frame())
    workspace.registry.set_alias("credit", "champion", 1)
    yield workspace
    workspace.close()


def _input(tmp_path: Path, rows: int, row_group_size: int = 1000) -> tuple[Path, pd.DataFrame]:
    frame = credit_frame(rows=rows, seed=4)[NUMERIC + CATEGORICAL].assign(application_id=np.arange(rows))
    path = tmp_path / "applications.parquet"
    frame.to_parquet(path, row_group_size=row_group_size)
    return path, frame


def _assert_scored_like_in_process(workspace: Workspace, scores: pd.DataFrame, frame: pd.DataFrame) -> None:
    model = workspace.registry.load_model("models:/credit@champion")
    proba = model.predict_proba(frame)
    assert list(scores.columns) == ["application_id", "prediction", "probability_0", "probability_1", "model_version"]
    assert scores["application_id"].tolist() == frame["application_id"].tolist()
    assert np.array_equal(scores["probability_0"].to_numpy(), proba[:, 0])
    assert np.array_equal(scores["probability_1"].to_numpy(), proba[:, 1])
    assert scores["prediction"].tolist() == model.predict(frame).tolist()
    assert set(scores["model_version"]) == {1}


def test_a_file_larger_than_the_chunk_scores_row_for_row_like_in_process(local: Workspace, tmp_path: Path) -> None:
    path, frame = _input(tmp_path, 2_500)
    seen: list[int] = []
    summary = score_file(local, "credit@champion", path, tmp_path / "out" / "scores.parquet", chunk_rows=700,
                         progress=lambda done, total: seen.append(done))
    assert (summary.rows, summary.chunks, summary.version, summary.executor) == (2_500, 4, 1, "local")
    assert seen == [700, 1400, 2100, 2500]
    _assert_scored_like_in_process(local, pd.read_parquet(summary.output), frame)
    assert not (tmp_path / "out" / "scores.parquet.partial").exists()


def test_memory_holds_a_chunk_not_the_file(local: Workspace, tmp_path: Path) -> None:
    path, frame = _input(tmp_path, 200_000, row_group_size=5_000)
    before = pa.total_allocated_bytes()
    held: list[int] = []
    score_file(local, "credit", path, tmp_path / "scores.parquet", chunk_rows=5_000,
               progress=lambda done, total: held.append(pa.total_allocated_bytes() - before))
    assert len(held) == 40
    assert max(held) < pa.Table.from_pandas(frame).nbytes / 3, "a pre-buffering reader keeps the file it has read"


@pytest.mark.slow
def test_ray_scores_partitions_in_parallel_and_writes_them_in_input_order(
    local: Workspace, tmp_path: Path, ray_cluster: None
) -> None:
    path, frame = _input(tmp_path, 2_500, row_group_size=250)
    seen: list[tuple[int, int]] = []
    summary = score_file(local, "credit@champion", path, tmp_path / "scores.parquet", chunk_rows=500,
                         progress=lambda done, total: seen.append((done, total)), executor="ray", workers=2)
    assert (summary.rows, summary.chunks, summary.executor, summary.workers) == (2_500, 5, "ray", 2)
    assert seen == [(500, 2_500), (1_000, 2_500), (1_500, 2_500), (2_000, 2_500), (2_500, 2_500)]
    _assert_scored_like_in_process(local, pd.read_parquet(summary.output), frame)


def test_partitions_are_runs_of_whole_row_groups_of_at_most_chunk_rows(tmp_path: Path) -> None:
    path = tmp_path / "groups.parquet"
    with pq.ParquetWriter(path, pa.schema([("x", pa.int64())])) as writer:
        for size in [300, 300, 0, 300, 1_000, 100]:
            writer.write_table(pa.table({"x": np.zeros(size, dtype=np.int64)}))
    assert plan_partitions(pq.ParquetFile(path).metadata, chunk_rows=600) == [
        Partition(first_row=0, rows=600, row_groups=(0, 1, 2)),
        Partition(first_row=600, rows=300, row_groups=(3,)),
        Partition(first_row=900, rows=1_000, row_groups=(4,)),
        Partition(first_row=1_900, rows=100, row_groups=(5,)),
    ]


@pytest.mark.parametrize("executor", EXECUTORS, indirect=True)
def test_a_chunk_that_does_not_fit_names_its_rows_and_removes_the_partial_output(
    local: Workspace, tmp_path: Path, executor: str
) -> None:
    path, frame = _input(tmp_path, 1_500)
    frame.loc[1_200, "grade"] = "Z"
    frame.to_parquet(path, row_group_size=500)
    partial = tmp_path / "scores.parquet.partial"
    written: list[bool] = []
    with pytest.raises(ValidationError, match=r"^rows 1000-1499: .*'Z'"):
        score_file(local, "credit", path, tmp_path / "scores.parquet", chunk_rows=500, executor=executor,
                   progress=lambda done, total: written.append(partial.exists()))
    assert written == [True, True], "the first two chunks were written before the third failed"
    assert not (tmp_path / "scores.parquet").exists() and not partial.exists()


def test_the_cli_scores_and_refuses_a_missing_file_in_one_line(local: Workspace, tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    path, _ = _input(tmp_path, 300)
    done = run_cli(local, "score", "credit@champion", "-i", str(path), "-o", str(tmp_path / "s.parquet"),
                   "--chunk-rows", "100")
    assert done.returncode == 0, done.stderr
    assert "scored 300 rows in 3 chunk(s) with credit version 1" in done.stdout
    missing = run_cli(local, "score", "credit", "-i", str(tmp_path / "nope.parquet"), "-o", str(tmp_path / "x.parquet"))
    assert missing.returncode == 2
    assert missing.stderr.strip().startswith("error: --input") and len(missing.stderr.strip().splitlines()) == 1


def test_bad_executor_options_are_refused_before_any_row_is_scored(local: Workspace, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = _input(tmp_path, 10)
    out = tmp_path / "s.parquet"
    with pytest.raises(ValidationError, match=r"^--executor must be one of local, ray, got 'dask'$"):
        score_file(local, "credit", path, out, executor="dask")
    with pytest.raises(ValidationError, match=r"^--workers applies to --executor ray"):
        score_file(local, "credit", path, out, workers=4)
    with pytest.raises(ValidationError, match=r"^--workers must be at least 1$"):
        score_file(local, "credit", path, out, executor="ray", workers=0)
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ValidationError) as caught:
        score_file(local, "credit", path, out, executor="ray")
    assert caught.value.message == "--executor ray needs the ray package: pip install 'conveyor-ml[ray]'"
    assert not out.exists() and not out.with_name("s.parquet.partial").exists()


# --- entity rows joined with a feature service ----------------------------------------------

def _entity_rows(rng: np.random.Generator, rows: int) -> pd.DataFrame:
    """Customers 0-39 at times after their first stats row (each row gets features)."""
    frame = pd.DataFrame({"request_id": np.arange(rows), "customer_id": rng.integers(0, 40, rows)})
    frame["event_timestamp"] = (T0 + pd.to_timedelta(rng.integers(0, 60 * 24, rows), unit="h")).astype("datetime64[us]")
    return frame


@pytest.fixture
def featured(tmp_path: Path) -> Iterator[Workspace]:
    """A workspace whose 'risk' champion was trained on feature service 'credit_v1'."""
    workspace = featured_workspace(tmp_path / "ws")
    yield workspace
    workspace.close()


def _entity_input(tmp_path: Path, rows: int = 700) -> tuple[Path, pd.DataFrame]:
    frame = _entity_rows(np.random.default_rng(11), rows)
    path = tmp_path / "entities.parquet"
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=100)
    return path, frame


@pytest.mark.parametrize("executor", EXECUTORS, indirect=True)
def test_entity_rows_score_like_a_training_frame_built_with_get_historical_features(
    featured: Workspace, tmp_path: Path, executor: str
) -> None:
    path, entities = _entity_input(tmp_path)
    summary = score_file(featured, "risk@champion", path, tmp_path / "scores.parquet", chunk_rows=250,
                         executor=executor)
    scores = pd.read_parquet(summary.output)
    with FeatureStore(workspace=featured) as store:
        by_hand = store.get_historical_features(entities, "credit_v1").to_df()
    proba = featured.registry.load_model("models:/risk@champion").predict_proba(by_hand[["amount", "orders"]])
    assert list(scores.columns) == ["request_id", "customer_id", "event_timestamp", "prediction", "probability_0",
                                    "probability_1", "model_version"]
    pd.testing.assert_frame_equal(scores[list(entities.columns)], entities)
    # a chunk of other rows may round the last bit differently in BLAS: equal to 1e-12
    np.testing.assert_allclose(scores["probability_1"].to_numpy(), proba[:, 1], rtol=0, atol=1e-12)
    assert scores["prediction"].tolist() == proba.argmax(axis=1).tolist()
    assert summary.rows == 700


def test_a_model_input_already_present_is_scored_without_the_feature_service(featured: Workspace, tmp_path: Path) -> None:
    path, entities = _entity_input(tmp_path, rows=50)
    given = entities.assign(amount=100.0, orders=3)
    given.to_parquet(path)
    scores = pd.read_parquet(score_file(featured, "risk", path, tmp_path / "scores.parquet").output)
    proba = featured.registry.load_model("models:/risk@champion").predict_proba(given[["amount", "orders"]])
    assert np.array_equal(scores["probability_1"].to_numpy(), proba[:, 1])
    assert "amount" not in scores.columns and "customer_id" in scores.columns


@pytest.mark.parametrize(("options", "code", "message"), [
    (["--features-service", "credit_v2"], 3,
     "error: --features-service: feature service 'credit_v2' is not applied (conveyor features apply)"),
    (["--timestamp-column", "as_of"], 2, "error: --timestamp-column: the input has no column 'as_of' (columns: "),
    # the CLI prints messages as Rich markup, which swallows the "[ray]" of the extra
    (["--executor", "ray"], 2, "error: --executor ray needs the ray package: pip install 'conveyor-ml[ray]'"),
], ids=["unknown_service", "no_timestamp_column", "ray_not_installed"])
def test_the_cli_refuses_bad_feature_and_executor_options_in_one_line(
    featured: Workspace, tmp_path: Path, run_cli, options: list[str], code: int, message: str  # noqa: ANN001
) -> None:
    path, _ = _entity_input(tmp_path, rows=20)
    no_ray = tmp_path / "no_ray"
    (no_ray / "ray").mkdir(parents=True)
    (no_ray / "ray" / "__init__.py").write_text("raise ImportError('ray is not installed')\n")
    out = tmp_path / "s.parquet"
    done = run_cli(featured, "score", "risk", "-i", str(path), "-o", str(out), *options,
                   env={"PYTHONPATH": str(no_ray)})
    assert done.returncode == code, done.stderr
    assert done.stderr.strip().startswith(message) and len(done.stderr.strip().splitlines()) == 1
    assert not out.exists() and not out.with_name("s.parquet.partial").exists()


def test_the_cli_names_the_missing_join_key(featured: Workspace, tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    path, entities = _entity_input(tmp_path, rows=20)
    entities.drop(columns=["customer_id"]).to_parquet(path)
    done = run_cli(featured, "score", "risk", "-i", str(path), "-o", str(tmp_path / "s.parquet"),
                   "--features-service", "credit_v1")
    assert done.returncode == 2
    assert done.stderr.strip() == ("error: --features-service: the input has no column 'customer_id', a join key of "
                                   "feature service 'credit_v1' (columns: request_id, event_timestamp)")
