"""Scenario 3 of ``bench/pipelines.py``: one small forecasting model per segment.

200 segments of US employment (``_pipelines_data.employment``), features lag_1, lag_2,
lag_12 and the calendar month, a small ``LGBMRegressor`` (one thread) per segment, trained
on the months before 2017 (``train.segment_by``). Compared: the pipeline on a local Ray
with two workers, on the local executor with two workers and with one, against a plain
sequential loop fitting the same 200 models in this process (the limit for one core).
The pipeline's train step also stores every segment's model, loads them back (what
serving will load) and its evaluate step scores the 2017-2019 months.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
from _harness import times
from _pipelines_clock import Measured, StepClock, measure
from _pipelines_common import Context, faster, grid, median, seconds, write_pipeline
from _pipelines_data import (
    MONTH,
    SEGMENT,
    SERIES_CUTOFF,
    SERIES_FEATURES,
    SERIES_TARGET,
    employment,
    write,
)

from conveyor.pipelines.service import PipelineService

ESTIMATOR = "lightgbm.LGBMRegressor"
MODES = {  # label, overrides
    "plain": ("plain sequential loop, one fit per segment (limit for one core)", None),
    "local-1": ("Conveyor local executor, 1 worker", ["executor.type=local", "executor.workers=1"]),
    "local-2": ("Conveyor local executor, 2 workers", ["executor.type=local", "executor.workers=2"]),
    "ray-2": ("Conveyor local Ray, 2 workers", ["executor.type=ray", "executor.workers=2"]),
}


def document(params: dict[str, Any]) -> dict[str, Any]:
    """The per-segment forecasting pipeline."""
    return {
        "name": "employment-segments",
        "task": "forecasting",
        "target": SERIES_TARGET,
        "seed": 42,
        "dataset": {"path": "employment.parquet"},
        "split": {"method": "time", "time_column": MONTH, "cutoff": SERIES_CUTOFF},
        "train": {"estimator": ESTIMATOR, "params": params, "segment_by": SEGMENT},
    }


def plain_loop(path: Path, params: dict[str, Any], clock: StepClock) -> dict[str, Any]:
    """Read the file, keep the training months, fit one model per segment."""
    import lightgbm

    frame = pd.read_parquet(path)
    train = frame[frame[MONTH] < pd.Timestamp(SERIES_CUTOFF)]
    clock.step_started("train")
    models = {}
    for name, rows in train.groupby(SEGMENT, sort=True):
        models[name] = lightgbm.LGBMRegressor(**params, random_state=42).fit(rows[SERIES_FEATURES], rows[SERIES_TARGET])
        clock.advanced("train", len(models), "")
    return {"models": len(models)}


def run(ctx: Context) -> None:
    """Run every variant ``repeats`` times (the order rotates), then print the table."""
    cfg = ctx.cfg
    folder = cfg.folder / "segments"
    frame = employment(cfg.segments)
    data = write(frame, folder / "employment.parquet")
    path = write_pipeline(folder / "pipeline.yaml", document(cfg.segment_params))
    service = PipelineService(ctx.workspace("segments"))
    runs: dict[str, list[tuple[Measured, StepClock]]] = {mode: [] for mode in MODES}
    names = list(MODES)
    for repeat in range(cfg.repeats):
        for mode in names[repeat % len(names):] + names[:repeat % len(names)]:
            overrides, clock = MODES[mode][1], StepClock()
            if overrides is None:
                measured = measure(plain_loop, data, cfg.segment_params, clock)
            else:
                measured = measure(service.run, path, overrides=overrides, use_cache=False, progress=clock)
            runs[mode].append((measured, clock))
            ctx.console.print(f"  [dim]repeat {repeat + 1}/{cfg.repeats}, {mode}: {measured.wall:,.1f} s; "
                              f"load average {os.getloadavg()[0]:.2f}[/]")
    report(ctx, frame, runs)


def _phases(mode: str, measured: Measured, clock: StepClock) -> dict[str, float]:
    """Seconds of: the train step (the plain loop: its fits), from its start to the first and
    to the last fitted model, and after the last (the pipeline storing and loading back)."""
    done, begun = clock.items["train"], clock.begun["train"]
    step = done[-1] - begun if mode == "plain" else measured.result.step("train").seconds
    return {"step": step, "first": done[0] - begun, "fitting": done[-1] - begun, "after": step - (done[-1] - begun),
            "rate": (len(done) - 1) / (done[-1] - done[0]) if len(done) > 1 and done[-1] > done[0] else 0.0}


def report(ctx: Context, frame: pd.DataFrame, runs: dict[str, list[tuple[Measured, StepClock]]]) -> None:
    """Table 3: wall, the train step's phases, cores, ratios to the plain loop."""
    cfg = ctx.cfg
    segments = frame[SEGMENT].nunique()
    wall = {mode: median([m.wall for m, _ in items]) for mode, items in runs.items()}
    cores = {mode: median([m.cores for m, _ in items]) for mode, items in runs.items()}
    phases = {mode: {key: median([_phases(mode, m, c)[key] for m, c in items]) for key in ("step", "first", "fitting", "after", "rate")}
              for mode, items in runs.items()}
    counts = {mode: len(items[-1][1].items["train"]) for mode, items in runs.items()}
    if any(count != segments for count in counts.values()):
        ctx.report.fail(f"segments: expected {segments} models everywhere, got {counts}")
    rows = []
    for mode, items in runs.items():
        one = phases[mode]
        plain = mode == "plain"
        rows.append((MODES[mode][0], seconds(wall[mode]), seconds(one["step"]), seconds(one["first"]), seconds(one["fitting"]),
                     f"{one['rate']:,.0f}", "" if plain else seconds(one["after"]), f"{cores[mode]:.2f}",
                     "" if plain else times(wall[mode] / wall["plain"]),
                     "" if plain else f"{items[-1][0].result.metrics.get('mase') or 0:.3f}"))
    trees = cfg.segment_params["n_estimators"]
    grid(ctx.console,
         f"3. {segments} per-segment LGBMRegressor models ({trees} trees, 1 thread each) on {len(frame):,} monthly rows, "
         f"median of {cfg.repeats}. Train step: the pipeline's (or the loop's fits); first/last model: seconds from the "
         "step's start (executor start-up included); after: storing and loading back the models",
         ["variant", "wall", "train step", "first model", "last model", "models/s between", "after", "cores busy",
          "wall vs loop", "test MASE"], rows)
    ctx.line(f"segments: {segments} models; pipeline wall time / plain loop's ({seconds(wall['plain'])}): "
             f"{times(wall['local-1'] / wall['plain'])} local 1 worker, {times(wall['local-2'] / wall['plain'])} local "
             f"2 workers, {times(wall['ray-2'] / wall['plain'])} Ray 2 workers; fitting rate once started "
             f"{phases['local-2']['rate'] / phases['plain']['rate']:.2f}× the loop's on local 2 workers, "
             f"{phases['ray-2']['rate'] / phases['plain']['rate']:.2f}× on Ray 2 workers; train step on Ray 2 workers "
             f"{faster(phases['ray-2']['step'], phases['local-2']['step'])} than on local 2 workers")
