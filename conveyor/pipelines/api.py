"""Pipelines and their runs over HTTP (``/api/v1/pipelines``).

A pipeline runs in the server process, synchronously as ``PipelineService.run`` does: the
request returns when the run has ended, with its result (a long run keeps the request
open; its tracked run is listed as ``RUNNING`` meanwhile). Relative paths in a pipeline
resolve from the server's workspace folder.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from conveyor.errors import ValidationError
from conveyor.pipelines.loading import parse_pipeline
from conveyor.pipelines.outputs import PipelineResult
from conveyor.pipelines.reproduce import Reproduction
from conveyor.pipelines.service import PipelineService
from conveyor.pipelines.spec import Pipeline
from conveyor.server.bodies import require, yaml_document
from conveyor.server.endpoints import JSON, Endpoint, add_service_routes, permission_of

ENDPOINTS = (
    Endpoint("list_runs", "GET", "/pipelines/runs"),
    Endpoint("get_run", "GET", "/pipelines/runs/{run_id}"),
)
"""Pipeline methods served as they are; running and reproducing have routes of their own below."""


def pipelines(request: Request) -> PipelineService:
    """The pipelines of the server's workspace."""
    return PipelineService(request.app.state.workspace)


def workspace_folder(request: Request) -> Path:
    """Where relative paths of pipelines sent to the server resolve from."""
    return Path(request.app.state.workspace.settings.workspace)


router = add_service_routes(APIRouter(tags=["pipelines"]), PipelineService, pipelines, ENDPOINTS)


class RunRequest(BaseModel):
    """A pipeline to run: its YAML text or a file on the server, with ``--set`` style overrides."""

    model_config = ConfigDict(extra="forbid")

    spec: str | None = Field(default=None, description="The pipeline as YAML text.")
    path: str | None = Field(default=None, description="A pipeline file on the server (relative: to its workspace).")
    overrides: list[str] = Field(default=[], description="KEY=VALUE settings, e.g. train.params.max_depth=6.")
    use_cache: bool = Field(default=True, description="Reuse the cached outputs of unchanged steps.")


def parse_spec(text: str, overrides: list[str]) -> Pipeline:
    """The pipeline of YAML text; errors name the line and key (``spec line 4, key train.estimator: ...``)."""
    document = yaml_document(text, "spec")
    return parse_pipeline(document, overrides, "spec", yaml.compose(text))


RESULT = TypeAdapter(PipelineResult)
"""Serialises (and, in the remote client, reads back) a pipeline's result."""


@router.post("/pipelines/runs", status_code=201, response_model=PipelineResult,
             openapi_extra=permission_of(PipelineService.run), summary="Run a pipeline")
def run_pipeline(request: Request, body: RunRequest) -> Response:
    """Run a pipeline (its YAML ``spec``, or a ``path`` on the server) as one tracked run and
    answer its result when it has ended; a failing step answers its error."""
    require(request, PipelineService.run)
    if (body.spec is None) == (body.path is None):
        raise ValidationError("give exactly one of 'spec' (the pipeline's YAML) or 'path' (a file on the server)",
                              field="spec")
    service, folder = pipelines(request), workspace_folder(request)
    if body.path is not None:
        result = service.run(folder / body.path, body.overrides, body.use_cache)
    else:
        result = service.run(parse_spec(body.spec or "", body.overrides), use_cache=body.use_cache, base=folder)
    return Response(RESULT.dump_json(result), status_code=201, media_type=JSON)


class ReproductionOutcome(BaseModel):
    """A reproduction: the new run's result, each metric (original, reproduced), and the verdicts."""

    original_run: str
    result: PipelineResult
    metrics: dict[str, tuple[float | None, float | None]]
    identical_model: bool
    warnings: list[str]
    metrics_match: bool

    @classmethod
    def of(cls, outcome: Reproduction) -> ReproductionOutcome:
        """The outcome as served."""
        values: dict[str, Any] = asdict(outcome)
        return cls(**{**values, "result": outcome.result, "metrics_match": outcome.metrics_match})

    def reproduction(self) -> Reproduction:
        """The outcome as ``PipelineService.reproduce`` returns it in-process."""
        return Reproduction(self.original_run, self.result, dict(self.metrics), self.identical_model, list(self.warnings))


@router.post("/pipelines/runs/{run_id}/reproduce", status_code=201, response_model=ReproductionOutcome,
             openapi_extra=permission_of(PipelineService.reproduce), summary="Reproduce a pipeline run")
def reproduce(request: Request, run_id: str) -> ReproductionOutcome:
    """Re-execute a pipeline run from its records (dataset snapshot, spec, seed) into a new run,
    and compare metrics and model files; synchronous like running."""
    return ReproductionOutcome.of(pipelines(request).reproduce(run_id))
