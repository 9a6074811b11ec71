"""The registry of a remote workspace: the same interface, over the server's API.

Models load here, in the client: the version is resolved on the server, its files
stream into the local model cache and are verified against the manifest before use.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from conveyor.core.config import RegistrySettings, ValidationSettings
from conveyor.errors import ValidationError
from conveyor.governance.validation import ValidationReport
from conveyor.registry.api import ENDPOINTS, ModelUpdate, ValidationOutcome
from conveyor.registry.loading import load_resolved
from conveyor.registry.packaging import Predictor
from conveyor.registry.schemas import ModelVersion, RegisteredModel
from conveyor.registry.service import RegistryService
from conveyor.server.client import RemoteService, ServerClient
from conveyor.server.frames import arrow_bytes
from conveyor.tracking.remote import RemoteTracking


class RemoteRegistry(RemoteService):
    """``RegistryService`` over HTTP."""

    service_type = RegistryService
    prefix = ""
    endpoints = ENDPOINTS

    def __init__(self, client: ServerClient, tracking: RemoteTracking, settings: RegistrySettings, cache: Path) -> None:
        super().__init__(client)
        self.tracking = tracking
        self.artifacts = tracking.artifacts
        self.settings = settings
        self.cache = cache

    def update_registered_model(self, name: str, **changes: Any) -> RegisteredModel:
        """Change a model's descriptive fields or its risk tier."""
        body = ModelUpdate.model_validate(changes).model_dump(mode="json", exclude_none=True)
        response = self.client.request("PATCH", f"/models/{name}", json=body)
        return RegisteredModel.model_validate_json(response.content)

    def load_model(self, uri: str, allow_pickle: bool = False, trusted_types: Sequence[str] = (),
                   schema_mode: Literal["error", "coerce"] = "error") -> Predictor:
        """The model a URI names, loaded in this process from verified files."""
        version, manifest_sha = self.resolve(uri)
        trusted = [*self.settings.trusted_types, *trusted_types]
        return load_resolved(self.artifacts, self.cache, uri, version, manifest_sha, allow_pickle, trusted, schema_mode)

    def validate_version(
        self, name: str, version: int | str, data: pd.DataFrame, target: str | None = None, segment: str | None = None,
        time_column: str | None = None, period: str = "M", reference: pd.DataFrame | None = None,
        thresholds: ValidationSettings | None = None, allow_pickle: bool = False, trusted_types: Sequence[str] = (),
    ) -> tuple[ModelVersion, ValidationReport]:
        """Validate a version on the server against holdout ``data`` sent from here.

        The server validates with its own thresholds and the version's training profile:
        ``reference``, ``thresholds`` and the loading options apply only in-process.
        """
        for option, value in (("reference", reference), ("thresholds", thresholds), ("trusted_types", trusted_types or None)):
            if value is not None:
                raise ValidationError(f"{option} cannot be sent to a server: it validates with its own settings", field=option)
        params = {key: value for key, value in {"target": target, "segment": segment, "time_column": time_column,
                                                "period": period}.items() if value is not None}
        response = self.client.request(
            "POST", f"/models/{name}/versions/{version}/validate", params=params, content=arrow_bytes(data),
            headers={"content-type": "application/vnd.apache.arrow.stream"},
        )
        outcome = ValidationOutcome.model_validate_json(response.content)
        return outcome.version, outcome.report
