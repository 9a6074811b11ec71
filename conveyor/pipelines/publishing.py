"""The ``gate`` and ``register`` steps: decide whether the candidate is good enough, then
register it, validate it through the registry and point the alias at it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from conveyor.errors import ConveyorError, NotFound, PermissionDenied
from conveyor.pipelines import evaluation
from conveyor.pipelines.outputs import MODEL_ARTIFACT, GateOutcome
from conveyor.registry.packaging import MANIFEST_FILE

if TYPE_CHECKING:
    from conveyor.core.workspace import Workspace
    from conveyor.pipelines.runner import PipelineRunner

VALIDATED_TASKS = ("binary", "multiclass", "regression", "forecasting")
TASK_TYPES = {"binary": "classification", "multiclass": "classification", "anomaly": "anomaly-detection"}


def model_files(workspace: Workspace, run_id: str) -> dict[str, str]:
    """The sha256 of each file of a run's model but its manifest (which records when it was written)."""
    return {a.path: a.sha256 for a in workspace.tracking.get_run(run_id).artifacts
            if a.path.startswith(f"{MODEL_ARTIFACT}/") and a.path != f"{MODEL_ARTIFACT}/{MANIFEST_FILE}"}


class Publisher:
    """Gate and registration of one pipeline run's model."""

    def __init__(self, runner: PipelineRunner) -> None:
        self.runner = runner
        self.pipeline = runner.pipeline
        self.registry = runner.workspace.registry

    def gate(self) -> GateOutcome:
        """Check every threshold, then the comparison with the champion on the same test rows."""
        gate, metrics = self.pipeline.gate, self.runner.result.metrics
        assert gate is not None
        passed, reasons = True, []
        for name, bound in gate.thresholds.items():
            evaluation.metric_direction(name)
            value = metrics.get(name)
            if value is None:
                passed, reasons = False, [*reasons, f"{name} is not measured (add it to evaluate.metrics)"]
            elif bound.min is not None and value < bound.min:
                passed, reasons = False, [*reasons, f"{name} {value:.4f} < min {bound.min}"]
            elif bound.max is not None and value > bound.max:
                passed, reasons = False, [*reasons, f"{name} {value:.4f} > max {bound.max}"]
            else:
                reasons.append(f"{name} {value:.4f} within bounds")
        if gate.beat_champion is not None:
            beaten, reason = self._beats_champion()
            passed, reasons = passed and beaten, [*reasons, reason]
        return GateOutcome(passed, reasons)

    def _beats_champion(self) -> tuple[bool, str]:
        rule = self.pipeline.gate.beat_champion  # type: ignore[union-attr]
        name = self.pipeline.registration.model  # type: ignore[union-attr]
        metric = rule.metric or evaluation.primary_metric(self.pipeline.task)
        candidate = self.runner.result.metrics.get(metric)
        if candidate is None:
            candidate = self.runner.scorer.score(self.runner.loaded_model(), self.runner.test_rows)[metric]
        try:
            champion = self.registry.load_model(f"models:/{name}@{rule.alias}")
        except NotFound:
            return True, f"no {name}@{rule.alias} yet: nothing to beat"
        label = f"{name}@{rule.alias} (version {champion.version.version})"
        try:
            reference = self.runner.scorer.score(champion, self.runner.test_rows)[metric]
        except ConveyorError as exc:
            return False, f"{label} cannot score the test rows: {exc.message}"
        if candidate is None or reference is None:
            return False, f"{metric} is undefined on the test rows"
        beaten = evaluation.better(metric, candidate, reference, rule.by)
        relation = "beats" if beaten else "does not beat"
        return beaten, f"{metric} {candidate:.4f} {relation} {label} at {reference:.4f} by the required {rule.by}"

    def register(self) -> str:
        """Register the model, validate it on the test rows and set the alias; a line saying what happened."""
        spec, runner = self.pipeline.registration, self.runner
        assert spec is not None and runner.result.model_uri is not None
        existing = {model.name for model in self.registry.list_registered_models()}
        if spec.model in existing:
            files = model_files(runner.workspace, runner.result.run_id)
            same = [v.version for v in self.registry.list_model_versions(spec.model)
                    if model_files(runner.workspace, v.run_id) == files]
            if same:
                runner.result.model_version = max(same)
                return f"unchanged: {spec.model} version {max(same)} holds these very model files"
        else:
            self.registry.create_registered_model(
                spec.model, spec.description, spec.owner_team, TASK_TYPES.get(self.pipeline.task, self.pipeline.task),
                spec.risk_tier, spec.intended_use,
            )
        version = self.registry.create_model_version(
            spec.model, runner.result.model_uri, spec.description, self.pipeline.dataset.feature_service
        ).version
        runner.result.model_version = version
        said = [f"{spec.model} version {version}"]
        if spec.validate_version and self.pipeline.task in VALIDATED_TASKS:
            time_column = self.pipeline.split.time_column if self.pipeline.split.method == "time" else None
            _, report = self.registry.validate_version(
                spec.model, version, runner.test_rows, target=self.pipeline.target, time_column=time_column
            )
            said.append("validation " + ("passed" if report.passed else "FAILED"))
            if not report.passed:
                runner.result.notes.append(f"validation of version {version} failed; alias not moved")
                return ", ".join(said)
        if spec.alias:
            try:
                self.registry.set_alias(spec.model, spec.alias, version)
            except PermissionDenied as exc:
                runner.result.notes.append(f"alias {spec.alias} not set: {exc.message}")
                said.append(f"{spec.alias} awaits approval")
            else:
                runner.result.alias = spec.alias
                said.append(f"now {spec.model}@{spec.alias}")
        return ", ".join(said)
