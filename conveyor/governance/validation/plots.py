"""The charts of a validation report, as base64 PNG strings for inline ``<img>`` tags.

Figures are built with ``matplotlib.figure.Figure`` and the Agg canvas directly,
never ``pyplot``: no global state, no display needed, safe in a server thread.
"""

from __future__ import annotations

import base64
import io

from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from conveyor.governance.validation.schemas import (
    CalibrationBin,
    Curves,
    PredictionSample,
    SegmentResult,
)

CANDIDATE, CHAMPION, ALERT, MUTED = "#1f5fa8", "#9a9a9a", "#c0392b", "#bbbbbb"
MAX_PSI_BARS = 30


def _png(figure: Figure) -> str:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _diagonal(axes: Axes, label: str) -> None:
    axes.plot([0, 1], [0, 1], linestyle="--", color=MUTED, linewidth=1, label=label)


def roc_plot(curves: Curves) -> str:
    """ROC curves of the candidate (solid) and the champion (grey, dashed)."""
    figure = Figure(figsize=(5, 4.2))
    axes = figure.subplots()
    for curve in curves.roc:
        axes.plot(curve.fpr, curve.tpr, linewidth=2, label=f"candidate: {curve.label}")
    for curve in curves.champion_roc:
        axes.plot(curve.fpr, curve.tpr, color=CHAMPION, linestyle="-.", label=f"champion: {curve.label}")
    _diagonal(axes, "chance")
    axes.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC curve", xlim=(0, 1), ylim=(0, 1.01))
    axes.legend(loc="lower right", fontsize="small")
    return _png(figure)


def calibration_plot(bins: list[CalibrationBin]) -> str:
    """Observed rate against mean predicted probability per bin, point size by row count."""
    filled = [b for b in bins if b.count]
    largest = max(b.count for b in filled)
    figure = Figure(figsize=(5, 4.2))
    axes = figure.subplots()
    _diagonal(axes, "perfect calibration")
    axes.plot([b.mean_predicted for b in filled], [b.observed_rate for b in filled], color=CANDIDATE, linewidth=1)
    axes.scatter([b.mean_predicted for b in filled], [b.observed_rate for b in filled], color=CANDIDATE,
                 s=[20 + 180 * b.count / largest for b in filled], zorder=3, label="bins (size: rows)")
    axes.set(xlabel="Mean predicted probability", ylabel="Observed rate", title="Calibration",
             xlim=(0, 1), ylim=(0, 1.01))
    axes.legend(loc="upper left", fontsize="small")
    return _png(figure)


def actual_vs_predicted_plot(sample: PredictionSample) -> str:
    """A scatter of predicted against actual values, with the identity line."""
    figure = Figure(figsize=(5, 4.2))
    axes = figure.subplots()
    axes.scatter(sample.actual, sample.predicted, s=8, alpha=0.5, color=CANDIDATE)
    low = min(*sample.actual, *sample.predicted)
    high = max(*sample.actual, *sample.predicted)
    axes.plot([low, high], [low, high], linestyle="--", color=MUTED, linewidth=1)
    axes.set(xlabel="Actual", ylabel="Predicted", title="Predicted against actual (sample)")
    return _png(figure)


def groups_plot(result: SegmentResult, metric: str, overall: float | None) -> str:
    """Rows per group (top) and the primary metric per group against the overall value (bottom).

    The metric is drawn as points on a zoomed axis, so small differences show;
    groups the stability rule flags are red.
    """
    names = [g.value for g in result.groups]
    colours = [ALERT if g.unstable else CANDIDATE for g in result.groups]
    figure = Figure(figsize=(max(5.0, 0.5 * len(names) + 2), 5.2))
    rows_axes, metric_axes = figure.subplots(2, 1, sharex=True)
    positions = range(len(names))
    rows_axes.bar(positions, [g.rows for g in result.groups], color=MUTED)
    rows_axes.set(ylabel="Rows", title=f"{metric} by {result.column}")
    values = [g.metrics.get(metric) for g in result.groups]
    metric_axes.scatter(positions, [v if v is not None else float("nan") for v in values], color=colours, s=40, zorder=3)
    if overall is not None:
        metric_axes.axhline(overall, color="black", linestyle="--", linewidth=1, label=f"overall {overall:.3g}")
        metric_axes.legend(loc="best", fontsize="small")
    metric_axes.grid(axis="y", color="#eeeeee")
    metric_axes.set(ylabel=metric)
    metric_axes.set_xticks(list(positions), names, rotation=45 if len(names) > 4 else 0, ha="right", fontsize="small")
    return _png(figure)


def psi_plot(psi: dict[str, float], threshold: float) -> str:
    """Horizontal PSI bars, largest first (at most ``MAX_PSI_BARS``), with the threshold line."""
    shown = sorted(psi.items(), key=lambda item: item[1], reverse=True)[:MAX_PSI_BARS]
    shown.reverse()
    figure = Figure(figsize=(6, max(2.5, 0.3 * len(shown) + 1.2)))
    axes = figure.subplots()
    axes.barh([name for name, _ in shown], [value for _, value in shown],
              color=[ALERT if value > threshold else CANDIDATE for _, value in shown])
    axes.axvline(threshold, color="black", linestyle="--", linewidth=1, label=f"threshold {threshold:.3g}")
    axes.set(xlabel="Population stability index", title="Drift from the training data")
    axes.legend(loc="lower right", fontsize="small")
    return _png(figure)
