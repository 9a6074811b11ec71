"""Names, settings, data, models and formatting shared by ``bench/serving.py`` and its modules.

Only the project's virtualenv imports this module; the workers that run in the MLflow and
BentoML virtualenvs (``_serving_mlflow_save.py``, ``_serving_bento_service.py``) take what
they need as JSON arguments or environment variables instead.
"""

from __future__ import annotations

import os
import socket
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _harness import BENCH_DIR, Report
from rich.console import Console

FEATURES = [f"f{i}" for i in range(30)]
TARGET = "label"
MODELS = ("sklearn", "lightgbm")
REGISTERED = {"sklearn": "bench-serve-sklearn", "lightgbm": "bench-serve-lgbm"}
VENVS = BENCH_DIR / ".venvs"
# No tool sends usage telemetry. (``serving.py`` limits OpenMP/BLAS to one thread in its own
# environment before numpy loads, so every child process, servers included, inherits that.)
NO_TELEMETRY = {"MLFLOW_DISABLE_TELEMETRY": "true", "BENTOML_DO_NOT_TRACK": "true", "DO_NOT_TRACK": "1"}


@dataclass(frozen=True)
class Config:
    """What to run, from the command line."""

    smoke: bool
    repeats: int  # latency repeats; the figures are their medians
    train_rows: int
    trees: int  # of the LightGBM classifier
    calls: int  # timed sequential requests per latency repeat
    warmup: int  # untimed requests before them
    duration: int  # seconds of load per throughput variant
    batch_rows: int  # rows of the Parquet file of the batch scenario
    chunk_rows: int  # rows per chunk (and per row group) of the batch scenario
    competitors: bool  # False: Conveyor and the limit only
    scenarios: tuple[str, ...]
    folder: Path  # scratch folder, removed at the end


@dataclass
class Prepared:
    """The data and models every tool is given (``pickles``: one joblib file per model)."""

    features: pd.DataFrame  # training features, also the pool of request rows
    fitted: dict[str, Any]
    pickles: dict[str, Path]
    workspace: Path  # Conveyor workspace with both models registered, alias champion


@dataclass
class Context:
    """Everything a scenario needs; ``summary`` collects one line per scenario."""

    cfg: Config
    console: Console
    report: Report
    prepared: Prepared
    summary: list[str] = field(default_factory=list)

    def rows(self, count: int) -> pd.DataFrame:
        """The first ``count`` rows of the pool that requests are built from."""
        return self.prepared.features.iloc[:count]


# data and models ------------------------------------------------------------------------


def make_data(rows: int, seed: int = 7) -> tuple[pd.DataFrame, pd.Series]:
    """``rows`` rows of binary classification data with 30 numeric named columns."""
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=rows, n_features=len(FEATURES), n_informative=12, n_redundant=6,
                               class_sep=0.8, random_state=seed)
    return pd.DataFrame(x, columns=FEATURES), pd.Series(y, name=TARGET)


def train(features: pd.DataFrame, target: pd.Series, trees: int) -> dict[str, Any]:
    """StandardScaler + LogisticRegression, and a LightGBM classifier of ``trees`` trees on one thread."""
    import lightgbm as lgb
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    pipeline = Pipeline([("scale", StandardScaler()), ("classify", LogisticRegression(max_iter=1000))])
    booster = lgb.LGBMClassifier(n_estimators=trees, n_jobs=1, random_state=0, verbose=-1)
    return {"sklearn": pipeline.fit(features, target), "lightgbm": booster.fit(features, target)}


def prepare(cfg: Config, console: Console) -> Prepared:
    """Generate the data, train both models, write their joblib files, and log and register
    them in a fresh Conveyor workspace (signature from the training data, alias ``champion``)."""
    import joblib

    import conveyor

    start = time.perf_counter()
    features, target = make_data(cfg.train_rows)
    fitted = train(features, target, cfg.trees)
    pickles = {key: cfg.folder / f"{key}.joblib" for key in fitted}
    for key, model in fitted.items():
        joblib.dump(model, pickles[key])
    workspace = conveyor.open_workspace(cfg.folder / "workspace")
    for key, model in fitted.items():
        with conveyor.start_run("bench-serving", workspace=workspace) as run:
            logged = run.log_model(model, "model", training_data=features, target=target,
                                   registered_model_name=REGISTERED[key])
        assert logged.version is not None
        workspace.registry.set_alias(REGISTERED[key], "champion", logged.version.version)
    workspace.close()
    console.print(f"Trained (LightGBM: {cfg.trees} trees) and registered both models on {cfg.train_rows:,} rows "
                  f"in {time.perf_counter() - start:,.1f} s")
    return Prepared(features, fitted, pickles, cfg.folder / "workspace")


def child_env(**extra: str) -> dict[str, str]:
    """The environment of every child process: this one's plus ``NO_TELEMETRY`` and ``extra``."""
    return {**os.environ, **NO_TELEMETRY, **extra}


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# statistics and formatting -------------------------------------------------------------


def percentile(samples: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) of ``samples``."""
    return float(np.percentile(samples, q))


def median(values: list[float]) -> float:
    """The median of ``values``."""
    return statistics.median(values)


def ms(seconds: float) -> str:
    """``1.23 ms``."""
    return f"{seconds * 1000:,.2f} ms"


def per_second(count: float, what: str = "req/s") -> str:
    """``12,345 req/s``."""
    return f"{count:,.0f} {what}"


def ratio(value: float) -> str:
    """``3.2×`` (``12×`` from ten on)."""
    return f"{value:,.0f}×" if value >= 10 else f"{value:.2f}×"


def mib(size: int) -> str:
    """``123 MiB``."""
    return f"{size / 2**20:,.0f} MiB"
