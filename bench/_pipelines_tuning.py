"""Scenario 2 of ``bench/pipelines.py``: a LightGBM tuning sweep, sequential and on two workers.

One pipeline (flights sample, stratified 80/20 split, 3 folds, ``tune`` over four LightGBM
parameters, then the final fit and the test metrics) run three ways: the local executor
with one worker and ``tune.parallelism=1`` (sequential), the local executor with two
workers and parallelism 2, and a local Ray with two workers and parallelism 2; plus the
user's alternative, plain Optuna ``study.optimize(n_jobs=1)`` in this process with the
same folds, the same objective and the same final fit.

Every variant uses Optuna's ``RandomSampler`` with the same seed and no pruning, so all
of them try the same parameter sets and do the same work (TPE would propose different
sets depending on how many trials had finished when it was asked).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import pandas as pd
from _pipelines_clock import Measured, StepClock, measure
from _pipelines_common import Context, faster, grid, median, seconds, write_pipeline
from _pipelines_data import (
    CATEGORICAL,
    FEATURES,
    TARGET,
    every_nth,
    flights,
    with_categories,
    write,
)

from conveyor.pipelines.service import PipelineService

SEED = 42
FOLDS = 3
SPACE: dict[str, dict[str, Any]] = {
    "n_estimators": {"type": "int", "low": 50, "high": 300},
    "num_leaves": {"type": "int", "low": 15, "high": 127, "log": True},
    "learning_rate": {"type": "float", "low": 0.02, "high": 0.3, "log": True},
    "min_child_samples": {"type": "int", "low": 10, "high": 100},
}
BASE_PARAMS = {"verbose": -1}
MODES = {  # label, overrides, trials at once
    "sequential": ("Conveyor local executor, 1 worker, parallelism 1 (sequential)",
                   ["executor.type=local", "executor.workers=1", "tune.parallelism=1"], 1),
    "optuna": ("plain Optuna study.optimize(n_jobs=1) in this process", None, 1),
    "local": ("Conveyor local executor, 2 workers, parallelism 2",
              ["executor.type=local", "executor.workers=2", "tune.parallelism=2"], 2),
    "ray": ("Conveyor local Ray, 2 workers, parallelism 2", ["executor.type=ray", "executor.workers=2", "tune.parallelism=2"], 2),
}


def document(trials: int) -> dict[str, Any]:
    """The tuning pipeline (executor and parallelism are set per variant by overrides)."""
    return {
        "name": "flights-sweep",
        "task": "binary",
        "target": TARGET,
        "seed": SEED,
        "dataset": {"path": "flights.parquet", "categorical": CATEGORICAL},
        "split": {"method": "stratified", "test_size": 0.2, "folds": FOLDS},
        "tune": {"space": SPACE, "n_trials": trials, "sampler": "random", "pruning": False},
        "train": {"estimator": "lightgbm.LGBMClassifier", "params": BASE_PARAMS},
    }


def plain_sweep(path: Any, trials: int, clock: StepClock) -> dict[str, Any]:
    """What a user writes without the platform: the same split, folds, sweep and final fit."""
    import lightgbm
    import optuna
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, train_test_split

    frame = with_categories(pd.read_parquet(path))
    positions = np.arange(len(frame))
    train, test = train_test_split(positions, test_size=0.2, random_state=SEED, stratify=frame[TARGET])
    rows, test_rows = frame.iloc[np.sort(train)], frame.iloc[np.sort(test)]
    folds = list(StratifiedKFold(FOLDS, shuffle=True, random_state=SEED).split(rows, rows[TARGET]))

    def fit(params: dict[str, Any], data: pd.DataFrame) -> Any:
        return lightgbm.LGBMClassifier(**BASE_PARAMS, **params, random_state=SEED).fit(data[FEATURES], data[TARGET])

    def objective(trial: optuna.Trial) -> float:
        params = {name: (trial.suggest_int(name, spec["low"], spec["high"], log=spec.get("log", False))
                         if spec["type"] == "int" else
                         trial.suggest_float(name, spec["low"], spec["high"], log=spec.get("log", False)))
                  for name, spec in SPACE.items()}
        scores = []
        for fit_rows, valid_rows in folds:
            model = fit(params, rows.iloc[fit_rows])
            valid = rows.iloc[valid_rows]
            scores.append(roc_auc_score(valid[TARGET], model.predict_proba(valid[FEATURES])[:, 1]))
        return float(np.mean(scores))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=SEED))
    started = time.perf_counter()
    study.optimize(objective, n_trials=trials, n_jobs=1, callbacks=[clock])
    sweep = time.perf_counter() - started
    model = fit(study.best_params, rows)
    auc = roc_auc_score(test_rows[TARGET], model.predict_proba(test_rows[FEATURES])[:, 1])
    return {"sweep": sweep, "best": float(study.best_value), "best_params": study.best_params, "roc_auc": float(auc)}


def ray_start_alone() -> float:
    """Seconds to start a local Ray of two CPUs, run one trivial task and shut it down."""
    from conveyor.pipelines.executors import RayExecutor

    started = time.perf_counter()
    with RayExecutor(2) as executor:
        executor.map(_nothing, [0])
    return time.perf_counter() - started


def _nothing(_shared: Any, item: int) -> int:
    return item


def run(ctx: Context) -> None:
    """Run every variant ``repeats`` times (the order rotates), then print the tables."""
    cfg = ctx.cfg
    folder = cfg.folder / "tuning"
    frame = flights().drop(columns=["scheduled"])
    write(every_nth(frame, cfg.tuning_rows), folder / "flights.parquet")
    path = write_pipeline(folder / "pipeline.yaml", document(cfg.trials))
    service = PipelineService(ctx.workspace("tuning"))
    runs: dict[str, list[tuple[Measured, StepClock]]] = {mode: [] for mode in MODES}
    names = list(MODES)
    for repeat in range(cfg.repeats):
        for mode in names[repeat % len(names):] + names[:repeat % len(names)]:
            clock = StepClock()
            overrides = MODES[mode][1]
            if overrides is None:
                measured = measure(plain_sweep, folder / "flights.parquet", cfg.trials, clock)
            else:
                measured = measure(service.run, path, overrides=overrides, use_cache=False, progress=clock)
                measured.trial_seconds = trial_seconds(service.workspace, measured.result.run_id)
            runs[mode].append((measured, clock))
            ctx.console.print(f"  [dim]repeat {repeat + 1}/{cfg.repeats}, {mode}: {measured.wall:,.1f} s, "
                              f"{measured.cores:.2f} cores busy; load average {os.getloadavg()[0]:.2f}[/]")
    ray_alone = None if cfg.smoke else ray_start_alone()  # a third Ray start is too long for --smoke
    report(ctx, runs, ray_alone)


def trial_seconds(workspace: Any, run_id: str) -> list[float]:
    """Seconds each trial of the run computed (in its worker), from the nested trial runs."""
    found = workspace.tracking.search_runs("flights-sweep", max_results=1_000_000)
    return found.loc[found["parent_id"] == run_id, "metrics.seconds"].dropna().tolist()


def _busy(mode: str, measured: Measured) -> float | None:
    """Share of the trial slots (parallelism × sweep seconds) that trials were computing."""
    if mode == "optuna":
        return None
    return sum(measured.trial_seconds) / (MODES[mode][2] * _sweep(mode, measured))


def _sweep(mode: str, measured: Measured) -> float:
    return measured.result["sweep"] if mode == "optuna" else measured.result.step("tune").seconds


def _best(mode: str, measured: Measured) -> float:
    if mode == "optuna":
        return measured.result["best"]
    detail = measured.result.step("tune").detail  # "... best cv roc_auc 0.9123: ..."
    return float(detail.split("best cv roc_auc ")[1].split(":")[0])


def report(ctx: Context, runs: dict[str, list[tuple[Measured, StepClock]]], ray_alone: float | None) -> None:
    """Table 2a (wall, throughput, cores) and 2b (seconds until N trials had finished)."""
    cfg = ctx.cfg
    wall = {mode: median([m.wall for m, _ in items]) for mode, items in runs.items()}
    sweep = {mode: median([_sweep(mode, m) for m, _ in items]) for mode, items in runs.items()}
    cores = {mode: median([m.cores for m, _ in items]) for mode, items in runs.items()}
    busy = {mode: median([_busy(mode, m) for m, _ in items]) for mode, items in runs.items() if mode != "optuna"}
    rows = []
    for mode, items in runs.items():
        best = _best(mode, items[-1][0])
        versus = "" if mode == "sequential" else faster(wall[mode], wall["sequential"])
        rows.append((MODES[mode][0], seconds(wall[mode]), seconds(sweep[mode]), f"{cfg.trials / sweep[mode] * 60:,.1f}",
                     f"{cores[mode]:.2f}", f"{busy[mode]:.0%}" if mode in busy else "", versus, f"{best:.4f}"))
    grid(ctx.console,
         f"2a. {cfg.trials}-trial sweep of LightGBM, {FOLDS}-fold CV on {cfg.tuning_rows:,} flights rows, then the final "
         f"fit: median of {cfg.repeats}. Cores busy = CPU seconds of the process tree / wall seconds; slots busy = "
         "trial seconds (from the nested runs) / (parallelism × sweep seconds)",
         ["variant", "wall", "sweep", "trials/min", "cores busy", "slots busy", "vs sequential", "best CV AUC"], rows)
    counts = sorted({max(1, cfg.trials // 4), max(1, cfg.trials // 2), cfg.trials})
    table = []
    for count in counts:
        cells = []
        for items in runs.values():
            marks = [clock.at(count) for _, clock in items]
            cells.append(seconds(median([m for m in marks if m is not None])) if all(m is not None for m in marks) else "-")
        table.append((f"{count} trials", *cells))
    grid(ctx.console, "2b. seconds from the start of the run until N trials had finished (median; Conveyor: the tune "
         "step's progress events; Optuna: a study callback)", ["trials", *runs], table)
    if ray_alone is not None:
        ctx.console.print(f"  Ray start + one trivial task + shutdown, alone: {seconds(ray_alone)}")
    for mode in ("local", "ray"):
        ideal = median([sum(m.trial_seconds) / MODES[mode][2] for m, _ in runs[mode]])
        ctx.console.print(f"  {mode}: the trials computed for {seconds(ideal * MODES[mode][2])} in all; two slots "
                          f"never idle would take {seconds(ideal)} against the sweep's {seconds(sweep[mode])} "
                          "(the gap: starting the executor, and each batch of two waiting for its slower trial)")
    ctx.line(f"tuning: local 2 workers {faster(wall['local'], wall['sequential'])} and Ray 2 workers "
             f"{faster(wall['ray'], wall['sequential'])} than sequential Conveyor, {faster(wall['local'], wall['optuna'])} "
             f"and {faster(wall['ray'], wall['optuna'])} than plain Optuna; cores busy {cores['local']:.2f} local, "
             f"{cores['ray']:.2f} Ray, {cores['sequential']:.2f} sequential, {cores['optuna']:.2f} Optuna"
             + (f"; Ray start-up alone {seconds(ray_alone)}" if ray_alone is not None else ""))
