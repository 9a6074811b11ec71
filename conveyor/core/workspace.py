"""A workspace: settings plus the stores and services built from them.

The SDK and CLI get services from here, so the same code runs on the embedded
defaults or a team's PostgreSQL and object store.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.core.artifacts import ArtifactStore, BlobReader
from conveyor.core.config import Settings, find_workspace, load_settings
from conveyor.core.db import MetadataStore
from conveyor.errors import ValidationError

if TYPE_CHECKING:
    from conveyor.automation import AutomationService
    from conveyor.features.store import FeatureStore
    from conveyor.governance import Actor, AuditLog, IdentityService
    from conveyor.monitoring.service import MonitoringService
    from conveyor.registry.service import RegistryService
    from conveyor.server.client import ServerClient
    from conveyor.serving.deployments import DeploymentService
    from conveyor.tracking.service import TrackingService


class Workspace:
    """Lazily opened stores and services of one set of settings."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @functools.cached_property
    def metadata(self) -> MetadataStore:
        """The metadata store, migrated to the current schema."""
        return MetadataStore(self.settings.metadata_url, self.settings.metadata.pool_size)

    @functools.cached_property
    def artifacts(self) -> ArtifactStore:
        """The content-addressed artifact store."""
        return ArtifactStore(self.settings.artifacts_url)

    @functools.cached_property
    def tracking(self) -> TrackingService:
        """Experiments and runs."""
        from conveyor.tracking.service import TrackingService

        return TrackingService(
            self.metadata, self.artifacts, self.settings.tracking, self.settings.state_dir / "wal", self.default_actor
        )

    @functools.cached_property
    def default_actor(self) -> Actor:
        """Who acts in this workspace when no server request names someone (``CONVEYOR_USER``):
        a stored user with their roles in ``settings.project``, else with the configured roles."""
        from conveyor.governance import current_actor

        return current_actor(self.settings, self.identity.find_actor)

    @functools.cached_property
    def identity(self) -> IdentityService:
        """Users, API tokens, projects and grants."""
        from conveyor.governance import IdentityService

        return IdentityService(self.metadata, lambda: self.actor)

    @property
    def actor(self) -> Actor:
        """Who acts now: the server request's user inside ``acting_as``, else the default actor."""
        from conveyor.governance import request_actor

        return request_actor() or self.default_actor

    @functools.cached_property
    def registry(self) -> RegistryService:
        """Registered models, versions, aliases and approvals."""
        from conveyor.registry.service import RegistryService

        return RegistryService(
            self.metadata, self.artifacts, self.tracking, self.settings.registry, self.default_actor, self.model_cache
        )

    @functools.cached_property
    def deployments(self) -> DeploymentService:
        """Named traffic policies over registered models, and their history."""
        from conveyor.serving.deployments import DeploymentService

        return DeploymentService(self.metadata, self.registry, self.audit, self.default_actor)

    @functools.cached_property
    def monitoring(self) -> MonitoringService:
        """Checks on the prediction log, their stored results and alerts."""
        from conveyor.monitoring.service import MonitoringService

        return MonitoringService(self)

    @functools.cached_property
    def automation(self) -> AutomationService:
        """Retraining policies, their jobs, watches and events."""
        from conveyor.automation import AutomationService

        return AutomationService(self)

    @functools.cached_property
    def audit(self) -> AuditLog:
        """The tamper-evident log of every registry state change."""
        from conveyor.governance import AuditLog

        return AuditLog(self.metadata, self.default_actor)

    @property
    def feature_store_type(self) -> type[FeatureStore]:
        """The class of this workspace's feature store (``conveyor.FeatureStore(...)`` asks): in-process."""
        from conveyor.features.store import FeatureStore

        return FeatureStore

    @property
    def model_cache(self) -> Path:
        """Where loaded models' files are kept, one folder per manifest hash."""
        return self.settings.state_dir / "models"

    def close(self) -> None:
        """Finish open runs, drain metrics, release connections."""
        if "tracking" in self.__dict__:
            self.tracking.close()
        if "metadata" in self.__dict__:
            self.metadata.dispose()


class RemoteWorkspace(Workspace):
    """A workspace whose services are a Conveyor server's API (``CONVEYOR_SERVER``): the
    same interfaces as in-process, so the SDK and CLI work unchanged against a team's server."""

    @functools.cached_property
    def client(self) -> ServerClient:
        """The authenticated connection to the server."""
        from conveyor.server.client import ServerClient

        assert self.settings.server is not None
        return ServerClient(self.settings.server, self.settings.token, getattr(self.settings, "project", None))

    @functools.cached_property
    def default_actor(self) -> Actor:
        """The configured user: the server decides what their token lets them do."""
        from conveyor.governance import current_actor

        return current_actor(self.settings)

    @functools.cached_property
    def metadata(self) -> MetadataStore:
        """Not available: a remote workspace reaches its stores only through the server."""
        raise ValidationError(f"this workspace works through the server at {self.settings.server}; "
                              "it has no direct metadata store", field="server")

    @functools.cached_property
    def artifacts(self) -> BlobReader:  # type: ignore[override]
        """The server's blobs, read through its API."""
        return self.tracking.artifacts

    @functools.cached_property
    def tracking(self) -> TrackingService:
        """Experiments and runs on the server."""
        from conveyor.tracking.remote import RemoteTracking

        return RemoteTracking(self.client, self.settings.tracking)  # type: ignore[return-value]

    @functools.cached_property
    def registry(self) -> RegistryService:
        """Registered models, versions, aliases and approvals on the server; models load here."""
        from conveyor.registry.remote import RemoteRegistry

        return RemoteRegistry(self.client, self.tracking, self.settings.registry, self.model_cache)  # type: ignore[arg-type, return-value]

    @functools.cached_property
    def deployments(self) -> DeploymentService:
        """Deployments on the server."""
        from conveyor.serving.deployments.remote import RemoteDeployments

        return RemoteDeployments(self.client)  # type: ignore[return-value]

    @functools.cached_property
    def monitoring(self) -> MonitoringService:
        """Monitoring on the server: checks run there, next to the prediction log."""
        from conveyor.monitoring.remote import RemoteMonitoring

        return RemoteMonitoring(self.client)  # type: ignore[return-value]

    @functools.cached_property
    def automation(self) -> AutomationService:
        """Retraining policies, jobs, watches and events on the server."""
        from conveyor.automation.remote import RemoteAutomation

        return RemoteAutomation(self.client)  # type: ignore[return-value]

    @functools.cached_property
    def audit(self) -> AuditLog:
        """The server's audit log, read through its API."""
        from conveyor.governance.remote import RemoteAudit

        return RemoteAudit(self.client)  # type: ignore[return-value]

    @property
    def feature_store_type(self) -> type[FeatureStore]:
        """The feature store over the server's API: the same interface, definitions read here."""
        from conveyor.features.remote import RemoteFeatureStore

        return RemoteFeatureStore  # type: ignore[return-value]

    @functools.cached_property
    def identity(self) -> IdentityService:
        """Users, projects, grants and API tokens on the server."""
        from conveyor.governance.remote import RemoteIdentity

        return RemoteIdentity(self.client)  # type: ignore[return-value]

    def close(self) -> None:
        """Send pending metrics, finish open runs, close the connection."""
        if "tracking" in self.__dict__:
            self.tracking.close()
        if "client" in self.__dict__:
            self.client.close()


_lock = threading.Lock()
_open: dict[tuple[Path, str], Workspace] = {}


def workspace_of(settings: Settings) -> Workspace:
    """The workspace these settings describe: remote when they name a server, else in-process."""
    return RemoteWorkspace(settings) if settings.server else Workspace(settings)


def open_workspace(path: str | Path | None = None, **overrides: Any) -> Workspace:
    """The workspace at ``path`` (found from the current folder if omitted), opened once
    per process for the same settings."""
    settings = load_settings(Path(path) if path else find_workspace(), **overrides)
    key = (settings.workspace, settings.model_dump_json())
    with _lock:
        if key not in _open:
            _open[key] = workspace_of(settings)
        return _open[key]
