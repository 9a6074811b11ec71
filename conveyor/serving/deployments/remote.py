"""The deployments of a remote workspace: the same interface, over the server's API."""

from __future__ import annotations

from conveyor.server.client import RemoteService
from conveyor.serving.deployments.api import ENDPOINTS
from conveyor.serving.deployments.service import DeploymentService


class RemoteDeployments(RemoteService):
    """``DeploymentService`` over HTTP."""

    service_type = DeploymentService
    prefix = ""
    endpoints = ENDPOINTS
