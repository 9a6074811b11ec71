"""The approval workflow holds: tests try to break each rule."""

from __future__ import annotations

import pytest
from registry_support import as_user, credit_frame, log_version

from conveyor.core.workspace import Workspace
from conveyor.errors import Conflict, PermissionDenied, ValidationError

pytestmark = pytest.mark.both_modes


@pytest.fixture
def people(workspace: Workspace) -> dict[str, Workspace]:
    """A data scientist who builds models, two validators, one admin."""
    opened = {
        "ann": as_user(workspace, "ann", ["data-scientist"]),
        "val": as_user(workspace, "val", ["validator"]),
        "vic": as_user(workspace, "vic", ["validator"]),
        "root": as_user(workspace, "root", ["platform-admin"]),
    }
    yield opened
    for ws in opened.values():
        ws.close()


def _validated(people: dict[str, Workspace], name: str = "credit-risk", tier: str = "high") -> int:
    ann = people["ann"].registry
    if tier:
        ann.create_registered_model(name, risk_tier=tier, owner_team="credit")
    version = log_version(people["ann"], name, credit_frame(seed=1))
    updated, report = ann.validate_version(name, version.version, credit_frame(seed=2))
    assert report.passed, report.checks
    assert updated.status.value == "validated"
    return version.version


def test_version_starts_as_candidate_and_validation_moves_it(people: dict[str, Workspace]) -> None:
    ann = people["ann"].registry
    version = log_version(people["ann"], "credit-risk", credit_frame(seed=1))
    assert version.status.value == "candidate"
    assert version.created_by == "ann"
    updated, _ = ann.validate_version("credit-risk", version.version, credit_frame(seed=2))
    assert updated.status.value == "validated"


def test_full_workflow_approves_and_allows_champion(people: dict[str, Workspace]) -> None:
    version = _validated(people)
    people["ann"].registry.request_approval("credit-risk", version, "ready for review")
    approved = people["val"].registry.approve("credit-risk", version, "checked the report")
    assert approved.status.value == "approved"
    champion = people["ann"].registry.set_alias("credit-risk", "champion", version)
    assert champion.aliases == ["champion"]
    approvals = people["ann"].registry.list_approvals("credit-risk", version)
    assert [(a.requested_by, a.decision, a.decided_by) for a in approvals] == [("ann", "approved", "val")]


def test_creator_cannot_approve_own_version_even_as_validator(people: dict[str, Workspace], workspace: Workspace) -> None:
    both = as_user(workspace, "ann", ["data-scientist", "validator"])
    version = _validated(people)
    people["ann"].registry.request_approval("credit-risk", version)
    with pytest.raises(PermissionDenied, match="created version 1") as error:
        both.registry.approve("credit-risk", version)
    assert error.value.field == "user"
    assert people["ann"].registry.get_model_version("credit-risk", version).status.value == "validated"
    both.close()


def test_only_validators_approve_or_reject(people: dict[str, Workspace]) -> None:
    version = _validated(people)
    people["ann"].registry.request_approval("credit-risk", version)
    for who in ("root", "ann"):
        with pytest.raises(PermissionDenied, match="needs role validator"):
            people[who].registry.approve("credit-risk", version)
        with pytest.raises(PermissionDenied, match="needs role validator"):
            people[who].registry.reject("credit-risk", version, "no")


def test_rejected_version_cannot_be_approved_or_promoted(people: dict[str, Workspace]) -> None:
    version = _validated(people)
    people["ann"].registry.request_approval("credit-risk", version)
    rejected = people["val"].registry.reject("credit-risk", version, "unstable across grades")
    assert rejected.status.value == "rejected"
    with pytest.raises(Conflict, match="rejected and cannot become approved"):
        people["vic"].registry.approve("credit-risk", version)
    with pytest.raises(Conflict, match="no approval is requested|only a validated version"):
        people["ann"].registry.request_approval("credit-risk", version)
    with pytest.raises(Conflict, match="rejected and cannot hold alias"):
        people["ann"].registry.set_alias("credit-risk", "challenger", version)
    decided = people["ann"].registry.list_approvals("credit-risk", version)[-1]
    assert (decided.decision, decided.reason) == ("rejected", "unstable across grades")


def test_reject_needs_a_reason(people: dict[str, Workspace]) -> None:
    version = _validated(people)
    with pytest.raises(ValidationError) as error:
        people["val"].registry.reject("credit-risk", version, "  ")
    assert error.value.field == "reason"


def test_approval_needs_a_request_and_a_validated_version(people: dict[str, Workspace]) -> None:
    people["ann"].registry.create_registered_model("credit-risk", risk_tier="high")
    candidate = log_version(people["ann"], "credit-risk", credit_frame(seed=1))
    with pytest.raises(Conflict, match="validate it first"):
        people["ann"].registry.request_approval("credit-risk", candidate.version)
    with pytest.raises(Conflict, match="candidate and cannot become approved"):
        people["val"].registry.approve("credit-risk", candidate.version)
    updated, _ = people["ann"].registry.validate_version("credit-risk", candidate.version, credit_frame(seed=2))
    with pytest.raises(Conflict, match="no approval is requested"):
        people["val"].registry.approve("credit-risk", updated.version)
    people["ann"].registry.request_approval("credit-risk", updated.version)
    with pytest.raises(Conflict, match="already requested"):
        people["ann"].registry.request_approval("credit-risk", updated.version)


def test_unapproved_high_risk_model_cannot_become_champion(people: dict[str, Workspace]) -> None:
    version = _validated(people)
    with pytest.raises(Conflict, match=r"\(risk tier high\) is validated: it must be approved"):
        people["ann"].registry.set_alias("credit-risk", "champion", version)
    with pytest.raises(Conflict, match="must be approved"):
        people["root"].registry.set_alias("credit-risk", "champion", version)
    assert people["ann"].registry.get_registered_model("credit-risk").aliases == {}
    assert people["ann"].registry.set_alias("credit-risk", "challenger", version).aliases == ["challenger"]


def test_medium_tier_may_become_champion_without_approval(people: dict[str, Workspace]) -> None:
    version = log_version(people["ann"], "churn", credit_frame(seed=1))
    assert people["ann"].registry.get_registered_model("churn").risk_tier.value == "medium"
    assert people["ann"].registry.set_alias("churn", "champion", version.version).aliases == ["champion"]


@pytest.mark.local_only  # needs workspace settings a server decides
def test_low_tier_auto_approves_when_validation_passes(workspace: Workspace) -> None:
    ann = as_user(workspace, "ann", registry={"auto_approve_tiers": ["low"]})
    ann.registry.create_registered_model("next-offer", risk_tier="low")
    version = log_version(ann, "next-offer", credit_frame(seed=1))
    updated, _ = ann.registry.validate_version("next-offer", version.version, credit_frame(seed=2))
    assert updated.status.value == "approved"
    actions = [(e.actor, e.action) for e in ann.audit.list_entries("next-offer", newest_first=False)]
    assert ("conveyor", "version.auto_approved") in actions
    ann.close()


def test_failed_validation_keeps_candidate(people: dict[str, Workspace]) -> None:
    ann = people["ann"].registry
    version = log_version(people["ann"], "credit-risk", credit_frame(seed=1))
    updated, report = ann.validate_version("credit-risk", version.version, credit_frame(rows=50, seed=2))
    assert not report.passed
    assert updated.status.value == "candidate"
    assert ann.list_validations("credit-risk", version.version)[-1].summary["failed_checks"]


def test_only_validators_or_admins_change_the_risk_tier(people: dict[str, Workspace]) -> None:
    people["ann"].registry.create_registered_model("credit-risk", risk_tier="high")
    with pytest.raises(PermissionDenied, match="lacks permission models.set_tier"):
        people["ann"].registry.update_registered_model("credit-risk", risk_tier="low")
    assert people["root"].registry.update_registered_model("credit-risk", risk_tier="medium").risk_tier.value == "medium"
    assert people["ann"].registry.update_registered_model("credit-risk", owner_team="risk").owner_team == "risk"
    assert people["val"].registry.update_registered_model("credit-risk", risk_tier="high").risk_tier.value == "high"
    with pytest.raises(PermissionDenied, match="lacks permission models.write"):
        people["val"].registry.update_registered_model("credit-risk", owner_team="validation", risk_tier="low")


def test_archived_version_holding_no_alias_only(people: dict[str, Workspace]) -> None:
    version = log_version(people["ann"], "churn", credit_frame(seed=1)).version
    people["ann"].registry.set_alias("churn", "challenger", version)
    with pytest.raises(Conflict, match="holds alias challenger"):
        people["ann"].registry.archive("churn", version)
    people["ann"].registry.delete_alias("churn", "challenger")
    assert people["ann"].registry.archive("churn", version).status.value == "archived"
    with pytest.raises(Conflict, match="is archived"):
        people["ann"].registry.validate_version("churn", version, credit_frame(seed=2))
