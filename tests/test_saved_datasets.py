"""A training set saved with its lineage can be fetched as saved, rebuilt, and traced from a run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from features_support import feature_store, write_parquet
from test_feature_apply import stats_frame, write_defs

import conveyor
from conveyor.errors import NotFound
from conveyor.features import FeatureStore

pytestmark = pytest.mark.both_modes


@pytest.fixture
def store(tmp_path: Path, mode: str) -> FeatureStore:
    write_parquet(tmp_path / "data" / "stats.parquet", stats_frame())
    write_defs(tmp_path)
    with feature_store(tmp_path, mode) as store:
        store.apply()
        yield store


def labels() -> pd.DataFrame:
    return pd.DataFrame({"customer_id": [3, 5, 7, 999], "label": [1, 0, 1, 0],
                         "event_timestamp": pd.to_datetime(["2026-02-01", "2026-03-01", "2026-03-15", "2026-03-15"])})


def test_a_saved_dataset_records_its_lineage_and_is_logged_as_run_input(store: FeatureStore) -> None:
    job = store.get_historical_features(labels(), "credit_v1")
    with conveyor.start_run(experiment="credit", workspace=store.workspace) as run:
        saved = store.save_dataset(job, "credit-training", run=run)
    assert (saved.version, saved.rows, saved.feature_service, saved.feature_service_version) == (1, 4, "credit_v1", 1)
    assert saved.features == [{"view": "customer_stats", "version": 1, "features": ["amount", "orders"],
                               "outputs": ["amount", "orders"]}]
    pd.testing.assert_frame_equal(store.load_dataset("credit-training"), job.to_df())
    [logged] = conveyor.get_run(run.id, workspace=store.workspace).inputs
    assert (logged.name, logged.source) == ("credit-training", "conveyor-dataset:credit-training/v1")
    assert store.save_dataset(job, "credit-training").version == 2


def test_rebuilding_a_dataset_matches_until_its_source_data_changes(store: FeatureStore) -> None:
    saved = store.save_dataset(store.get_historical_features(labels(), "credit_v1"), "credit-training")
    rebuilt, same = store.rebuild_dataset("credit-training")
    assert same and len(rebuilt) == saved.rows
    later = stats_frame(5).assign(customer_id=3, event_timestamp=pd.Timestamp("2026-01-31"), amount=-1.0)
    write_parquet(store.settings.workspace / "data" / "stats.parquet", pd.concat([stats_frame(), later]))
    rebuilt, same = store.rebuild_dataset("credit-training", 1)
    assert not same and rebuilt["amount"].iloc[0] == -1.0


def test_an_unknown_dataset_is_not_found(store: FeatureStore) -> None:
    with pytest.raises(NotFound, match="no saved dataset 'nope'"):
        store.get_dataset("nope")
