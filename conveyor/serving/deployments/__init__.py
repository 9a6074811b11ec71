"""Deployments: a named, versioned traffic policy over a registered model's aliases and versions."""

from conveyor.serving.deployments.service import Deployment, DeploymentService
from conveyor.serving.deployments.spec import DeploymentSpec, Route

__all__ = ["Deployment", "DeploymentService", "DeploymentSpec", "Route"]
