"""The work a job does: retrain (run the policy's pipeline, then promote) or monitor.

A handler is ``handler(workspace, policy, job, cancelled) -> Outcome``. It must be safe
to run again after its agent died mid-way: a retrain first adopts the version an earlier
attempt of the same job registered (its run carries the job's id as a tag), so a
takeover never registers a second version for one trigger.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from conveyor.automation.jobs import SUCCEEDED, Job
from conveyor.automation.policy import Policy
from conveyor.automation.promotion import Outcome, promote
from conveyor.core.clock import iso
from conveyor.errors import ConveyorError, ValidationError
from conveyor.monitoring.alerts.rules import duration_ms
from conveyor.pipelines.outputs import SilentProgress, StepReport

if TYPE_CHECKING:
    from conveyor.core.workspace import Workspace

JOB_TAG = "conveyor.automation.job"
POLICY_TAG = "conveyor.automation.policy"
Handler = Callable[["Workspace", Policy, Job, Callable[[], bool]], Outcome]


class JobCancelled(ConveyorError):
    """A user cancelled the job while it ran."""

    code = "cancelled"


class _CancellableProgress(SilentProgress):
    """Stops a pipeline between steps once the job is cancelled."""

    def __init__(self, cancelled: Callable[[], bool]) -> None:
        self.cancelled = cancelled

    def step_started(self, step: str, total: int | None = None) -> None:
        if self.cancelled():
            raise JobCancelled(f"cancelled before step {step}")

    def step_finished(self, report: StepReport) -> None:
        if self.cancelled():
            raise JobCancelled(f"cancelled after step {report.step}")


def pipeline_overrides(policy: Policy, until_ms: int) -> list[str]:
    """The policy's overrides plus what automation needs: no alias from the pipeline (the
    agent promotes), the champion gate with the policy's margin, the training window."""
    overrides = [*policy.retrain.overrides, "register.alias=null", f"gate.beat_champion.alias={policy.alias}",
                 f"gate.beat_champion.by={policy.promotion.margin}"]
    if policy.promotion.metric:
        overrides.append(f"gate.beat_champion.metric={policy.promotion.metric}")
    if policy.retrain.window:
        since = until_ms - duration_ms(policy.retrain.window)
        overrides += [f"dataset.since='{iso(since / 1000)}'", f"dataset.until='{iso(until_ms / 1000)}'"]
    if policy.retrain.executor:
        overrides.append(f"executor.type={policy.retrain.executor}")
    return overrides


def adopted_version(workspace: Workspace, model: str, job_id: str, newest: int = 20) -> tuple[int, str] | None:
    """(version, run id) an earlier attempt of the job registered, if any."""
    names = {m.name for m in workspace.registry.list_registered_models()}
    if model not in names:
        return None
    versions = sorted(workspace.registry.list_model_versions(model), key=lambda v: v.version)[-newest:]
    for version in reversed(versions):
        if version.run_id and workspace.tracking.get_run(version.run_id).tags.get(JOB_TAG) == job_id:
            return version.version, version.run_id
    return None


def retrain(workspace: Workspace, policy: Policy, job: Job, cancelled: Callable[[], bool]) -> Outcome:
    """Run the policy's pipeline on the window ending at the trigger's time, then promote
    the registered candidate (the pipeline's gate decides whether there is one)."""
    from conveyor.pipelines.runner import PipelineRunner
    from conveyor.pipelines.service import PipelineService

    adopted = adopted_version(workspace, policy.model, job.id)
    if adopted is not None:
        version, run_id = adopted
        return promote(workspace, policy, version, {"run_id": run_id, "adopted": True})
    pipeline, base = PipelineService(workspace).load(policy.retrain.pipeline,
                                                     pipeline_overrides(policy, job.scheduled_for))
    if pipeline.registration is None or pipeline.registration.model != policy.model:
        raise ValidationError(f"retrain.pipeline: {policy.retrain.pipeline} must register model {policy.model!r}",
                              field="retrain.pipeline")
    result = PipelineRunner(workspace, pipeline, base, progress=_CancellableProgress(cancelled),
                            tags={JOB_TAG: job.id, POLICY_TAG: policy.name}).run()
    details = {"run_id": result.run_id, "metrics": {k: v for k, v in result.metrics.items() if v is not None}}
    if result.model_version is None:
        reasons = result.gate.reasons if result.gate else result.notes
        return Outcome(SUCCEEDED, {**details, "outcome": "not_promoted", "reason": "; ".join(reasons)},
                       f"candidate not registered: {'; '.join(reasons)}")
    return promote(workspace, policy, result.model_version, details)


def monitor(workspace: Workspace, policy: Policy, job: Job, cancelled: Callable[[], bool]) -> Outcome:
    """Monitor the alias's version over the windows that end at the slot (the lookback
    re-monitors earlier windows, so labels that arrived late count)."""
    spec = policy.monitor
    if spec is None:
        raise ValidationError(f"policy {policy.name} has no 'monitor' section", field="monitor")
    window = spec.window or spec.every
    lookback = duration_ms(spec.lookback or window)
    runs = workspace.monitoring.run(f"{policy.model}@{policy.alias}", window=window,
                                    since=(job.scheduled_for - lookback) / 1000, until=job.scheduled_for / 1000,
                                    min_labels=spec.min_labels)
    rows = sum(run.summary.get("rows", 0) for run in runs)
    version = runs[-1].version if runs else None
    return Outcome(SUCCEEDED, {"windows": len(runs), "rows": rows, "version": version},
                   f"monitored {len(runs)} window(s), {rows:,} predictions of version {version}")


HANDLERS: dict[str, Handler] = {"retrain": retrain, "monitor": monitor}
