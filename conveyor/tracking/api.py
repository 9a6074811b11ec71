"""Experiments, runs, metrics and artifacts over HTTP (``/api/v1``)."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence

from fastapi import APIRouter, Body, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from conveyor.errors import ValidationError
from conveyor.server.endpoints import Endpoint, add_service_routes, permission_of
from conveyor.server.frames import frame_response
from conveyor.tracking.schemas import ArtifactInfo
from conveyor.tracking.service import TrackingService

ENDPOINTS = (
    Endpoint("create_experiment", "POST", "/experiments", 201),
    Endpoint("list_experiments", "GET", "/experiments"),
    Endpoint("get_experiment", "GET", "/experiments/{name_or_id}"),
    Endpoint("ensure_experiment", "PUT", "/experiments/{name}"),
    Endpoint("create_run", "POST", "/runs", 201),
    Endpoint("heartbeat", "POST", "/runs/heartbeat"),
    Endpoint("get_run", "GET", "/runs/{run_id}"),
    Endpoint("get_run_info", "GET", "/runs/{run_id}/info"),
    Endpoint("end_run", "POST", "/runs/{run_id}/end"),
    Endpoint("delete_run", "DELETE", "/runs/{run_id}"),
    Endpoint("log_params", "POST", "/runs/{run_id}/params"),
    Endpoint("set_tags", "POST", "/runs/{run_id}/tags"),
    Endpoint("log_metric_points", "POST", "/runs/{run_id}/metrics"),
    Endpoint("record_dataset", "POST", "/runs/{run_id}/datasets"),
    Endpoint("link_artifact", "POST", "/runs/{run_id}/artifact-links"),
    Endpoint("get_artifact", "GET", "/runs/{run_id}/artifact-info/{artifact_path:path}"),
    Endpoint("count_runs", "GET", "/stats/runs"),
    Endpoint("count_metric_points", "GET", "/stats/metric-points"),
)
"""Tracking methods served as they are; searching, frames and file transfer have routes of their own below."""

CHUNK = 1 << 20
SHA_HEADER = "X-Conveyor-SHA256"


def tracking(request: Request) -> TrackingService:
    """The tracking service of the server's workspace."""
    return request.app.state.workspace.tracking


router = add_service_routes(APIRouter(tags=["tracking"]), TrackingService, tracking, ENDPOINTS)


class SearchRuns(BaseModel):
    """A page of runs matching a filter (the in-process ``search_runs`` arguments)."""

    experiments: list[str] | None = None
    filter: str | None = None
    order_by: list[str] | None = None
    max_results: int = 1000
    offset: int = 0
    include_deleted: bool = False


@router.post("/runs/search", openapi_extra=permission_of(TrackingService.search_runs),
             summary="Runs matching a filter, one page")
def search_runs(request: Request, body: SearchRuns) -> object:
    """Runs matching ``filter`` ordered by ``order_by``: ``max_results`` of them from ``offset``
    (Arrow IPC with ``Accept: application/vnd.apache.arrow.stream``, else JSON)."""
    frame = tracking(request).search_runs(**body.model_dump())
    return frame_response(request, frame, {"X-Conveyor-Next-Offset": str(body.offset + len(frame))})


@router.post("/runs/compare", openapi_extra=permission_of(TrackingService.compare_runs),
             summary="Several runs side by side")
def compare_runs(request: Request, run_ids: Sequence[str] = Body(embed=True)) -> object:
    """Params, latest metrics and tags of ``run_ids``, one column per run."""
    return frame_response(request, tracking(request).compare_runs(list(run_ids)))


@router.get("/runs/{run_id}/metrics/{key:path}", openapi_extra=permission_of(TrackingService.get_metric_history),
            summary="Every value of a metric")
def get_metric_history(request: Request, run_id: str, key: str) -> object:
    """``step, value, timestamp`` of every logged point of a metric."""
    return frame_response(request, tracking(request).get_metric_history(run_id, key))


@router.put("/runs/{run_id}/artifacts/{artifact_path:path}", response_model=ArtifactInfo,
            openapi_extra=permission_of(TrackingService.log_file), summary="Upload an artifact")
async def upload_artifact(
    request: Request, run_id: str, artifact_path: str, kind: str = Query("file"),
    sha256: str | None = Header(None, alias=SHA_HEADER),
) -> ArtifactInfo:
    """Store the request body (streamed to disk) as the run's artifact; with the
    ``X-Conveyor-SHA256`` header the upload is refused unless its bytes hash to it."""
    from starlette.concurrency import run_in_threadpool

    handle, path = tempfile.mkstemp(prefix="conveyor-upload-")
    digest = hashlib.sha256()
    try:
        with os.fdopen(handle, "wb") as out:
            async for chunk in request.stream():
                digest.update(chunk)
                out.write(chunk)
        if sha256 is not None and digest.hexdigest() != sha256.lower():
            raise ValidationError(
                f"upload of '{artifact_path}' hashes to {digest.hexdigest()}, not the {SHA_HEADER} {sha256}", field="sha256")
        return await run_in_threadpool(tracking(request).log_file, run_id, path, artifact_path, kind)
    finally:
        os.unlink(path)


@router.get("/runs/{run_id}/artifacts/{artifact_path:path}", openapi_extra=permission_of(TrackingService.get_artifact),
            summary="Download an artifact", response_class=StreamingResponse)
def download_artifact(request: Request, run_id: str, artifact_path: str) -> StreamingResponse:
    """The artifact's bytes, streamed and verified against its checksum (sent as ``X-Conveyor-SHA256``)."""
    service = tracking(request)
    info = service.get_artifact(run_id, artifact_path)
    return _blob(service, info.sha256, info.size)


@router.get("/blobs/{sha256}", openapi_extra=permission_of(TrackingService.blob_chunks),
            summary="Download a stored blob by its sha256", response_class=StreamingResponse)
def download_blob(request: Request, sha256: str) -> StreamingResponse:
    """A content-addressed blob (model files are read this way), streamed and verified."""
    service = tracking(request)
    return _blob(service, sha256, None)


def _blob(service: TrackingService, sha256: str, size: int | None) -> StreamingResponse:
    chunks = service.blob_chunks(sha256)
    headers = {SHA_HEADER: sha256, "ETag": f'"{sha256}"'}
    if size is not None:
        headers["Content-Length"] = str(size)
    return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)
