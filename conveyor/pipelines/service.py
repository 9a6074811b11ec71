"""The pipelines service: what the SDK and the CLI call to run, check and reproduce pipelines."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.errors import ValidationError
from conveyor.governance.identity import Actor
from conveyor.governance.permissions import Action, requires
from conveyor.pipelines.loading import load_pipeline, parse_pipeline
from conveyor.pipelines.outputs import PipelineResult, Progress
from conveyor.pipelines.reproduce import Reproduction, reproduce
from conveyor.pipelines.runner import PipelineRunner
from conveyor.pipelines.runs import PipelineRun, get_run, list_runs
from conveyor.pipelines.spec import Pipeline
from conveyor.tracking import RunStatus

if TYPE_CHECKING:
    from conveyor.core.workspace import Workspace


class PipelineService:
    """Training pipelines of one workspace."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    @property
    def actor(self) -> Actor:
        """Who acts: the workspace's acting user."""
        return self.workspace.actor

    def load(self, source: Pipeline | str | Path, overrides: Sequence[str] = (),
             base: Path | None = None) -> tuple[Pipeline, Path]:
        """The pipeline and the folder its relative paths resolve from (the file's folder,
        or for a Python object ``base``, by default the current folder)."""
        if isinstance(source, Pipeline):
            folder = base or Path.cwd()
            if overrides:
                return parse_pipeline(source.model_dump(mode="json", by_alias=True), overrides), folder
            return source, folder
        if not isinstance(source, (str, Path)):
            raise ValidationError(f"a pipeline is a Pipeline or a YAML path, not {type(source).__name__}", field="pipeline")
        path = Path(source)
        return load_pipeline(path, overrides), path.resolve().parent

    @requires(Action.PIPELINES_RUN)
    def run(
        self, source: Pipeline | str | Path, overrides: Sequence[str] = (), use_cache: bool = True,
        progress: Progress | None = None, base: Path | None = None,
    ) -> PipelineResult:
        """Run a pipeline as one tracked run (see ``PipelineRunner``); a ``Pipeline`` object's
        relative paths resolve from ``base`` (default: the current folder)."""
        pipeline, folder = self.load(source, overrides, base)
        return PipelineRunner(self.workspace, pipeline, folder, use_cache=use_cache, progress=progress).run()

    @requires(Action.PIPELINES_RUN)
    def reproduce(self, run_id: str, progress: Progress | None = None) -> Reproduction:
        """Re-execute a pipeline run from its records and compare (see ``reproduce``)."""
        return reproduce(self.workspace, run_id, progress)

    @requires(Action.PIPELINES_READ)
    def list_runs(self, experiment: str | None = None, pipeline: str | None = None, status: RunStatus | None = None,
                  max_results: int = 100, offset: int = 0) -> list[PipelineRun]:
        """Pipeline runs, newest first, of one experiment, pipeline or status when given (see ``list_runs``)."""
        return list_runs(self.workspace, experiment, pipeline, status, max_results, offset)

    @requires(Action.PIPELINES_READ)
    def get_run(self, run_id: str) -> PipelineRun:
        """One pipeline run; ``NotFound`` if ``run_id`` is not one."""
        return get_run(self.workspace, run_id)
