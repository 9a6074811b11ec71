"""Executing a pipeline as one tracked run: each step cached by the hash of its inputs,
each tuning trial a nested run, each step's output an artifact of the run.

A failing step marks the run failed with the step's name and error, keeps the outputs
of the steps before it (so the next run resumes from the cache) and registers nothing.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from importlib import metadata as package_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml

from conveyor.errors import ConveyorError
from conveyor.pipelines import (
    building,
    evaluation,
    fitting,
    scoring,
    segments,
    splitting,
    tuning,
)
from conveyor.pipelines import data as dataset_step
from conveyor.pipelines.cache import StepCache, code_version
from conveyor.pipelines.data import input_fingerprint, load_dataset
from conveyor.pipelines.executors import Executor, open_executor
from conveyor.pipelines.outputs import (
    MODEL_ARTIFACT,
    PipelineResult,
    Progress,
    SilentProgress,
    StepReport,
)
from conveyor.pipelines.publishing import Publisher
from conveyor.pipelines.scoring import Scorer
from conveyor.pipelines.spec import STEPS, Pipeline
from conveyor.pipelines.splitting import Split, make_split
from conveyor.pipelines.tuning import TrialResult, TuneOutcome, tune
from conveyor.tracking import RunStatus, seed_everything
from conveyor.tracking.run import Run

if TYPE_CHECKING:
    from conveyor.core.workspace import Workspace

PIPELINE_TAG = "conveyor.pipeline"
DATASET_TAG = "conveyor.pipeline.dataset_sha256"
KEYS_TAG = "conveyor.pipeline.entity_keys"
SPEC_ARTIFACT = "pipeline.yaml"
DATASET_ARTIFACT = "steps/dataset.parquet"


def _flat(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flat(f"{prefix}.{key}" if prefix else str(key), item))
        return flat
    return {prefix: json.dumps(value) if isinstance(value, list) else value}


def _library_version(estimator: str) -> str:
    try:
        return package_metadata.version(estimator.split(".")[0].split(":")[0])
    except package_metadata.PackageNotFoundError:
        return "unknown"


class PipelineRunner:
    """Runs one pipeline in a workspace.

    Args:
        workspace: where runs, artifacts, the cache and models live.
        pipeline: the checked pipeline.
        base: the folder relative paths resolve from (the pipeline file's folder).
        use_cache: reuse unchanged steps' outputs (``--no-cache`` turns it off).
        progress: receives step and trial events.
        snapshot: use these rows instead of reading the dataset (``reproduce``).
        publish: run ``gate`` and ``register`` (``reproduce`` only re-derives the model).
        tags: extra tags of the run.
    """

    def __init__(
        self, workspace: Workspace, pipeline: Pipeline, base: Path, *, use_cache: bool = True,
        progress: Progress | None = None, snapshot: tuple[pd.DataFrame, list[str]] | None = None,
        publish: bool = True, tags: dict[str, str] | None = None,
    ) -> None:
        self.workspace = workspace
        self.pipeline = pipeline
        self.base = Path(base).resolve()
        self.use_cache = use_cache
        self.progress = progress or SilentProgress()
        self.snapshot = snapshot
        self.publish = publish
        self.tags = tags or {}
        self.cache = StepCache(workspace.metadata, workspace.artifacts)
        self._executor: Executor | None = None
        self.keys: dict[str, str] = {}
        self.model: Any = None

    def executor(self) -> Executor:
        """The pipeline's executor, started on first use (a local Ray takes seconds to start)."""
        if self._executor is None:
            self._executor = open_executor(self.pipeline.executor)
        return self._executor

    def run(self) -> PipelineResult:
        """Run every step in order; raise the failing step's error after recording it."""
        pipeline = self.pipeline
        seed_everything(pipeline.seed)
        tracking = self.workspace.tracking
        info = tracking.create_run(
            pipeline.experiment_name, name=pipeline.name, params=_flat("", pipeline.model_dump(mode="json", by_alias=True)),
            tags={PIPELINE_TAG: pipeline.name, **self.tags},
        )
        self.run_handle = Run(tracking, info, self.workspace)
        self.result = PipelineResult(info.id, pipeline.name)
        document = yaml.safe_dump(pipeline.model_dump(mode="json", by_alias=True, exclude_none=True), sort_keys=False)
        tracking.log_bytes(info.id, document.encode(), SPEC_ARTIFACT, "pipeline")
        step = STEPS[0]
        try:
            for step in STEPS:
                self._step(step, getattr(self, f"_{step}"))
        except BaseException as error:
            self._fail(step, error)
        finally:
            if self._executor is not None:
                self._executor.close()
        self.run_handle.end(RunStatus.FINISHED)
        return self.result

    def _fail(self, step: str, error: BaseException) -> None:
        self.result.steps.append(StepReport(step, "failed", 0.0, str(error)))
        self.progress.step_finished(self.result.steps[-1])
        message = error.message if isinstance(error, ConveyorError) else f"{type(error).__name__}: {error}"
        text = f"pipeline {self.pipeline.name!r} failed at step {step!r}: {message}"
        self.run_handle.set_tags({"conveyor.pipeline.failed_step": step})
        killed = isinstance(error, KeyboardInterrupt)
        self.run_handle.end(RunStatus.KILLED if killed else RunStatus.FAILED, text)
        if killed:
            raise error
        if isinstance(error, ConveyorError):
            raise type(error)(text, field=error.field) from error
        raise ConveyorError(text) from error

    def _step(self, step: str, body: Callable[[], tuple[str, str]]) -> None:
        self.progress.step_started(step)
        started = time.perf_counter()
        status, detail = body()
        report = StepReport(step, status, time.perf_counter() - started, detail)  # type: ignore[arg-type]
        self.result.steps.append(report)
        self.run_handle.set_tags({f"conveyor.pipeline.step.{step}": status})
        self.progress.step_finished(report)

    def _cached(
        self, step: str, inputs: dict[str, Any], produce: Callable[[], bytes], artifact: str, reuse: bool = True
    ) -> tuple[bytes, bool]:
        """The step's output bytes, from the cache when its inputs are unchanged (and ``reuse``),
        else produced and stored; the bytes become the run's artifact either way."""
        key = self.cache.key(step, inputs)
        self.keys[step] = key
        hit = self.cache.get(key) if self.use_cache and reuse else None
        tracking = self.workspace.tracking
        if hit is not None:
            tracking.link_artifact(self.result.run_id, artifact, hit.sha256, "pipeline")
            return self.workspace.artifacts.get_bytes(hit.sha256), True
        data = produce()
        stored = tracking.log_bytes(self.result.run_id, data, artifact, "pipeline")
        self.cache.put(key, self.pipeline.name, step, self.result.run_id, stored.sha256, stored.size)
        return data, False

    # steps ---------------------------------------------------------------------------

    def _dataset(self) -> tuple[str, str]:
        pipeline, tracking = self.pipeline, self.workspace.tracking
        if self.snapshot is not None:
            frame, keys = self.snapshot
            source, status = "snapshot", "ran"
            tracking.log_bytes(self.result.run_id, _parquet(frame), DATASET_ARTIFACT, "pipeline")
        else:
            fingerprint = input_fingerprint(pipeline.dataset, self.base)
            loaded: list[Any] = []

            def produce() -> bytes:
                loaded.append(load_dataset(pipeline, self.base, self.workspace))
                return _parquet(loaded[0].frame)

            inputs = {"config": pipeline.step_config("dataset"), "files": fingerprint,
                      "target": pipeline.target, "code": code_version(dataset_step)}
            data, cached = self._cached("dataset", inputs, produce, DATASET_ARTIFACT, reuse=fingerprint is not None)
            frame = pd.read_parquet(io.BytesIO(data))
            keys = loaded[0].keys if loaded else []
            source = loaded[0].source if loaded else str(pipeline.dataset.path)
            status = "cached" if cached else "ran"
        described = tracking.log_dataset(self.result.run_id, frame, pipeline.name, "train", source)
        self.frame, self.entity_keys = frame, keys
        self.result.dataset_sha256 = described.digest
        self.run_handle.set_tags({DATASET_TAG: described.digest, KEYS_TAG: json.dumps(keys)})
        return status, f"{len(frame):,} rows × {frame.shape[1]} columns, sha256 {described.digest[:12]}"

    def _split(self) -> tuple[str, str]:
        pipeline = self.pipeline
        inputs = {"config": pipeline.step_config("split"), "seed": pipeline.seed, "task": pipeline.task,
                  "target": pipeline.target, "data": self.result.dataset_sha256, "code": code_version(splitting)}
        data, cached = self._cached("split", inputs, lambda: make_split(pipeline, self.frame).to_bytes(), "steps/split.npz")
        self.split = Split.from_bytes(data)
        self.train_rows = self.frame.iloc[self.split.train].reset_index(drop=True)
        self.test_rows = self.frame.iloc[self.split.test].reset_index(drop=True)
        self.features = building.feature_columns(pipeline, list(self.frame.columns), self.entity_keys)
        self.scorer = Scorer.for_training(pipeline, self.features, self.train_rows)
        return ("cached" if cached else "ran",
                f"{len(self.split.train):,} train / {len(self.split.test):,} test rows, {len(self.split.folds)} folds")

    def _preprocess(self) -> tuple[str, str]:
        spec = self.pipeline.preprocess
        if spec is None:
            return "skipped", "no preprocess step"
        inputs = {"config": self.pipeline.step_config("preprocess"), "code": code_version(building)}
        data, cached = self._cached(
            "preprocess", inputs, lambda: repr(building.build_preprocessor(spec)).encode(), "steps/preprocess.txt"
        )
        return "cached" if cached else "ran", f"{len(spec.transforms)} column transform(s) in front of the estimator"

    def _model_inputs(self) -> dict[str, Any]:
        pipeline = self.pipeline
        return {"train": pipeline.step_config("train"), "preprocess": self.keys.get("preprocess"),
                "split": self.keys["split"], "features": self.features, "seed": pipeline.seed,
                "library": _library_version(pipeline.train.estimator)}

    def _tune(self) -> tuple[str, str]:
        spec = self.pipeline.tune
        if spec is None:
            return "skipped", "no tune step"
        inputs = {**self._model_inputs(), "tune": self.pipeline.step_config("tune"),
                  "code": code_version(tuning, building, scoring, evaluation)}
        self.progress.step_started("tune", spec.n_trials)
        data, cached = self._cached("tune", inputs, self._search, "steps/tune.json")
        outcome = TuneOutcome.from_json(json.loads(data))
        self.result.best_params = outcome.best_params
        self.run_handle.log_metric(f"cv_{outcome.metric}", outcome.best_value)
        pruned = sum(t.pruned for t in outcome.trials)
        return ("cached" if cached else "ran",
                f"{len(outcome.trials)} trials ({pruned} pruned), best cv {outcome.metric} {outcome.best_value:.4f}: "
                + ", ".join(f"{k}={_short(v)}" for k, v in outcome.best_params.items()))

    def _search(self) -> bytes:
        done: list[TrialResult] = []
        tracking, pipeline = self.workspace.tracking, self.pipeline
        metric = pipeline.tune.metric or evaluation.primary_metric(pipeline.task)  # type: ignore[union-attr]

        def record(result: TrialResult) -> None:
            done.append(result)
            trial = tracking.create_run(pipeline.experiment_name, name=f"trial-{result.number}",
                                        parent_id=self.result.run_id, params=result.params,
                                        tags={"conveyor.trial.state": "pruned" if result.pruned else "complete"})
            tracking.log_metric_points(trial.id, [(metric, v, i, None) for i, v in enumerate(result.fold_values)])
            if not result.pruned:
                tracking.log_metrics(trial.id, {f"cv_{metric}": result.value, "seconds": result.seconds})
            tracking.end_run(trial.id, RunStatus.FINISHED)
            self.progress.advanced("tune", len(done), trial_detail(result, metric))

        outcome = tune(pipeline, self.train_rows, self.scorer, self.split.folds, self.executor(), record)
        from conveyor.pipelines.plots import tuning_history

        self.run_handle.log_figure(tuning_history(outcome), "plots/tuning.png")
        return json.dumps(outcome.to_json()).encode()

    def _train(self) -> tuple[str, str]:
        pipeline = self.pipeline
        inputs = {**self._model_inputs(), "params": self.result.best_params,
                  "code": code_version(building, fitting, segments)}
        self.result.model_uri = f"runs:/{self.result.run_id}/{MODEL_ARTIFACT}"
        data, cached = self._cached("train", inputs, self._fit, "steps/train.json")
        stored = json.loads(data)
        if cached:
            for path, sha256 in stored["files"].items():
                self.workspace.tracking.link_artifact(self.result.run_id, path, sha256, "model")
        what = f"{stored['segments']} segment models" if stored.get("segments") else pipeline.train.estimator
        return "cached" if cached else "ran", f"{what} on {len(self.train_rows):,} rows"

    def _fit(self) -> bytes:
        pipeline = self.pipeline
        trusted = list(self.workspace.settings.registry.trusted_types)
        column = pipeline.train.segment_by
        if column:
            self.progress.step_started("train", int(self.train_rows[column].nunique()))
        self.model = fitting.fit_model(
            pipeline, self.train_rows, self.features, self.result.best_params, self.executor, trusted,
            on_segment=lambda done, total: self.progress.advanced("train", done, f"{done}/{total} segments"),
        )
        training = self.train_rows[self.features]
        target = self.train_rows[pipeline.target]
        if column:
            segments.log_segmented(self.run_handle, self.model, training, target)
        else:
            self.run_handle.log_model(self.model, MODEL_ARTIFACT, training_data=training, target=target)
        self.model = None
        self.loaded_model()
        files = {a.path: a.sha256 for a in self.workspace.tracking.get_run(self.result.run_id).artifacts
                 if a.path.startswith(f"{MODEL_ARTIFACT}/")}
        count = int(self.train_rows[column].nunique()) if column else 0
        return json.dumps({"run_id": self.result.run_id, "files": files, "segments": count}).encode()

    def loaded_model(self) -> Any:
        """The trained model as it will be served: loaded from the run's files, verified and
        with its signature (so evaluation sees what serving will see)."""
        if self.model is None:
            self.model = self.workspace.registry.load_model(self.result.model_uri)
        return self.model

    def _evaluate(self) -> tuple[str, str]:
        pipeline = self.pipeline
        inputs = {"config": pipeline.step_config("evaluate"), "train": self.keys["train"],
                  "code": code_version(scoring, evaluation)}

        def produce() -> bytes:
            scores = self.scorer.predictions(self.loaded_model(), self.test_rows)
            from conveyor.pipelines.plots import evaluation_figure

            figure = evaluation_figure(pipeline.task, self.scorer.labels(self.test_rows), scores)
            if figure is not None:
                self.run_handle.log_figure(figure, "plots/evaluation.png")
            return json.dumps(self.scorer.metrics(self.test_rows, scores)).encode()

        data, cached = self._cached("evaluate", inputs, produce, "steps/evaluate.json")
        metrics = json.loads(data)
        wanted = pipeline.evaluate.metrics or list(metrics)
        unknown = [m for m in wanted if m not in metrics]
        if unknown:
            raise ConveyorError(f"evaluate.metrics: {unknown[0]!r} is not a {pipeline.task} metric")
        self.result.metrics = {name: metrics[name] for name in wanted}
        self.run_handle.log_metrics({k: v for k, v in self.result.metrics.items() if v is not None})
        primary = evaluation.primary_metric(pipeline.task)
        value = metrics.get(primary)
        return "cached" if cached else "ran", f"{primary} {value:.4f}" if value is not None else f"{primary} undefined"

    def _gate(self) -> tuple[str, str]:
        if not self.publish or self.pipeline.gate is None:
            return "skipped", "no gate step" if self.publish else "not published"
        outcome = Publisher(self).gate()
        self.result.gate = outcome
        self.run_handle.set_tags({"conveyor.pipeline.gate": "passed" if outcome.passed else "failed"})
        return "ran", ("passed: " if outcome.passed else "FAILED: ") + "; ".join(outcome.reasons)

    def _register(self) -> tuple[str, str]:
        if not self.publish or self.pipeline.registration is None:
            return "skipped", "no register step" if self.publish else "not published"
        if self.result.gate is not None and not self.result.gate.passed:
            return "skipped", "the gate failed: nothing registered"
        return "ran", Publisher(self).register()


def trial_detail(result: TrialResult, metric: str) -> str:
    """One line about a finished trial."""
    if result.pruned:
        return f"trial {result.number} pruned after {len(result.fold_values)} fold(s)"
    return f"trial {result.number}: {metric} {result.value:.4f}"


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
