"""Figures a pipeline run stores: how tuning progressed, and how the model did on test rows."""

from __future__ import annotations

from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

from conveyor.pipelines.tuning import TuneOutcome


def tuning_history(outcome: TuneOutcome) -> Any:
    """Each trial's cross-validated metric and the best so far; pruned trials marked."""
    figure, axis = plt.subplots(figsize=(6, 3.5))
    complete = [t for t in outcome.trials if not t.pruned]
    pruned = [t for t in outcome.trials if t.pruned]
    axis.scatter([t.number for t in complete], [t.value for t in complete], s=14, label="trial")
    if pruned:
        axis.scatter([t.number for t in pruned], [t.fold_values[-1] for t in pruned], s=14, marker="x", label="pruned")
    values = np.array([t.value for t in sorted(complete, key=lambda t: t.number)], dtype=float)
    best = np.maximum.accumulate(values) if outcome.direction == "maximize" else np.minimum.accumulate(values)
    axis.step(sorted(t.number for t in complete), best, where="post", color="black", label="best so far")
    axis.set(xlabel="trial", ylabel=f"cv {outcome.metric}", title="Tuning history")
    axis.legend(loc="best", fontsize=8)
    plt.close(figure)
    return figure


def evaluation_figure(task: str, y: np.ndarray, scores: np.ndarray) -> Any | None:
    """ROC and precision-recall curves (binary, anomaly) or predicted against actual
    (regression, forecasting, ranking); None for multiclass, whose report has its own."""
    if task in ("binary", "anomaly"):
        positive = scores[:, 1] if scores.ndim == 2 else scores
        if len(np.unique(y)) < 2:
            return None
        figure, (left, right) = plt.subplots(1, 2, figsize=(8, 3.5))
        RocCurveDisplay.from_predictions(y, positive, ax=left)
        PrecisionRecallDisplay.from_predictions(y, positive, ax=right)
    elif task in ("regression", "forecasting", "ranking"):
        figure, axis = plt.subplots(figsize=(4, 4))
        axis.scatter(y, scores, s=4, alpha=0.4)
        low, high = float(min(y.min(), scores.min())), float(max(y.max(), scores.max()))
        axis.plot([low, high], [low, high], color="black", linewidth=1)
        axis.set(xlabel="actual", ylabel="predicted", title="Test rows")
    else:
        return None
    plt.close(figure)
    return figure
