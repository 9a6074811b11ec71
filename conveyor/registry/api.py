"""Registered models, versions, aliases, validation and approvals over HTTP (``/api/v1``)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict

from conveyor.core.config import RiskTier
from conveyor.governance.validation import ValidationReport
from conveyor.registry.cards import render_card
from conveyor.registry.schemas import ModelVersion, RegisteredModel
from conveyor.registry.service import RegistryService
from conveyor.server.endpoints import Endpoint, add_service_routes, permission_of
from conveyor.server.frames import read_arrow

ENDPOINTS = (
    Endpoint("create_registered_model", "POST", "/models", 201),
    Endpoint("list_registered_models", "GET", "/models"),
    Endpoint("get_registered_model", "GET", "/models/{name}"),
    Endpoint("create_model_version", "POST", "/models/{name}/versions", 201),
    Endpoint("list_model_versions", "GET", "/models/{name}/versions"),
    Endpoint("get_model_version", "GET", "/models/{name}/versions/{version}"),
    Endpoint("resolve", "GET", "/model-uris/resolve"),
    Endpoint("set_alias", "PUT", "/models/{name}/aliases/{alias}"),
    Endpoint("delete_alias", "DELETE", "/models/{name}/aliases/{alias}"),
    Endpoint("rollback_alias", "POST", "/models/{name}/aliases/{alias}/rollback"),
    Endpoint("alias_history", "GET", "/models/{name}/alias-history"),
    Endpoint("request_approval", "POST", "/models/{name}/versions/{version}/approval-requests", 201),
    Endpoint("approve", "POST", "/models/{name}/versions/{version}/approve"),
    Endpoint("reject", "POST", "/models/{name}/versions/{version}/reject"),
    Endpoint("archive", "POST", "/models/{name}/versions/{version}/archive"),
    Endpoint("list_approvals", "GET", "/models/{name}/versions/{version}/approvals"),
    Endpoint("list_validations", "GET", "/models/{name}/versions/{version}/validations"),
    Endpoint("validation_report", "GET", "/models/{name}/versions/{version}/validation-report"),
    Endpoint("feature_service_consumers", "GET", "/feature-service-consumers"),
)
"""Registry methods served as they are; updates, validation on uploaded data and cards have routes below."""


def registry(request: Request) -> RegistryService:
    """The registry of the server's workspace."""
    return request.app.state.workspace.registry


router = add_service_routes(APIRouter(tags=["registry"]), RegistryService, registry, ENDPOINTS)


class ModelUpdate(BaseModel):
    """The descriptive fields of a registered model, and its risk tier; omitted ones stay."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = None
    owner_team: str | None = None
    task_type: str | None = None
    intended_use: str | None = None
    limitations: str | None = None
    tags: dict[str, Any] | None = None
    risk_tier: RiskTier | None = None


@router.patch("/models/{name}", response_model=RegisteredModel,
              openapi_extra=permission_of(RegistryService.update_registered_model), summary="Update a registered model")
def update_registered_model(request: Request, name: str, body: ModelUpdate) -> RegisteredModel:
    """Change a model's descriptive fields or (validators and admins) its risk tier."""
    return registry(request).update_registered_model(name, **body.model_dump(exclude_none=True))


class ValidationOutcome(BaseModel):
    """The version after validation, and the report."""

    version: ModelVersion
    report: ValidationReport


@router.post("/models/{name}/versions/{version}/validate", response_model=ValidationOutcome,
             openapi_extra={**(permission_of(RegistryService.validate_version) or {}), "requestBody": {
                 "required": True, "content": {"application/vnd.apache.arrow.stream": {"schema": {"type": "string", "format": "binary"}}}}},
             summary="Validate a version on holdout data")
async def validate_version(
    request: Request, name: str, version: str, target: str | None = Query(None), segment: str | None = Query(None),
    time_column: str | None = Query(None), period: str = Query("M"),
) -> ValidationOutcome:
    """Validate the version on the holdout rows in the body (an Arrow IPC stream) against the
    champion, store the report and move the version's status by its outcome."""
    from starlette.concurrency import run_in_threadpool

    data = read_arrow(await request.body())
    updated, report = await run_in_threadpool(
        registry(request).validate_version, name, version, data, target=target, segment=segment,
        time_column=time_column, period=period,
    )
    return ValidationOutcome(version=updated, report=report)


@router.get("/models/{name}/versions/{version}/card", response_class=PlainTextResponse,
            openapi_extra=permission_of(RegistryService.get_model_version), summary="The version's model card")
def model_card(request: Request, name: str, version: str, format: Literal["md", "html"] = Query("md")) -> PlainTextResponse:
    """The model card as Markdown or HTML."""
    text = render_card(registry(request), name, version, format)
    return PlainTextResponse(text, media_type="text/html" if format == "html" else "text/markdown")
