"""Model quality over time: predictions joined with the labels that arrived for them.

A window's metrics are computed only from its labelled rows; with fewer than
``min_labels`` of them the window is reported as ``insufficient`` (no value), never as
zero, so late labels show up as windows filling in when monitoring runs again.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn import metrics

from conveyor.monitoring.results import Point

CHECK = "model_quality"
CALIBRATION_BINS = 10
CLASSIFICATION = ("roc_auc", "precision", "recall", "f1", "log_loss", "calibration_error", "accuracy")
REGRESSION = ("rmse", "mae", "mape")


def classification_metrics(labels: pd.Series, predicted: pd.Series, score: pd.Series,
                           classes: Sequence[Any]) -> dict[str, float | None]:
    """Binary metrics with the last class as positive (``score`` is its probability);
    several classes get accuracy and macro precision, recall and F1."""
    truth = labels.astype(str).to_numpy()
    guess = predicted.astype(str).to_numpy()
    names = [str(c) for c in classes]
    values: dict[str, float | None] = {"accuracy": float(metrics.accuracy_score(truth, guess))}
    if len(names) != 2:
        for name, fn in (("precision", metrics.precision_score), ("recall", metrics.recall_score), ("f1", metrics.f1_score)):
            values[name] = float(fn(truth, guess, average="macro", labels=names, zero_division=0))
        return values
    positive = truth == names[-1]
    flagged = guess == names[-1]
    probability = np.clip(score.to_numpy(dtype=float), 1e-15, 1 - 1e-15)
    both = len(np.unique(positive)) == 2
    values["roc_auc"] = float(metrics.roc_auc_score(positive, probability)) if both else None
    values["precision"] = float(metrics.precision_score(positive, flagged, zero_division=0))
    values["recall"] = float(metrics.recall_score(positive, flagged, zero_division=0))
    values["f1"] = float(metrics.f1_score(positive, flagged, zero_division=0))
    values["log_loss"] = float(metrics.log_loss(positive, probability, labels=[False, True]))
    values["calibration_error"] = expected_calibration_error(positive, probability)
    return values


def expected_calibration_error(positive: np.ndarray, probability: np.ndarray) -> float:
    """Mean gap between predicted probability and observed rate over ten probability
    bins, weighted by rows: 0 for a perfectly calibrated model."""
    slots = np.minimum((probability * CALIBRATION_BINS).astype(int), CALIBRATION_BINS - 1)
    total = 0.0
    for slot in np.unique(slots):
        inside = slots == slot
        total += inside.sum() * abs(probability[inside].mean() - positive[inside].mean())
    return float(total / len(probability))


def regression_metrics(labels: pd.Series, predicted: pd.Series) -> dict[str, float | None]:
    """RMSE, MAE and MAPE (over rows whose label is not zero)."""
    truth = pd.to_numeric(labels, errors="coerce").to_numpy(dtype=float)
    guess = pd.to_numeric(predicted, errors="coerce").to_numpy(dtype=float)
    keep = np.isfinite(truth) & np.isfinite(guess)
    truth, guess = truth[keep], guess[keep]
    error = guess - truth
    nonzero = truth != 0
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "mape": float(np.mean(np.abs(error[nonzero] / truth[nonzero]))) if nonzero.any() else None,
    }


def model_quality(labelled: pd.DataFrame, predicted_rows: int, classes: Sequence[Any] | None,
                  min_labels: int) -> list[Point]:
    """Points for one window: each task metric, the labelled rows and the label coverage.

    ``labelled`` holds the window's predictions that have a label (columns prediction,
    score, label); ``classes`` is None for a regressor.
    """
    count = len(labelled)
    names = CLASSIFICATION if classes is not None else REGRESSION
    points = [Point(CHECK, "labelled_rows", float(count), "info", rows=predicted_rows),
              Point(CHECK, "label_coverage", count / predicted_rows if predicted_rows else None, "info", rows=predicted_rows)]
    if count < min_labels:
        return points + [Point(CHECK, name, None, "insufficient", threshold=float(min_labels), rows=count) for name in names]
    values = (classification_metrics(labelled["label"], labelled["prediction"], labelled["score"], classes)
              if classes is not None else regression_metrics(labelled["label"], labelled["prediction"]))
    return points + [Point(CHECK, name, values.get(name), "ok" if values.get(name) is not None else "insufficient",
                           rows=count) for name in names]
