"""Shared set-up of the monitoring tests: a registered classifier trained on synthetic
credit data, and predictions written to the real prediction log at chosen times."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import conveyor
from conveyor.core.workspace import Workspace
from conveyor.serving.feedback import Feedback, FeedbackService
from conveyor.serving.prediction_log import (
    PredictionIndex,
    PredictionLog,
    PredictionRecord,
    new_request_id,
)

MODEL = "credit"
GRADES = ["A", "B", "C", "D"]


def applicants(rows: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    """Synthetic applicants; ``shift`` moves income down and grades toward D (riskier)."""
    rng = np.random.default_rng(seed)
    weights = np.array([0.4, 0.3, 0.2, 0.1]) if not shift else np.array([0.1, 0.2, 0.3, 0.4])
    return pd.DataFrame({
        "income": rng.normal(60 - 15 * shift, 12, rows),
        "debt_ratio": rng.beta(2, 5, rows),
        "age": rng.integers(21, 70, rows).astype(float),
        "grade": rng.choice(GRADES, rows, p=weights),
    })


def default_labels(frame: pd.DataFrame, seed: int) -> np.ndarray:
    """Who defaults: more likely with low income, high debt and a worse grade."""
    rng = np.random.default_rng(seed)
    logit = -0.06 * (frame["income"] - 60) + 4 * (frame["debt_ratio"] - 0.3) + frame["grade"].map(
        {"A": -1.0, "B": -0.3, "C": 0.3, "D": 1.0}).to_numpy() - 1.0
    return (rng.random(len(frame)) < 1 / (1 + np.exp(-logit))).astype(int)


def trained_workspace(ws: Workspace, rows: int = 4000) -> tuple[object, pd.DataFrame]:
    """Train, log with training data, register and make champion the 'credit' model."""
    train = applicants(rows, seed=1)
    target = pd.Series(default_labels(train, seed=2), name="default")
    model = make_pipeline(
        ColumnTransformer([("num", StandardScaler(), ["income", "debt_ratio", "age"]),
                           ("cat", OneHotEncoder(handle_unknown="ignore"), ["grade"])]),
        LogisticRegression(max_iter=500),
    ).fit(train, target)
    with conveyor.start_run(experiment="monitoring-tests", workspace=ws) as run:
        logged = run.log_model(model, training_data=train, target=target, registered_model_name=MODEL)
    ws.registry.set_alias(MODEL, "champion", logged.version.version)
    return model, train


def log_predictions(ws: Workspace, model: object, frame: pd.DataFrame, times: Sequence[float],
                    version: int = 1, rows_per_request: int = 1) -> list[str]:
    """Predict ``frame`` and write the requests to the workspace's prediction log at
    ``times`` (epoch seconds, one per request); returns the request ids."""
    log = PredictionLog(ws.settings.prediction_log_url, PredictionIndex(ws.metadata), flush_interval_s=60)
    proba = model.predict_proba(frame)  # type: ignore[attr-defined]
    classes = [0, 1]
    ids = []
    for index, at in enumerate(times):
        part = slice(index * rows_per_request, (index + 1) * rows_per_request)
        request_id = new_request_id()
        ids.append(request_id)
        log.record(PredictionRecord(
            request_id=request_id, time=at, deployment="credit-prod", model=MODEL, version=version,
            variant="champion", shadow=False, latency_ms=2.0 + index % 7, inputs=frame.iloc[part].reset_index(drop=True),
            fetched=[], predictions=np.asarray(classes, dtype=object)[proba[part].argmax(axis=1)],
            probabilities=proba[part], classes=classes))
    log.close()
    return ids


def give_labels(ws: Workspace, ids: Sequence[str], labels: Sequence[int], at: float) -> None:
    """Record ground truth for the first row of each request."""
    FeedbackService(ws.metadata).record([Feedback(request_id=i, row=0, label=int(y), time=at) for i, y in zip(ids, labels)])
