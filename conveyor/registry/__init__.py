"""Model registry: safe model packaging, registered models, versions, aliases,
approvals, validation and model cards.

Other capabilities call ``RegistryService`` (from ``Workspace.registry``) and the
packaging names re-exported here.
"""

from conveyor.registry.schemas import (
    AliasChange,
    Approval,
    LoggedModel,
    ModelVersion,
    RegisteredModel,
    RiskTier,
    ValidationRecord,
    VersionStatus,
)

__all__ = [
    "AliasChange",
    "Approval",
    "LoggedModel",
    "ModelVersion",
    "RegisteredModel",
    "RiskTier",
    "ValidationRecord",
    "VersionStatus",
]
