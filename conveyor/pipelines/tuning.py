"""The ``tune`` step: an Optuna search whose trials run on the pipeline's executor.

Trials are asked in batches of ``tune.parallelism`` and told back in order, so a seeded
sweep asks the same parameters whether the batch runs in local processes or on Ray.
Each trial cross-validates on the split's folds and reports every fold; it is pruned
when its running mean trails the median of the trials finished before its batch
(Optuna's ``MedianPruner``, applied in the worker to that snapshot).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
import pandas as pd
from threadpoolctl import threadpool_limits

from conveyor.errors import ValidationError
from conveyor.pipelines import evaluation
from conveyor.pipelines.building import build_model
from conveyor.pipelines.executors import Executor
from conveyor.pipelines.scoring import Scorer
from conveyor.pipelines.spec import Distribution, Pipeline

optuna.logging.set_verbosity(optuna.logging.WARNING)
PRUNER_STARTUP_TRIALS = 4


@dataclass(frozen=True)
class TrialResult:
    """One trial: its parameters, per-fold running means, final value (None if pruned)."""

    number: int
    params: dict[str, Any]
    fold_values: list[float]
    value: float | None
    seconds: float

    @property
    def pruned(self) -> bool:
        """Whether the trial stopped before its last fold."""
        return self.value is None


@dataclass
class TuneOutcome:
    """The search's result: the best parameters and value, and every trial."""

    metric: str
    direction: str
    best_params: dict[str, Any]
    best_value: float
    trials: list[TrialResult] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain data for the step's cached output."""
        return {
            "metric": self.metric, "direction": self.direction, "best_params": self.best_params,
            "best_value": self.best_value,
            "trials": [{"number": t.number, "params": t.params, "fold_values": t.fold_values, "value": t.value,
                        "seconds": t.seconds} for t in self.trials],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TuneOutcome:
        """Read back ``to_json``."""
        trials = [TrialResult(**t) for t in data["trials"]]
        return cls(data["metric"], data["direction"], data["best_params"], data["best_value"], trials)


@dataclass(frozen=True)
class TrialContext:
    """What every trial shares, sent to each worker once."""

    pipeline: Pipeline
    rows: pd.DataFrame
    scorer: Scorer
    folds: list[tuple[np.ndarray, np.ndarray]]
    metric: str
    direction: str
    threads: int


def threads_per_worker(executor: Executor) -> int:
    """Native threads each worker may use so that parallel fits do not oversubscribe the cores."""
    return max(1, (os.cpu_count() or 1) // executor.workers)


def distributions(pipeline: Pipeline) -> dict[str, optuna.distributions.BaseDistribution]:
    """The search space as Optuna distributions."""
    assert pipeline.tune is not None
    return {name: _distribution(name, spec) for name, spec in pipeline.tune.space.items()}


def _distribution(name: str, spec: Distribution) -> optuna.distributions.BaseDistribution:
    if spec.type == "categorical":
        return optuna.distributions.CategoricalDistribution(spec.choices)
    if spec.type == "int":
        return optuna.distributions.IntDistribution(int(spec.low), int(spec.high), log=spec.log, step=int(spec.step or 1))
    return optuna.distributions.FloatDistribution(spec.low, spec.high, log=spec.log, step=spec.step)


def run_trial(context: TrialContext, item: tuple[int, dict[str, Any], list[optuna.trial.FrozenTrial]]) -> TrialResult:
    """Cross-validate one parameter set; prune against the finished trials it was given."""
    number, params, finished = item
    started = time.perf_counter()
    judge = optuna.create_study(direction=context.direction,
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS))
    judge.add_trials(finished)
    trial = judge.ask()
    with threadpool_limits(context.threads):
        return _cross_validate(context, number, params, trial, started)


def _cross_validate(
    context: TrialContext, number: int, params: dict[str, Any], trial: optuna.Trial, started: float
) -> TrialResult:
    values: list[float] = []
    for step, (fit, validate) in enumerate(context.folds):
        model = build_model(context.pipeline, params, context.threads)
        train_rows, valid_rows = context.rows.iloc[fit], context.rows.iloc[validate]
        model.fit(train_rows[context.scorer.features], train_rows[context.pipeline.target])
        value = context.scorer.score(model, valid_rows)[context.metric]
        if value is None:
            raise ValidationError(f"tune.metric: {context.metric} is undefined on fold {step} (one class only?)",
                                  field="tune.metric")
        values.append(float(value))
        trial.report(float(np.mean(values)), step)
        if step < len(context.folds) - 1 and context.pipeline.tune.pruning and trial.should_prune():
            return TrialResult(number, params, values, None, time.perf_counter() - started)
    return TrialResult(number, params, values, float(np.mean(values)), time.perf_counter() - started)


def tune(
    pipeline: Pipeline, rows: pd.DataFrame, scorer: Scorer, folds: list[tuple[np.ndarray, np.ndarray]],
    executor: Executor, on_trial: Callable[[TrialResult], None] | None = None,
) -> TuneOutcome:
    """Search ``tune.space`` for the parameters with the best cross-validated metric."""
    spec = pipeline.tune
    assert spec is not None
    metric = spec.metric or evaluation.primary_metric(pipeline.task)
    direction = spec.direction or evaluation.metric_direction(metric)
    if metric not in evaluation.metric_names(pipeline.task):
        raise ValidationError(f"tune.metric: {metric!r} is not a {pipeline.task} metric; choose one of: "
                              f"{', '.join(evaluation.metric_names(pipeline.task))}", field="tune.metric")
    sampler = (optuna.samplers.TPESampler(seed=pipeline.seed) if spec.sampler == "tpe"
               else optuna.samplers.RandomSampler(seed=pipeline.seed))
    study = optuna.create_study(direction=direction, sampler=sampler)
    space = distributions(pipeline)
    context = TrialContext(pipeline, rows, scorer, folds, metric, direction, threads_per_worker(executor))
    outcome = TuneOutcome(metric, direction, {}, float("nan"))
    deadline = time.monotonic() + spec.timeout if spec.timeout else None
    while len(outcome.trials) < spec.n_trials and (deadline is None or time.monotonic() < deadline):
        batch = [study.ask(space) for _ in range(min(spec.parallelism, spec.n_trials - len(outcome.trials)))]
        finished = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        items = [(trial.number, trial.params, finished) for trial in batch]
        report = (lambda _index, result: on_trial(result)) if on_trial else None
        for trial, result in zip(batch, executor.map(run_trial, items, shared=context, on_result=report)):
            for step, value in enumerate(np.cumsum(result.fold_values) / np.arange(1, len(result.fold_values) + 1)):
                trial.report(float(value), step)
            if result.pruned:
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            else:
                study.tell(trial, result.value)
            outcome.trials.append(result)
    completed = [t for t in outcome.trials if not t.pruned]
    if not completed:
        raise ValidationError("tune: every trial was pruned or none ran before the timeout", field="tune")
    best = study.best_trial
    outcome.best_params, outcome.best_value = dict(best.params), float(best.value)
    return outcome
