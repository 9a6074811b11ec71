"""The pipelines service: what the SDK and the CLI call to run, check and reproduce pipelines."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from conveyor.errors import ValidationError
from conveyor.pipelines.loading import load_pipeline, parse_pipeline
from conveyor.pipelines.outputs import PipelineResult, Progress
from conveyor.pipelines.reproduce import Reproduction, reproduce
from conveyor.pipelines.runner import PipelineRunner
from conveyor.pipelines.spec import Pipeline

if TYPE_CHECKING:
    from conveyor.core.workspace import Workspace


class PipelineService:
    """Training pipelines of one workspace."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace

    def load(self, source: Pipeline | str | Path, overrides: Sequence[str] = ()) -> tuple[Pipeline, Path]:
        """The pipeline and the folder its relative paths resolve from (the file's folder,
        or the current folder for a Python object)."""
        if isinstance(source, Pipeline):
            if overrides:
                return parse_pipeline(source.model_dump(mode="json", by_alias=True), overrides), Path.cwd()
            return source, Path.cwd()
        if not isinstance(source, (str, Path)):
            raise ValidationError(f"a pipeline is a Pipeline or a YAML path, not {type(source).__name__}", field="pipeline")
        path = Path(source)
        return load_pipeline(path, overrides), path.resolve().parent

    def run(
        self, source: Pipeline | str | Path, overrides: Sequence[str] = (), use_cache: bool = True,
        progress: Progress | None = None,
    ) -> PipelineResult:
        """Run a pipeline as one tracked run (see ``PipelineRunner``)."""
        pipeline, base = self.load(source, overrides)
        return PipelineRunner(self.workspace, pipeline, base, use_cache=use_cache, progress=progress).run()

    def reproduce(self, run_id: str, progress: Progress | None = None) -> Reproduction:
        """Re-execute a pipeline run from its records and compare (see ``reproduce``)."""
        return reproduce(self.workspace, run_id, progress)
