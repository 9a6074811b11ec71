"""Deployments over HTTP (``/api/v1/deployments``): traffic policies over a registered
model's aliases and versions, their revisions and rollback."""

from __future__ import annotations

from fastapi import APIRouter, Request

from conveyor.server.endpoints import Endpoint, add_service_routes
from conveyor.serving.deployments.service import DeploymentService

ENDPOINTS = (
    Endpoint("list", "GET", "/deployments"),
    Endpoint("create", "POST", "/deployments", 201),
    Endpoint("get", "GET", "/deployments/{name}"),
    Endpoint("update", "PUT", "/deployments/{name}"),
    Endpoint("history", "GET", "/deployments/{name}/revisions"),
    Endpoint("sync", "POST", "/deployments/{name}/sync"),
    Endpoint("rollback", "POST", "/deployments/{name}/rollback"),
)
"""Every deployment method is served as it is (a deployment cannot be deleted: its history stays)."""


def deployments(request: Request) -> DeploymentService:
    """The deployments of the server's workspace."""
    return request.app.state.workspace.deployments


router = add_service_routes(APIRouter(tags=["deployments"]), DeploymentService, deployments, ENDPOINTS)
