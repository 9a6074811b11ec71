"""Automation over HTTP (``/api/v1/automation``): retraining policies, their jobs, the watches
of new champions, automation events and the agents.

A policy is sent as YAML or JSON; its ``retrain.pipeline`` names a pipeline file on the
server (relative: to its workspace folder). Webhook secrets of a policy's ``notify``
channels never leave the server: every answer masks them.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from conveyor.automation.jobs import Job
from conveyor.automation.policy import Policy, parse_policy
from conveyor.automation.service import AutomationService
from conveyor.server.bodies import require, text_body, yaml_document
from conveyor.server.endpoints import JSON, Endpoint, add_service_routes, permission_of

ENDPOINTS = (
    Endpoint("list_policies", "GET", "/automation/policies"),
    Endpoint("get_policy", "GET", "/automation/policies/{name}"),
    Endpoint("delete_policy", "DELETE", "/automation/policies/{name}"),
    Endpoint("set_paused", "PUT", "/automation/policies/{name}/paused"),
    Endpoint("list_jobs", "GET", "/automation/jobs"),
    Endpoint("job_counts", "GET", "/automation/job-counts"),
    Endpoint("get_job", "GET", "/automation/jobs/{job_id}"),
    Endpoint("retry_job", "POST", "/automation/jobs/{job_id}/retry"),
    Endpoint("watches", "GET", "/automation/watches"),
    Endpoint("list_events", "GET", "/automation/events"),
    Endpoint("agents", "GET", "/automation/agents"),
)
"""Automation methods served as they are; applying a policy and cancelling a job have routes below
(an agent is not served: it runs next to the database)."""


def automation(request: Request) -> AutomationService:
    """The automation service of the server's workspace."""
    return request.app.state.workspace.automation


router = add_service_routes(APIRouter(tags=["automation"]), AutomationService, automation, ENDPOINTS)


@router.post("/automation/policies", status_code=201, response_model=Policy, summary="Apply a policy",
             openapi_extra={**(permission_of(AutomationService.apply_policy) or {}), **text_body()})
async def apply_policy(request: Request) -> Response:
    """Check a policy (the body: YAML or JSON) and its pipeline, then store it; its evaluation
    state survives a change. The answer is the policy as stored, webhook secrets masked."""
    require(request, AutomationService.apply_policy)
    document = yaml_document(await request.body(), "policy")
    policy = parse_policy(document, "policy", Path(request.app.state.workspace.settings.workspace))
    applied = await run_in_threadpool(automation(request).apply_policy, policy)
    return Response(applied.model_dump_json(), status_code=201, media_type=JSON)


@router.post("/automation/jobs/{job_id}/cancel", response_model=Job, summary="Cancel a job",
             openapi_extra=permission_of(AutomationService.cancel_job))
def cancel_job(request: Request, job_id: str) -> Job:
    """Cancel a job by id or unique prefix: at once if pending or waiting, at its next step if running."""
    return automation(request).cancel_job(job_id)
