"""What a pipeline run reports back, and the progress events it emits while running."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

StepStatus = Literal["ran", "cached", "failed", "skipped"]
MODEL_ARTIFACT = "model"


@dataclass(frozen=True)
class StepReport:
    """How one step went: ran, reused its cached output, failed or was left out."""

    step: str
    status: StepStatus
    seconds: float
    detail: str = ""


@dataclass(frozen=True)
class GateOutcome:
    """Whether the candidate may be registered, and why (one line per check)."""

    passed: bool
    reasons: list[str]


@dataclass
class PipelineResult:
    """One pipeline run: its tracked run, the steps, the test metrics, and what was registered."""

    run_id: str
    pipeline: str
    steps: list[StepReport] = field(default_factory=list)
    metrics: dict[str, float | None] = field(default_factory=dict)
    best_params: dict[str, Any] = field(default_factory=dict)
    dataset_sha256: str | None = None
    model_uri: str | None = None
    gate: GateOutcome | None = None
    model_version: int | None = None
    alias: str | None = None
    notes: list[str] = field(default_factory=list)

    def step(self, name: str) -> StepReport:
        """The report of step ``name``."""
        return next(report for report in self.steps if report.step == name)


class Progress(Protocol):
    """Receives events as the pipeline runs (the CLI draws Rich progress bars from them)."""

    def step_started(self, step: str, total: int | None = None) -> None: ...

    def step_finished(self, report: StepReport) -> None: ...

    def advanced(self, step: str, done: int, detail: str) -> None: ...


class SilentProgress:
    """Progress that shows nothing: the SDK's default."""

    def step_started(self, step: str, total: int | None = None) -> None:
        """Ignore the event."""

    def step_finished(self, report: StepReport) -> None:
        """Ignore the event."""

    def advanced(self, step: str, done: int, detail: str) -> None:
        """Ignore the event."""
