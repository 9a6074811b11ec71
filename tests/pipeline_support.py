"""A small real data set and pipeline documents for the pipeline tests.

Breast cancer (scikit-learn's bundled copy, 569 rows) with a made-up admission time and
a two-value segment column, written as Parquet next to the pipeline file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from sklearn.datasets import load_breast_cancer

FEATURES = ["mean radius", "mean texture", "mean smoothness", "worst area", "worst concavity"]


def write_data(folder: Path) -> Path:
    """data/cancer.parquet: five features, ``malignant``, ``admitted_at`` and ``site``."""
    frame = load_breast_cancer(as_frame=True).frame[[*FEATURES, "target"]].rename(columns={"target": "malignant"})
    rng = np.random.default_rng(7)
    frame["admitted_at"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 365, len(frame)), "D")
    frame["site"] = np.where(rng.random(len(frame)) < 0.5, "north", "south")
    (folder / "data").mkdir(parents=True, exist_ok=True)
    path = folder / "data" / "cancer.parquet"
    frame.to_parquet(path)
    return path


def document(**changes: Any) -> dict[str, Any]:
    """A binary pipeline over the data: time split, scaling, logistic regression, a small tune."""
    base: dict[str, Any] = {
        "name": "cancer",
        "task": "binary",
        "target": "malignant",
        "seed": 3,
        "dataset": {"path": "data/cancer.parquet"},
        "split": {"method": "time", "time_column": "admitted_at", "test_size": 0.25, "folds": 3},
        "preprocess": {"transforms": [{"columns": FEATURES, "transform": "standard"}]},
        "tune": {"n_trials": 6, "parallelism": 2, "space": {"C": {"type": "float", "low": 0.01, "high": 10, "log": True}}},
        "train": {"estimator": "sklearn.linear_model.LogisticRegression", "params": {"max_iter": 500}},
        "evaluate": {},
        "gate": {"thresholds": {"roc_auc": {"min": 0.8}}, "beat_champion": {"by": 0.0}},
        "register": {"model": "cancer", "alias": "champion", "risk_tier": "low"},
    }
    for key, value in changes.items():
        if value is None:
            base.pop(key, None)
        else:
            base[key] = value
    return base


def write_pipeline(folder: Path, **changes: Any) -> Path:
    """pipeline.yaml (and its data) in ``folder``."""
    if not (folder / "data" / "cancer.parquet").exists():
        write_data(folder)
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(document(**changes), sort_keys=False))
    return path
