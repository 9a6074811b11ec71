"""The dataset's time window (``dataset.since``/``dataset.until``): a run trains on exactly
the rows inside it, whatever the time zones, the step cache keys on it, and bad or empty
windows are refused naming the setting."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from features_support import T0, write_parquet
from pipeline_support import document, write_pipeline

from conveyor.core.config import load_settings
from conveyor.core.workspace import Workspace
from conveyor.errors import ValidationError
from conveyor.features import (
    Entity,
    Feature,
    FeatureService,
    FeatureStore,
    FeatureView,
    FileSource,
)
from conveyor.pipelines.data import load_dataset
from conveyor.pipelines.loading import parse_pipeline
from conveyor.pipelines.outputs import PipelineResult
from conveyor.pipelines.service import PipelineService

SPRING_TO_SUMMER = ["dataset.timestamp_column=admitted_at", "dataset.since=2024-03-01", "dataset.until=2024-09-01"]


@pytest.fixture
def local(tmp_path: Path) -> Iterator[Workspace]:
    """A workspace on the embedded defaults."""
    root = tmp_path / "ws"
    root.mkdir()
    workspace = Workspace(load_settings(root))
    yield workspace
    workspace.close()


def _quick_pipeline(folder: Path) -> Path:
    """The cancer pipeline without tuning, gate or registration: the dataset is what matters."""
    return write_pipeline(folder, tune=None, gate=None, register=None)


def _admitted(folder: Path, since: str, until: str) -> int:
    admitted = pd.read_parquet(folder / "data" / "cancer.parquet")["admitted_at"]
    return int(((admitted >= pd.Timestamp(since)) & (admitted < pd.Timestamp(until))).sum())


def _statuses(result: PipelineResult) -> dict[str, str]:
    return {report.step: report.status for report in result.steps}


def test_a_windowed_run_trains_on_exactly_the_rows_in_the_window(local: Workspace, tmp_path: Path) -> None:
    path = _quick_pipeline(tmp_path)
    expected = _admitted(tmp_path, "2024-03-01", "2024-09-01")
    assert 0 < expected < 569
    result = PipelineService(local).run(path, SPRING_TO_SUMMER)
    run = local.tracking.get_run(result.run_id)
    assert [(d.context, d.rows) for d in run.inputs] == [("train", expected)]
    assert (run.params["dataset.since"], run.params["dataset.until"]) == ("2024-03-01", "2024-09-01")
    trained = pd.read_parquet(io.BytesIO(local.tracking.read_artifact(result.run_id, "steps/dataset.parquet")))
    assert trained["admitted_at"].min() >= pd.Timestamp("2024-03-01")
    assert trained["admitted_at"].max() < pd.Timestamp("2024-09-01")
    assert result.step("dataset").detail.startswith(f"{expected:,} rows")


def test_the_dataset_step_cache_is_keyed_on_the_window(local: Workspace, tmp_path: Path) -> None:
    service = PipelineService(local)
    path = _quick_pipeline(tmp_path)
    first = service.run(path, SPRING_TO_SUMMER)
    again = service.run(path, SPRING_TO_SUMMER)
    assert _statuses(again)["dataset"] == "cached"
    wider = service.run(path, [*SPRING_TO_SUMMER, "dataset.until=2024-12-01"])
    assert _statuses(wider)["dataset"] == "ran"
    assert local.tracking.get_run(wider.run_id).inputs[0].rows == _admitted(tmp_path, "2024-03-01", "2024-12-01")
    assert wider.dataset_sha256 != first.dataset_sha256


def test_time_zones_on_either_side_compare_as_utc(local: Workspace, tmp_path: Path) -> None:
    """A tz-aware column against naive bounds, and a naive column against bounds with an
    offset: naive times are UTC."""
    write_pipeline(tmp_path)
    frame = pd.read_parquet(tmp_path / "data" / "cancer.parquet")
    frame["admitted_utc"] = frame["admitted_at"].dt.tz_localize("UTC").dt.tz_convert("America/New_York")
    frame.to_parquet(tmp_path / "data" / "cancer.parquet")
    on_the_bounds = frame["admitted_at"].isin([pd.Timestamp("2024-03-01"), pd.Timestamp("2024-12-01")])
    assert on_the_bounds.sum() == 3  # so a bound off by the New York offset would change the count
    expected = _admitted(tmp_path, "2024-03-01", "2024-12-01")

    def rows(column: str, since: str, until: str) -> int:
        dataset = {"path": "data/cancer.parquet", "timestamp_column": column, "since": since, "until": until}
        return len(load_dataset(parse_pipeline(document(dataset=dataset)), tmp_path, local).frame)

    assert rows("admitted_utc", "2024-03-01", "2024-12-01") == expected
    assert rows("admitted_at", "2024-03-01T01:00:00+01:00", "2024-11-30T19:00:00-05:00") == expected
    assert rows("admitted_utc", "2024-02-29T19:00:00-05:00", "2024-12-01T00:00:00Z") == expected


def test_a_feature_service_dataset_keeps_the_entity_rows_in_the_window(local: Workspace, tmp_path: Path) -> None:
    customer = Entity("customer", join_keys=["customer_id"])
    stats = FeatureView("customer_stats", [customer], FileSource("data/stats.parquet"), "event_timestamp",
                        [Feature("amount", "float64")])
    write_parquet(local.settings.workspace / "data" / "stats.parquet", pd.DataFrame({
        "customer_id": np.arange(10), "event_timestamp": pd.Series([T0] * 10, dtype="datetime64[us]"),
        "amount": np.arange(10, dtype=float),
    }))
    with FeatureStore(workspace=local) as store:
        store.apply([customer, stats, FeatureService("amounts", [stats])])
    days = pd.to_timedelta(np.arange(30), unit="D")
    write_parquet(tmp_path / "data" / "labels.parquet", pd.DataFrame({
        "customer_id": np.arange(30) % 10, "event_timestamp": (T0 + days).astype("datetime64[us]"),
        "malignant": np.arange(30) % 2,
    }))
    dataset = {"feature_service": "amounts", "entities": {"path": "data/labels.parquet"},
               "since": str((T0 + pd.Timedelta(days=10)).date()), "until": str((T0 + pd.Timedelta(days=20)).date())}
    loaded = load_dataset(parse_pipeline(document(dataset=dataset, split=None)), tmp_path, local)
    assert len(loaded.frame) == 10
    assert loaded.frame["amount"].notna().all()


def test_a_bad_since_is_refused_naming_dataset_since(local: Workspace, tmp_path: Path) -> None:
    path = _quick_pipeline(tmp_path)
    with pytest.raises(ValidationError, match="key dataset.since: 'yesterday' is not an ISO 8601 date") as caught:
        PipelineService(local).run(path, ["dataset.timestamp_column=admitted_at", "dataset.since=yesterday"])
    assert caught.value.field == "dataset.since"


def test_a_window_on_a_missing_column_is_refused_naming_dataset_since(local: Workspace, tmp_path: Path) -> None:
    path = _quick_pipeline(tmp_path)
    with pytest.raises(ValidationError, match="dataset.since: the dataset has no column 'event_timestamp' to window on") \
            as caught:
        PipelineService(local).run(path, ["dataset.since=2024-03-01"])
    assert caught.value.field == "dataset.since"


def test_an_empty_window_is_refused_naming_the_range(local: Workspace, tmp_path: Path) -> None:
    path = _quick_pipeline(tmp_path)
    window = ["dataset.timestamp_column=admitted_at", "dataset.since=2025-01-01", "dataset.until=2025-06-01"]
    with pytest.raises(ValidationError, match="dataset.since: none of the 569 rows has 'admitted_at' at or after "
                                              "2025-01-01 and before 2025-06-01") as caught:
        PipelineService(local).run(path, window)
    assert caught.value.field == "dataset.since"


def test_since_must_come_before_until() -> None:
    for since, until in (("2024-06-01", "2024-06-01"), ("2024-06-01", "2024-01-01")):
        dataset = {"path": "data/cancer.parquet", "since": since, "until": until}
        with pytest.raises(ValidationError, match=f"key dataset.until: 'until' \\({until}\\) must be after 'since'") \
                as caught:
            parse_pipeline(document(dataset=dataset))
        assert caught.value.field == "dataset.until"


def test_a_window_set_on_the_command_line_is_kept_as_the_text_given() -> None:
    pipeline = parse_pipeline(document(), ["dataset.since=2024-01-01", "dataset.until=2024-06-30T12:00:00Z"])
    assert pipeline.dataset.since == "2024-01-01"
    assert pipeline.dataset.until == "2024-06-30T12:00:00+00:00"


@pytest.mark.parametrize("text", ["now", "today", "", "2024-13-01"])
def test_relative_or_malformed_bounds_are_refused(text: str) -> None:
    with pytest.raises(ValidationError, match="is not an ISO 8601 date or time") as caught:
        parse_pipeline(document(dataset={"path": "data/cancer.parquet", "until": text}))
    assert caught.value.field == "dataset.until"
