"""Task-aware metrics for training pipelines.

One entry point, ``metrics(task, y, scores)``, scores a model on its test rows in the
way its task calls for, on top of the classification and regression metrics of
model validation. Every value is a Python float, or ``None`` when the metric is
undefined on the rows given, so results survive JSON and compare safely. Tuning,
the gate and champion comparisons read ``metric_direction`` and ``better`` to know
which way is up for each metric name.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, get_args

import numpy as np
import pandas as pd
from sklearn import metrics as skm

from conveyor.errors import ValidationError
from conveyor.governance.validation.metrics import (
    binary_metrics,
    multiclass_metrics,
    regression_metrics,
)

Task = Literal["binary", "multiclass", "regression", "forecasting", "ranking", "anomaly"]
TASKS: tuple[str, ...] = get_args(Task)

_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("roc_auc", "pr_auc", "log_loss", "brier", "ks", "gini", "accuracy", "f1"),
    "multiclass": ("roc_auc", "log_loss", "accuracy", "f1_macro"),
    "regression": ("rmse", "mae", "mape", "r2"),
    "forecasting": ("rmse", "mae", "mape", "r2", "smape", "mase"),
    "ranking": ("ndcg_at_k", "map_at_k", "rmse"),
    "anomaly": ("precision_at_k", "recall_at_k", "average_precision", "roc_auc"),
}
_PRIMARY = dict(zip(TASKS, ("roc_auc", "f1_macro", "rmse", "smape", "ndcg_at_k", "precision_at_k"), strict=True))
_MINIMIZED = frozenset({"log_loss", "brier", "rmse", "mae", "mape", "smape", "mase"})
_KNOWN = frozenset(name for names in _METRICS.values() for name in names)


def _check_task(task: str) -> None:
    if task not in TASKS:
        raise ValidationError(f"unknown task {task!r}; known: {', '.join(TASKS)}", field="task")


def metric_direction(metric: str) -> Literal["maximize", "minimize"]:
    """Whether a larger or a smaller value of ``metric`` is better."""
    if metric not in _KNOWN:
        raise ValidationError(f"unknown metric {metric!r}; known: {', '.join(sorted(_KNOWN))}", field="metric")
    return "minimize" if metric in _MINIMIZED else "maximize"


def primary_metric(task: Task) -> str:
    """The metric a pipeline tunes and gates on when it names none."""
    _check_task(task)
    return _PRIMARY[task]


def metric_names(task: Task) -> tuple[str, ...]:
    """Every key ``metrics`` returns for ``task``."""
    _check_task(task)
    return _METRICS[task]


def predict_scores(task: Task, model: Any, frame: pd.DataFrame) -> np.ndarray:
    """The model's scores on ``frame`` in the form ``metrics`` takes for ``task``.

    Classifiers give class probabilities (n, k); regressors and rankers a 1-D
    prediction. Anomaly detectors give a 1-D score where higher means more
    anomalous: the positive-class probability of a supervised model, else the
    negated ``score_samples`` or ``decision_function`` of sklearn's outlier
    detectors, whose convention is the opposite. A sklearn ``Pipeline`` exposes
    exactly the methods of its last step, so it works the same way.
    """
    _check_task(task)
    if task in ("binary", "multiclass"):
        proba = np.asarray(model.predict_proba(frame), dtype=float)
        if proba.ndim != 2:
            raise ValidationError(f"predict_proba returned shape {proba.shape}, expected (rows, classes)",
                                  field="predict_proba")
        return proba
    if task == "anomaly":
        if hasattr(model, "predict_proba"):
            return np.asarray(model.predict_proba(frame), dtype=float)[:, 1]
        if hasattr(model, "score_samples"):
            return -np.asarray(model.score_samples(frame), dtype=float).ravel()
        if hasattr(model, "decision_function"):
            return -np.asarray(model.decision_function(frame), dtype=float).ravel()
        raise ValidationError(
            f"{type(model).__name__} has no predict_proba, score_samples or decision_function to score anomalies",
            field="model",
        )
    predicted = np.asarray(model.predict(frame), dtype=float)
    if predicted.ndim == 2 and predicted.shape[1] == 1:
        predicted = predicted[:, 0]
    if predicted.ndim != 1:
        raise ValidationError(f"predict returned shape {predicted.shape}, expected one value per row", field="predict")
    return predicted


def encode_labels(task: Task, y: pd.Series, classes: Sequence | None = None) -> np.ndarray:
    """The target as ``metrics`` takes it.

    Classification: the position of each label in ``classes`` (default: the sorted
    distinct labels of ``y``), so the codes index the columns of ``predict_proba``.
    Anomaly: 1 where the label is truthy (an anomaly), else 0. Otherwise floats.
    """
    _check_task(task)
    if y.isna().any():
        raise ValidationError(f"the target has {int(y.isna().sum())} missing values", field="target")
    if task in ("binary", "multiclass"):
        known = pd.Index(sorted(y.unique()) if classes is None else list(classes))
        codes = known.get_indexer(y)
        if (codes < 0).any():
            unknown = sorted({str(label) for label in y[codes < 0].unique()})
            raise ValidationError(f"labels not among the model's classes: {', '.join(unknown[:5])}", field="target")
        return codes
    if task == "anomaly":
        return y.astype(bool).to_numpy().astype(int)
    return y.to_numpy(dtype=float)


def metrics(
    task: Task,
    y: np.ndarray,
    scores: np.ndarray,
    *,
    groups: np.ndarray | None = None,
    k: int = 10,
    mase_scale: float | None = None,
    relevant: float | None = None,
) -> dict[str, float | None]:
    """The metrics of ``task`` (keys: ``metric_names(task)``) for targets ``y`` and model ``scores``.

    ``y`` comes from ``encode_labels`` and ``scores`` from ``predict_scores``.
    Ranking averages NDCG@k and MAP@k over the queries in ``groups``: relevance is
    ``y`` itself for NDCG (graded), and a row counts as relevant for MAP when
    ``y >= relevant`` (default: ``y > 0``). Queries of one row are left out of NDCG,
    queries without a relevant row out of MAP; a query whose relevances are all 0
    counts 0 for NDCG, as in scikit-learn. Anomaly ranks rows by score and checks
    the ``k`` highest. Forecasting divides MAE by ``mase_scale`` (see ``mase_scale``).
    """
    _check_task(task)
    y, scores = np.asarray(y), np.asarray(scores, dtype=float)
    _check_inputs(task, y, scores, k)
    if task == "binary":
        return {**binary_metrics(y, scores), "f1": float(skm.f1_score(y, scores[:, 1] > 0.5, zero_division=0.0))}
    if task == "multiclass":
        return multiclass_metrics(y, scores)
    if task == "anomaly":
        return _anomaly(y.astype(int), scores, k)
    y = y.astype(float)
    if task == "regression":
        return regression_metrics(y, scores)
    if task == "forecasting":
        result = regression_metrics(y, scores)
        scale = float(mase_scale) if mase_scale and np.isfinite(mase_scale) else None
        return {**result, "smape": _smape(y, scores), "mase": result["mae"] / scale if scale else None}
    if groups is None:
        raise ValidationError(
            "ranking metrics need each row's query or user: set evaluate.group_column", field="evaluate.group_column"
        )
    groups = np.asarray(groups)
    if groups.shape != y.shape:
        raise ValidationError(f"groups has {len(groups)} rows, y has {len(y)}", field="groups")
    return {**_ranking(y, scores, groups, k, relevant), "rmse": float(skm.root_mean_squared_error(y, scores))}


def _check_inputs(task: str, y: np.ndarray, scores: np.ndarray, k: int) -> None:
    if y.ndim != 1:
        raise ValidationError(f"y must be 1-D, got shape {y.shape}", field="y")
    if len(y) == 0:
        raise ValidationError("no rows to evaluate", field="y")
    columns = task in ("binary", "multiclass")
    if scores.ndim != (2 if columns else 1):
        expected = "(rows, classes)" if columns else "one score per row"
        raise ValidationError(f"scores have shape {scores.shape}, expected {expected}", field="scores")
    if len(scores) != len(y):
        raise ValidationError(f"scores have {len(scores)} rows, y has {len(y)}", field="scores")
    if not np.isfinite(scores).all():
        raise ValidationError(f"scores hold {int((~np.isfinite(scores)).sum())} NaN or infinite values", field="scores")
    if columns:
        classes = scores.shape[1]
        if classes < 2 or (task == "binary" and classes != 2):
            raise ValidationError(f"scores have {classes} columns for a {task} task", field="scores")
        if not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= classes:
            raise ValidationError(f"y must hold class codes 0..{classes - 1}; use encode_labels", field="y")
    elif task == "anomaly" and not np.isin(y, (0, 1)).all():
        raise ValidationError("y must hold 0 (normal) or 1 (anomaly); use encode_labels", field="y")
    if task in ("ranking", "anomaly") and k < 1:
        raise ValidationError(f"k must be at least 1, got {k}", field="evaluate.k")


def _smape(y: np.ndarray, predicted: np.ndarray) -> float:
    """Symmetric MAPE as a fraction in [0, 2]; a row where target and prediction are both 0 is a perfect 0."""
    total = np.abs(y) + np.abs(predicted)
    terms = np.divide(2 * np.abs(y - predicted), total, out=np.zeros_like(total), where=total > 0)
    return float(terms.mean())


def _split_groups(groups: np.ndarray) -> list[np.ndarray]:
    """Row indices of each group, in their original order within it."""
    codes, _ = pd.factorize(groups, use_na_sentinel=False)
    order = np.argsort(codes, kind="stable")
    return np.split(order, np.flatnonzero(np.diff(codes[order])) + 1)


def _ranking(y: np.ndarray, scores: np.ndarray, groups: np.ndarray, k: int,
             relevant: float | None) -> dict[str, float | None]:
    if (y < 0).any():
        raise ValidationError("ranking relevance (y) must not be negative", field="y")
    hits = y >= relevant if relevant is not None else y > 0
    ndcgs, average_precisions = [], []
    for rows in _split_groups(groups):
        if len(rows) >= 2:
            ndcgs.append(skm.ndcg_score(y[rows][None, :], scores[rows][None, :], k=k))
        relevant_rows = int(hits[rows].sum())
        if relevant_rows:
            ranked = hits[rows][np.argsort(-scores[rows], kind="stable")][:k]
            precision = np.cumsum(ranked) / np.arange(1, len(ranked) + 1)
            average_precisions.append(float((precision * ranked).sum()) / min(k, relevant_rows))
    return {
        "ndcg_at_k": float(np.mean(ndcgs)) if ndcgs else None,
        "map_at_k": float(np.mean(average_precisions)) if average_precisions else None,
    }


def _anomaly(y: np.ndarray, scores: np.ndarray, k: int) -> dict[str, float | None]:
    top = y[np.argsort(-scores, kind="stable")[:k]]
    anomalies = int(y.sum())
    both = 0 < anomalies < len(y)
    return {
        "precision_at_k": float(top.mean()),
        "recall_at_k": float(top.sum() / anomalies) if anomalies else None,
        "average_precision": float(skm.average_precision_score(y, scores)) if anomalies else None,
        "roc_auc": float(skm.roc_auc_score(y, scores)) if both else None,
    }


def mase_scale(y_train: np.ndarray, season: int = 1, groups: np.ndarray | None = None) -> float | None:
    """The MASE denominator: in-sample MAE of the seasonal naive forecast ``y[t-season]``.

    Pairs never cross groups (series); rows are taken to be in time order within
    each group. ``None`` when no series is longer than ``season``.
    """
    if season < 1:
        raise ValidationError(f"season must be at least 1, got {season}", field="evaluate.season")
    y_train = np.asarray(y_train, dtype=float)
    if groups is not None and len(groups) != len(y_train):
        raise ValidationError(f"groups has {len(groups)} rows, y_train has {len(y_train)}", field="groups")
    series = [y_train] if groups is None else [y_train[rows] for rows in _split_groups(np.asarray(groups))]
    errors = np.concatenate([np.abs(values[season:] - values[:-season]) for values in series])
    return float(errors.mean()) if len(errors) else None


def better(metric: str, candidate: float, reference: float, margin: float = 0.0) -> bool:
    """Whether ``candidate`` beats ``reference`` by at least ``margin`` in ``metric``'s direction."""
    if metric_direction(metric) == "maximize":
        return candidate >= reference + margin
    return candidate <= reference - margin
