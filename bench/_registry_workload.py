"""The data, names and timers every tool in the model registry benchmark shares.

Imported by ``registry.py`` and by its three workers: ``_registry_conveyor.py`` and
``_registry_limit.py`` (the project's virtualenv) and ``_registry_mlflow.py`` (the MLflow
virtualenv). It needs only the standard library, numpy and pandas, which both have, so
every tool reads the same Parquet files and is timed by the same code.

Workers speak the JSON-lines protocol of ``_workload.py``: one JSON argument, then
``{"result": {...}}`` on stdout.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _workload import emit

EXPERIMENT = "bench-registry"
SKLEARN_MODEL = "bench-model"
LIGHTGBM_MODEL = "bench-lgbm"
ALIAS = "champion"
TARGET = "churned"
NUMERIC = [f"x{i:02d}" for i in range(15)]
STRINGS = {
    "region": ["east", "north", "south", "west"],
    "channel": ["phone", "store", "web"],
    "plan": [f"plan-{i}" for i in range(8)],
}
EXAMPLE_ROWS = 5  # rows of MLflow's input_example


# data ----------------------------------------------------------------------------------


def make_frame(rows: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """``rows`` rows of 15 float and 3 string features and a 0/1 target that depends on both."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({name: rng.normal(size=rows) for name in NUMERIC})
    for name, levels in STRINGS.items():
        frame[name] = pd.Series(np.asarray(levels, dtype=object)[rng.integers(0, len(levels), rows)], dtype="str")
    score = frame["x00"] - 0.5 * frame["x01"] + 0.3 * frame["x02"] * frame["x03"]
    score += (frame["region"] == "north") * 0.8 - (frame["plan"] == "plan-0") * 0.6
    target = (rng.random(rows) < 1.0 / (1.0 + np.exp(-score.to_numpy()))).astype(np.int64)
    return frame, pd.Series(target, name=TARGET)


def read_train(path: str | Path) -> tuple[pd.DataFrame, pd.Series]:
    """The training features and target written by ``registry.py``."""
    frame = pd.read_parquet(path)
    return frame.drop(columns=[TARGET]), frame[TARGET]


def read_score(path: str | Path) -> pd.DataFrame:
    """The rows to predict on."""
    return pd.read_parquet(path)


def lightgbm_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame LightGBM trains and predicts on: string features as categoricals with fixed levels."""
    out = frame.copy()
    for name, levels in STRINGS.items():
        out[name] = pd.Categorical(out[name].astype(object), categories=levels)
    return out


# timers ---------------------------------------------------------------------------------


def median_seconds(call: Callable[[], Any], repeats: int, before: Callable[[], Any] | None = None) -> dict[str, Any]:
    """Median seconds of ``repeats`` calls after one untimed warm-up; ``before`` runs untimed
    ahead of each call (e.g. emptying a cache). Returns ``median``, ``samples`` and ``last``."""
    if before is not None:
        before()
    last = call()
    samples = []
    for _ in range(repeats):
        if before is not None:
            before()
        start = time.perf_counter()
        last = call()
        samples.append(time.perf_counter() - start)
    return {"median": statistics.median(samples), "samples": samples, "last": last}


def predict_figures(predict: Callable[[pd.DataFrame], Any], score: pd.DataFrame, calls: int, repeats: int) -> dict[str, Any]:
    """One-row latency (median of ``calls`` calls, seconds) and the median seconds of
    predicting all of ``score`` (``repeats`` times), each after warm-up calls."""
    one = score.iloc[:1]
    for _ in range(3):
        predict(one)
    samples = []
    for _ in range(calls):
        start = time.perf_counter()
        predict(one)
        samples.append(time.perf_counter() - start)
    batch = median_seconds(lambda: predict(score), repeats)
    return {"latency": statistics.median(samples), "batch": batch["median"], "rows": len(score)}


def paired(wrapped: Callable[[pd.DataFrame], Any], native: Callable[[pd.DataFrame], Any], frame: pd.DataFrame,
           calls: int) -> dict[str, float]:
    """Median seconds of ``wrapped(frame)`` and ``native(frame)`` called alternately, ``calls``
    times each, so both see the same machine state: the difference is the wrapper's own cost."""
    for _ in range(3):
        wrapped(frame)
        native(frame)
    outer, inner = [], []
    for _ in range(calls):
        start = time.perf_counter()
        wrapped(frame)
        middle = time.perf_counter()
        native(frame)
        outer.append(middle - start)
        inner.append(time.perf_counter() - middle)
    return {"wrapped": statistics.median(outer), "native": statistics.median(inner)}


def save_probabilities(values: Any, path: str | Path) -> None:
    """Keep a tool's class probabilities on the score rows, for the parent to compare."""
    np.save(path, np.asarray(values, dtype=np.float64))


def run_worker(commands: dict[str, Callable[[dict[str, Any]], dict[str, Any]]], **extra: Any) -> None:
    """A worker's entry point: run the command named in the JSON argument and emit its
    result with the worker's wall time (and any ``extra`` facts)."""
    args = json.loads(sys.argv[1])
    started = time.perf_counter()
    result = commands[args["command"]](args)
    emit({"result": {**result, "wall": time.perf_counter() - started, **extra}})
