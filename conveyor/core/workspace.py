"""A workspace: settings plus the stores and services built from them.

The SDK and CLI get services from here, so the same code runs on the embedded
defaults or a team's PostgreSQL and object store.
"""

from __future__ import annotations

import functools
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conveyor.core.artifacts import ArtifactStore
from conveyor.core.config import Settings, find_workspace, load_settings
from conveyor.core.db import MetadataStore

if TYPE_CHECKING:
    from conveyor.automation import AutomationService
    from conveyor.governance import Actor, AuditLog
    from conveyor.monitoring.service import MonitoringService
    from conveyor.registry.service import RegistryService
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
            self.metadata, self.artifacts, self.settings.tracking, self.settings.state_dir / "wal"
        )

    @functools.cached_property
    def actor(self) -> Actor:
        """Who acts in this workspace (``CONVEYOR_USER``) and their roles."""
        from conveyor.governance import current_actor

        return current_actor(self.settings)

    @functools.cached_property
    def registry(self) -> RegistryService:
        """Registered models, versions, aliases and approvals."""
        from conveyor.registry.service import RegistryService

        return RegistryService(
            self.metadata, self.artifacts, self.tracking, self.settings.registry, self.actor, self.model_cache
        )

    @functools.cached_property
    def deployments(self) -> DeploymentService:
        """Named traffic policies over registered models, and their history."""
        from conveyor.serving.deployments import DeploymentService

        return DeploymentService(self.metadata, self.registry, self.audit, self.actor)

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

        return AuditLog(self.metadata)

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


_lock = threading.Lock()
_open: dict[tuple[Path, str], Workspace] = {}


def open_workspace(path: str | Path | None = None, **overrides: Any) -> Workspace:
    """The workspace at ``path`` (found from the current folder if omitted), opened once
    per process for the same settings."""
    settings = load_settings(Path(path) if path else find_workspace(), **overrides)
    key = (settings.workspace, settings.model_dump_json())
    with _lock:
        if key not in _open:
            _open[key] = Workspace(settings)
        return _open[key]
