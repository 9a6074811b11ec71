"""Scenario 1 of ``bench/pipelines.py``: the platform's overhead on one training.

The same LightGBM training on the same Parquet file, written twice: as a plain script
(read the file, time split, fit, ``predict_proba``, ROC AUC: the physical limit) and as
a Conveyor pipeline ``dataset → split → train → evaluate`` (no gate, no register) run
with ``use_cache=False``. The two alternate in one process (``bench/pipelines.py`` runs
``warm_up`` first); every pipeline run is followed by a cached rerun (every step's inputs
unchanged).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from _pipelines_clock import Measured, measure
from _pipelines_common import (
    Context,
    grid,
    median,
    percent,
    seconds,
    spread,
    write_pipeline,
)
from _pipelines_data import CATEGORICAL as CATEGORIES
from _pipelines_data import (
    FEATURES,
    TARGET,
    TIME,
    every_nth,
    flights,
    with_categories,
    write,
)

from conveyor.pipelines.service import PipelineService

TEST_SIZE = 0.2
GOAL = 0.05  # the goal: overhead under 5% of a one-minute training
STEPS = {"dataset": "read Parquet", "split": "time split", "train": "fit", "evaluate": "predict_proba + ROC AUC"}


def document(params: dict[str, Any]) -> dict[str, Any]:
    """The pipeline: the flights file, a time split, one LightGBM fit, the test metrics."""
    return {
        "name": "flights-delay",
        "task": "binary",
        "target": TARGET,
        "seed": 42,
        "dataset": {"path": "flights.parquet", "categorical": CATEGORIES},
        "split": {"method": "time", "time_column": TIME, "test_size": TEST_SIZE},
        "train": {"estimator": "lightgbm.LGBMClassifier", "params": params},
    }


def plain_training(path: Path, params: dict[str, Any]) -> dict[str, float]:
    """The script a user would write; seconds of each part, and the test ROC AUC."""
    import lightgbm
    from sklearn.metrics import roc_auc_score

    started = time.perf_counter()
    frame = with_categories(pd.read_parquet(path))
    read = time.perf_counter()
    order = np.argsort(frame[TIME].to_numpy(), kind="stable")
    boundary = round(len(frame) * (1 - TEST_SIZE))
    train, test = frame.iloc[order[:boundary]], frame.iloc[order[boundary:]]
    split = time.perf_counter()
    model = lightgbm.LGBMClassifier(**params).fit(train[FEATURES], train[TARGET])
    fit = time.perf_counter()
    auc = roc_auc_score(test[TARGET], model.predict_proba(test[FEATURES])[:, 1])
    done = time.perf_counter()
    return {"dataset": read - started, "split": split - read, "train": fit - split, "evaluate": done - fit,
            "roc_auc": float(auc)}


def prepare(ctx: Context, rows: int | None, name: str, params: dict[str, Any], copies: int = 1) -> Path:
    """The flights file and the pipeline file beside it; returns the pipeline's path."""
    folder = ctx.cfg.folder / name
    frame = flights(copies)
    write(frame if rows is None else every_nth(frame, rows), folder / "flights.parquet")
    return write_pipeline(folder / "pipeline.yaml", document(params))


def warm_up(ctx: Context) -> None:
    """An untimed small run of both, so that this process's imports (the pipeline stack,
    LightGBM, Optuna, Matplotlib) and first-call costs are paid before any scenario's timing."""
    params = {**ctx.cfg.overhead_params, "n_estimators": 10}
    path = prepare(ctx, 3_000, "overhead-warm-up", params)
    plain_training(path.with_name("flights.parquet"), params)
    PipelineService(ctx.workspace("overhead-warm-up")).run(path, use_cache=False)


def run(ctx: Context) -> None:
    """Time both, print the tables and the overhead line."""
    cfg = ctx.cfg
    params = cfg.overhead_params
    path = prepare(ctx, cfg.overhead_rows, "overhead", params, cfg.overhead_copies)
    service = PipelineService(ctx.workspace("overhead"))
    plain: list[Measured] = []
    piped: list[Measured] = []
    cached: list[Measured] = []
    for repeat in range(cfg.repeats):
        order = ("plain", "pipeline") if repeat % 2 == 0 else ("pipeline", "plain")
        for which in order:
            if which == "plain":
                plain.append(measure(plain_training, path.with_name("flights.parquet"), params))
            else:
                piped.append(measure(service.run, path, use_cache=False))
                cached.append(measure(service.run, path, use_cache=True))
        ctx.console.print(f"  [dim]repeat {repeat + 1}/{cfg.repeats}: plain {plain[-1].wall:,.1f} s, "
                          f"pipeline {piped[-1].wall:,.1f} s, cached rerun {cached[-1].wall:,.1f} s; load average {os.getloadavg()[0]:.2f}[/]")
    report(ctx, path, plain, piped, cached)


def report(ctx: Context, path: Path, plain: list[Measured], piped: list[Measured], cached: list[Measured]) -> None:
    """Tables 1a (wall times, overhead) and 1b (where the time goes)."""
    cfg = ctx.cfg
    rows = piped[0].result.steps[0].detail.split(" rows")[0] + " flights rows"
    if cfg.overhead_copies > 1:
        rows += f": the real ones + {cfg.overhead_copies - 1} jittered synthetic copies"
    plain_wall, piped_wall, cached_wall = (median([m.wall for m in runs]) for runs in (plain, piped, cached))
    overhead = (piped_wall - plain_wall) / plain_wall
    pairs = [(p.wall - q.wall) / q.wall for p, q in zip(piped, plain)]
    auc_plain, auc_piped = plain[-1].result["roc_auc"], piped[-1].result.metrics["roc_auc"]
    same = abs(auc_plain - auc_piped) < 1e-6
    if not same:
        ctx.report.fail(f"overhead: the pipeline's test ROC AUC {auc_piped:.6f} differs from the plain script's {auc_plain:.6f}")
    mark = ctx.report.target("overhead < 5%", overhead < GOAL)
    trees = cfg.overhead_params["n_estimators"]
    leaves = cfg.overhead_params["num_leaves"]
    ctx.report.table(
        (f"1a. one LightGBM training ({rows}; {trees} trees × {leaves} leaves, time split 80/20): wall "
         f"seconds, median of {cfg.repeats} (range)"),
        [("plain script: read, split, fit, predict_proba, ROC AUC (limit)", seconds(plain_wall) + spread([m.wall for m in plain]),
          f"test ROC AUC {auc_plain:.4f}; {median([m.cores for m in plain]):.2f} cores busy"),
         ("Conveyor pipeline, use_cache=False (no gate, no register)", seconds(piped_wall) + spread([m.wall for m in piped]),
          (f"overhead {percent(overhead)} {mark}; per pair {percent(min(pairs))}..{percent(max(pairs))}; "
           f"{'same' if same else 'DIFFERENT'} ROC AUC")),
         ("Conveyor pipeline rerun, cache on (every step cached)", seconds(cached_wall) + spread([m.wall for m in cached]),
          f"{cached_wall / plain_wall:.1%} of the plain script")],
    )
    table_steps(ctx, plain, piped, cached)
    ctx.line(f"overhead: pipeline {seconds(piped_wall)} vs plain script {seconds(plain_wall)} = {percent(overhead)} "
             f"of the plain wall time (goal < {GOAL:.0%}); cached rerun {seconds(cached_wall)}; test ROC AUC "
             f"{'the same' if same else 'DIFFERENT'} ({auc_piped:.4f})")


def table_steps(ctx: Context, plain: list[Measured], piped: list[Measured], cached: list[Measured]) -> None:
    """Table 1b: each step of the pipeline against the same part of the plain script."""
    def step_seconds(runs: list[Measured], step: str) -> float:
        return median([r.result.step(step).seconds for r in runs])

    rows = []
    for step, part in STEPS.items():
        ours, limit = step_seconds(piped, step), median([m.result[step] for m in plain])
        rows.append((f"{step} (plain: {part})", seconds(limit), seconds(ours), f"{ours - limit:+,.2f} s",
                     seconds(step_seconds(cached, step))))
    bookkeeping = [m.wall - sum(s.seconds for s in m.result.steps) for m in piped]
    cached_rest = [m.wall - sum(s.seconds for s in m.result.steps) for m in cached]
    rows.append(("outside the steps: create/end the run, log the spec, skipped steps", "", seconds(median(bookkeeping)),
                 f"{median(bookkeeping):+,.2f} s", seconds(median(cached_rest))))
    plain_wall, piped_wall = median([m.wall for m in plain]), median([m.wall for m in piped])
    rows.append(("total (wall)", seconds(plain_wall), seconds(piped_wall), f"{piped_wall - plain_wall:+,.2f} s",
                 seconds(median([m.wall for m in cached]))))
    grid(ctx.console, f"1b. where the time goes: seconds per step, median of {ctx.cfg.repeats} (result.steps)",
         ["step", "plain script", "pipeline", "extra", "cached rerun"], rows)
