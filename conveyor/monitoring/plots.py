"""Plots of stored monitoring series, for the CLI."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from conveyor.errors import ValidationError


def plot_history(frame: pd.DataFrame, path: Path, title: str) -> None:
    """One line per series (metric and column) over window end, to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if frame.empty:
        raise ValidationError("no points to plot: run `conveyor monitor run` first, or widen --since", field="plot")
    figure, axes = plt.subplots(figsize=(9, 4.5))
    for (check, statistic, column), points in frame.groupby(["check", "statistic", "column"]):
        label = f"{check}.{statistic}" + (f" [{column}]" if column else "")
        axes.plot(points["window_end"], points["value"], marker="o", label=label)
    axes.set_title(title)
    axes.set_xlabel("window end (UTC)")
    axes.grid(alpha=0.3)
    if frame.groupby(["check", "statistic", "column"]).ngroups <= 12:
        axes.legend(fontsize=8)
    figure.autofmt_xdate()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
