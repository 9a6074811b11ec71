"""Performance metrics and plot data, computed with scikit-learn and SciPy.

Every metric function returns all its keys; a metric undefined on the rows given
(ROC AUC when only one class occurs, MAPE when every target is zero) is ``None``
rather than NaN, so it survives JSON and shows as a gap, not a number.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import ks_2samp
from sklearn import metrics as skm

from conveyor.governance.validation.schemas import (
    CalibrationBin,
    PredictionSample,
    RocCurve,
)

MAX_CURVE_POINTS = 200
SAMPLE_SIZE = 500
CALIBRATION_BINS = 10


def _defined(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def binary_metrics(y: np.ndarray, proba: np.ndarray) -> dict[str, float | None]:
    """Metrics of a binary classifier; ``y`` holds 0/1 codes, ``proba`` one column per class.

    Column 1 of ``proba`` is the positive class. KS is the largest distance between
    the score distributions of the two classes.
    """
    score = proba[:, 1]
    both = len(np.unique(y)) == 2
    auc = float(skm.roc_auc_score(y, score)) if both else None
    return {
        "roc_auc": auc,
        "pr_auc": float(skm.average_precision_score(y, score)) if both else None,
        "log_loss": float(skm.log_loss(y, proba, labels=[0, 1])),
        "brier": float(skm.brier_score_loss(y, score, pos_label=1)),
        "ks": float(ks_2samp(score[y == 1], score[y == 0]).statistic) if both else None,
        "gini": 2 * auc - 1 if auc is not None else None,
        "accuracy": float(skm.accuracy_score(y, proba.argmax(axis=1))),
    }


def multiclass_metrics(y: np.ndarray, proba: np.ndarray) -> dict[str, float | None]:
    """Metrics of a multiclass classifier; ROC AUC is one-vs-rest, macro-averaged.

    ROC AUC needs every class among the rows, so it is ``None`` otherwise.
    """
    classes = np.arange(proba.shape[1])
    every_class = len(np.unique(y)) == len(classes)
    predicted = proba.argmax(axis=1)
    return {
        "roc_auc": float(skm.roc_auc_score(y, proba, multi_class="ovr", average="macro", labels=classes))
        if every_class
        else None,
        "log_loss": float(skm.log_loss(y, proba, labels=classes)),
        "accuracy": float(skm.accuracy_score(y, predicted)),
        "f1_macro": float(skm.f1_score(y, predicted, average="macro")),
    }


def regression_metrics(y: np.ndarray, predicted: np.ndarray) -> dict[str, float | None]:
    """RMSE, MAE, MAPE (over rows whose target is not zero) and R²."""
    nonzero = y != 0
    return {
        "rmse": float(skm.root_mean_squared_error(y, predicted)),
        "mae": float(skm.mean_absolute_error(y, predicted)),
        "mape": float(skm.mean_absolute_percentage_error(y[nonzero], predicted[nonzero])) if nonzero.any() else None,
        "r2": _defined(skm.r2_score(y, predicted)) if len(y) > 1 else None,
    }


def calibration_bins(y: np.ndarray, score: np.ndarray, bins: int = CALIBRATION_BINS) -> list[CalibrationBin]:
    """Equal-width bins of the positive-class probability: mean prediction against observed rate."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, score, side="right") - 1, 0, bins - 1)
    result = []
    for i in range(bins):
        inside = index == i
        count = int(inside.sum())
        result.append(
            CalibrationBin(
                lower=float(edges[i]),
                upper=float(edges[i + 1]),
                count=count,
                mean_predicted=float(score[inside].mean()) if count else None,
                observed_rate=float(y[inside].mean()) if count else None,
            )
        )
    return result


def _downsample(fpr: np.ndarray, tpr: np.ndarray) -> tuple[list[float], list[float]]:
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), MAX_CURVE_POINTS)).round().astype(int))
    return fpr[keep].tolist(), tpr[keep].tolist()


def roc_curves(y: np.ndarray, proba: np.ndarray, labels: Sequence[str]) -> list[RocCurve]:
    """ROC curves with at most ``MAX_CURVE_POINTS`` points each.

    Binary: the positive class (column 1) only. Multiclass: each class against the
    rest. Classes absent from ``y``, or present on every row, get no curve.
    """
    columns = [1] if proba.shape[1] == 2 else range(proba.shape[1])
    curves = []
    for column in columns:
        positive = y == column
        if positive.all() or not positive.any():
            continue
        fpr, tpr, _ = skm.roc_curve(positive, proba[:, column])
        xs, ys = _downsample(fpr, tpr)
        curves.append(RocCurve(label=labels[column], fpr=xs, tpr=ys))
    return curves


def prediction_sample(y: np.ndarray, predicted: np.ndarray, size: int = SAMPLE_SIZE) -> PredictionSample:
    """Up to ``size`` (actual, predicted) pairs, drawn with a fixed seed so reports are reproducible."""
    rows = np.random.default_rng(0).choice(len(y), size=min(size, len(y)), replace=False)
    return PredictionSample(actual=y[rows].tolist(), predicted=predicted[rows].tolist())


def auc_standard_error(positive: np.ndarray, score: np.ndarray) -> float | None:
    """Standard error of ROC AUC by Hanley & McNeil (1982); ``None`` with a single class."""
    n1 = int(positive.sum())
    n0 = len(positive) - n1
    if n1 == 0 or n0 == 0:
        return None
    auc = float(skm.roc_auc_score(positive, score))
    q1 = auc / (2 - auc)
    q2 = 2 * auc**2 / (1 + auc)
    variance = (auc * (1 - auc) + (n1 - 1) * (q1 - auc**2) + (n0 - 1) * (q2 - auc**2)) / (n1 * n0)
    return float(np.sqrt(max(variance, 0.0)))


def rmse_standard_error(y: np.ndarray, predicted: np.ndarray) -> float | None:
    """Standard error of RMSE by the delta method on the mean squared error."""
    squared = (y - predicted) ** 2
    mse = squared.mean()
    if len(y) < 2 or mse == 0:
        return None
    return float(squared.std(ddof=1) / np.sqrt(len(y)) / (2 * np.sqrt(mse)))
