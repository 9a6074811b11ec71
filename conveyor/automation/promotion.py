"""Promoting a retrained candidate: at once for automatic risk tiers, through the
registry's approval workflow for the others.

Every step is idempotent (setting an alias to the version it holds changes nothing; an
open approval request is not asked twice), so an agent that takes over a job can repeat
it safely.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conveyor.automation.jobs import SUCCEEDED, WAITING
from conveyor.automation.policy import Policy
from conveyor.errors import Conflict
from conveyor.registry.schemas import VersionStatus

if TYPE_CHECKING:
    from conveyor.core.workspace import Workspace

PROMOTABLE = (VersionStatus.VALIDATED.value, VersionStatus.APPROVED.value)


@dataclass(frozen=True)
class Outcome:
    """How a job's work ended: the job status to record and its result."""

    status: str
    result: dict[str, Any] = field(default_factory=dict)
    summary: str = ""


def promote(workspace: Workspace, policy: Policy, version: int, details: dict[str, Any]) -> Outcome:
    """Point the policy's alias at ``version`` if its tier is automatic (or it is approved);
    otherwise ask for approval and leave the job waiting."""
    registry = workspace.registry
    model = registry.get_registered_model(policy.model)
    current = model.aliases.get(policy.alias)
    result = {**details, "version": version, "previous": current}
    label = f"{policy.model} version {version}"
    if current == version:
        return Outcome(SUCCEEDED, {**result, "outcome": "unchanged"}, f"{label} is already {policy.alias}")
    status = registry.get_model_version(policy.model, version).status.value
    if status not in PROMOTABLE:
        return Outcome(SUCCEEDED, {**result, "outcome": "not_promoted", "reason": f"version {version} is {status}"},
                       f"{label} is {status}: not promoted")
    if model.risk_tier in policy.promotion.automatic_tiers or status == VersionStatus.APPROVED.value:
        try:
            registry.set_alias(policy.model, policy.alias, version)
        except Conflict:
            pass
        else:
            return Outcome(SUCCEEDED, {**result, "outcome": "promoted"},
                           f"{label} promoted to {policy.alias} (was {current})")
    if status == VersionStatus.VALIDATED.value:
        try:
            registry.request_approval(policy.model, version, f"retrained by policy {policy.name}; "
                                      f"beats {policy.alias} (version {current}) on recent labelled data")
        except Conflict:
            pass
    return Outcome(WAITING, {**result, "outcome": "awaiting_approval", "risk_tier": model.risk_tier},
                   f"{label} (risk tier {model.risk_tier.value}) awaits a validator's approval")


def decide_waiting(workspace: Workspace, policy: Policy, result: dict[str, Any]) -> Outcome | None:
    """The end of a job waiting for approval, once the validator decided; None while undecided."""
    version = int(result["version"])
    status = workspace.registry.get_model_version(policy.model, version).status.value
    if status == VersionStatus.APPROVED.value:
        return promote(workspace, policy, version, {k: v for k, v in result.items() if k not in ("outcome", "risk_tier")})
    if status in (VersionStatus.REJECTED.value, VersionStatus.ARCHIVED.value):
        return Outcome(SUCCEEDED, {**result, "outcome": "not_promoted", "reason": f"version {version} was {status}"},
                       f"{policy.model} version {version} was {status} by a validator: not promoted")
    return None
