"""The pipelines of a remote workspace: the same interface, run by the server.

A pipeline file is read here and sent as text; the server runs it, so its relative paths
(the dataset's) resolve from the server's workspace folder. The call returns when the run
has ended; progress events are not sent back.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import yaml

from conveyor.errors import ValidationError
from conveyor.pipelines.api import ENDPOINTS, RESULT, ReproductionOutcome
from conveyor.pipelines.outputs import PipelineResult, Progress
from conveyor.pipelines.reproduce import Reproduction
from conveyor.pipelines.service import PipelineService
from conveyor.pipelines.spec import Pipeline
from conveyor.server.client import RemoteService


def _spec_text(source: Pipeline | str | Path) -> str:
    if isinstance(source, Pipeline):
        return yaml.safe_dump(source.model_dump(mode="json", by_alias=True, exclude_none=True), sort_keys=False)
    if not isinstance(source, (str, Path)):
        raise ValidationError(f"a pipeline is a Pipeline or a YAML path, not {type(source).__name__}", field="pipeline")
    try:
        return Path(source).read_text()
    except OSError as exc:
        raise ValidationError(f"cannot read pipeline file {source}: {exc.strerror}", field="pipeline") from exc


class RemotePipelines(RemoteService):
    """``PipelineService`` over HTTP."""

    service_type = PipelineService
    prefix = ""
    endpoints = ENDPOINTS

    def run(self, source: Pipeline | str | Path, overrides: Sequence[str] = (), use_cache: bool = True,
            progress: Progress | None = None, base: Path | None = None) -> PipelineResult:
        """Run a pipeline on the server and return its result once it has ended."""
        if base is not None:
            raise ValidationError("base cannot be sent to a server: relative paths resolve from its workspace",
                                  field="base")
        body = {"spec": _spec_text(source), "overrides": list(overrides), "use_cache": use_cache}
        response = self.client.request("POST", "/pipelines/runs", json=body)
        return RESULT.validate_json(response.content)

    def reproduce(self, run_id: str, progress: Progress | None = None) -> Reproduction:
        """Re-execute a pipeline run on the server and compare."""
        response = self.client.request("POST", f"/pipelines/runs/{quote(run_id, safe='')}/reproduce")
        return ReproductionOutcome.model_validate_json(response.content).reproduction()

