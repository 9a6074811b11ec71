"""Validating a version: holdout metrics, the champion on the same data, stability
across segments and periods, population stability against the training data.

The report is stored as JSON and as a readable HTML page in the artifact store and
its outcome moves the version's status (see ``approvals.record_validation``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from conveyor.core.config import ValidationSettings
from conveyor.errors import Conflict, ValidationError
from conveyor.governance.permissions import Action, requires
from conveyor.governance.validation import DataProfile, ValidationReport
from conveyor.registry.schemas import ModelVersion, RegisteredModel

if TYPE_CHECKING:
    from conveyor.core.artifacts import ArtifactStore
    from conveyor.governance import Actor
    from conveyor.registry.packaging import Predictor

CHAMPION = "champion"


class ValidationOperations:
    """The validation side of ``RegistryService``."""

    artifacts: ArtifactStore
    actor: Actor
    if TYPE_CHECKING:  # provided by RegistryService
        from conveyor.core.config import RegistrySettings

        settings: RegistrySettings

        def get_registered_model(self, name: str) -> RegisteredModel: ...
        def get_model_version(self, name: str, version: int | str) -> ModelVersion: ...
        def load_model(self, uri: str, allow_pickle: bool = False, trusted_types: Sequence[str] = ()) -> Predictor: ...
        def record_validation(self, name: str, version: int | str, passed: bool, report_sha256: str,
                              html_sha256: str, summary: dict[str, Any], risk_tier: str) -> ModelVersion: ...
        def list_validations(self, name: str, version: int | str) -> list[Any]: ...

    @requires(Action.MODELS_READ)
    def reference_profile(self, version: ModelVersion) -> DataProfile | None:
        """The training-data profile stored with the version, if it was logged with one."""
        if version.profile_sha256 is None:
            return None
        from conveyor.governance.validation import DataProfile
        return DataProfile.model_validate_json(self.artifacts.get_bytes(version.profile_sha256))

    @requires(Action.MODELS_WRITE)
    def validate_version(
        self,
        name: str,
        version: int | str,
        data: pd.DataFrame,
        target: str | None = None,
        segment: str | None = None,
        time_column: str | None = None,
        period: str = "M",
        reference: pd.DataFrame | None = None,
        thresholds: ValidationSettings | None = None,
        allow_pickle: bool = False,
        trusted_types: Sequence[str] = (),
    ) -> tuple[ModelVersion, ValidationReport]:
        """Validate a version on holdout ``data`` against the current champion, store the
        report and move the version's status by its outcome.

        Args:
            target: the label column; default: the target named in the signature.
            segment: a column to report stability across (numeric ones are binned).
            time_column: a date column to report stability across ``period`` s.
            reference: training data for population stability; default: the profile
                logged with the model.
        """
        from conveyor.governance.validation import (
            DataProfile,
            ValidationThresholds,
            render_report_html,
            validate_model,
        )

        if not isinstance(data, pd.DataFrame):
            raise ValidationError(f"validation data must be a DataFrame, got {type(data).__name__}", field="data")
        model = self.get_registered_model(name)
        found = self.get_model_version(name, version)
        if found.status.value in ("rejected", "archived"):
            raise Conflict(f"version {found.version} of '{name}' is {found.status.value}; it is not validated again", field="version")
        candidate = self.load_model(found.uri, allow_pickle=allow_pickle, trusted_types=trusted_types)
        outputs = candidate.signature.outputs if candidate.signature else None
        target = target or (outputs.name if outputs else None)
        if not target:
            raise ValidationError("the model's signature names no target column: pass target=", field="target")
        champion_version = model.aliases.get(CHAMPION)
        champion = None
        if champion_version is not None and champion_version != found.version:
            champion = self.load_model(f"models:/{name}/{champion_version}", allow_pickle=allow_pickle, trusted_types=trusted_types)
        else:
            champion_version = None
        profile = DataProfile.from_frame(reference) if reference is not None else self.reference_profile(found)
        limits = thresholds or self.settings.validation
        report = validate_model(
            candidate, data, model=name, version=found.version, target=target,
            champion=champion, champion_version=champion_version, segment=segment, time_column=time_column,
            period=period, reference=profile, thresholds=ValidationThresholds(**limits.model_dump()),
            created_by=self.actor.name,
        )
        report_sha, _ = self.artifacts.put_bytes(report.to_json().encode())
        html_sha, _ = self.artifacts.put_bytes(render_report_html(report).encode())
        summary = {
            "rows": report.rows, "metrics": report.metrics, "champion_version": champion_version,
            "failed_checks": [check.name for check in report.checks if not check.passed and check.severity == "fail"],
        }
        updated = self.record_validation(name, found.version, report.passed, report_sha, html_sha, summary, model.risk_tier.value)
        return updated, report

    @requires(Action.MODELS_READ)
    def validation_report(self, name: str, version: int | str) -> tuple[ValidationReport, str] | None:
        """The latest validation report of a version and its HTML page, or ``None``."""
        records = self.list_validations(name, version)
        if not records:
            return None
        latest = records[-1]
        report = ValidationReport.model_validate_json(self.artifacts.get_bytes(latest.report_sha256))
        return report, self.artifacts.get_bytes(latest.html_sha256).decode()
