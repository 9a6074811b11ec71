"""What the scenarios of ``bench/pipelines.py`` share: the run's settings, pipeline files,
medians and table printing."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from _harness import Report, times
from rich.console import Console
from rich.table import Table

import conveyor


@dataclass(frozen=True)
class Config:
    """What to run, from the command line (sizes differ between full and ``--smoke``)."""

    smoke: bool
    repeats: int
    folder: Path  # temporary folder of this run: data, pipeline files, workspaces
    overhead_rows: int | None  # flights rows of scenario 1 (None: all of them)
    overhead_copies: int  # scenario 1: the real flights plus copies - 1 jittered synthetic copies
    overhead_params: dict[str, Any]  # LGBMClassifier params of scenario 1
    tuning_rows: int  # flights rows of scenario 2
    trials: int
    segments: int | None  # segments of scenario 3 (None: all 200)
    segment_params: dict[str, Any]  # LGBMRegressor params of scenario 3


@dataclass
class Context:
    """The config plus where output goes."""

    cfg: Config
    console: Console
    report: Report
    summary: list[str] = field(default_factory=list)  # the ratio lines printed at the end
    opened: list[Any] = field(default_factory=list)

    def workspace(self, name: str) -> Any:
        """A fresh embedded workspace (SQLite + local files) in the run's folder."""
        folder = self.cfg.folder / "workspaces" / name
        folder.mkdir(parents=True, exist_ok=True)
        self.opened.append(conveyor.open_workspace(folder))
        return self.opened[-1]

    def close(self) -> None:
        """Close the workspaces (before their folder is removed)."""
        for workspace in self.opened:
            workspace.close()

    def line(self, text: str) -> None:
        """A ratio line: printed now and again in the summary at the end."""
        self.summary.append(text)
        self.console.print(text, soft_wrap=True)


def write_pipeline(path: Path, document: dict[str, Any]) -> Path:
    """A pipeline YAML file (its dataset path is relative to it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def median(values: Sequence[float]) -> float:
    """The median of ``values``."""
    return statistics.median(values)


def spread(values: Sequence[float]) -> str:
    """`` (41.0-44.2)`` over several repeats, nothing for one."""
    return f" ({min(values):,.1f}-{max(values):,.1f})" if len(values) > 1 else ""


def seconds(value: float) -> str:
    """``12.3 s``."""
    return f"{value:,.1f} s" if value >= 1 else f"{value:,.2f} s"


def percent(value: float) -> str:
    """``+3.1%``."""
    return f"{value * 100:+.1f}%"


def faster(ours: float, baseline: float) -> str:
    """``1.85× faster`` / ``1.20× slower`` (``ours``, ``baseline``: times)."""
    return f"{times(baseline / ours)} faster" if ours <= baseline else f"{times(ours / baseline)} slower"


def grid(console: Console, title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A Rich table whose first column is left-aligned and the others right-aligned."""
    table = Table(title=title, title_justify="left")
    for index, name in enumerate(columns):
        table.add_column(name, justify="left" if index == 0 else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
