"""The lifecycle of a version and its approval workflow.

``candidate`` -> ``validated`` (validation passed) -> ``approved`` (by a validator
who did not create it) -> ``archived``; ``rejected`` from candidate or validated.
Nothing else moves a status, and every move is audited.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select, update

from conveyor.core.db.base import now_ms
from conveyor.errors import Conflict, PermissionDenied, ValidationError
from conveyor.governance import SYSTEM_ACTOR, Action, requires
from conveyor.registry.schemas import (
    Approval,
    ModelVersion,
    ValidationRecord,
    VersionStatus,
)
from conveyor.registry.tables import approvals, model_aliases, validation_reports

if TYPE_CHECKING:
    from conveyor.core.config import RegistrySettings
    from conveyor.core.db import MetadataStore
    from conveyor.governance import Actor, AuditedTransaction, AuditLog

S = VersionStatus
TRANSITIONS: dict[VersionStatus, frozenset[VersionStatus]] = {
    S.CANDIDATE: frozenset({S.VALIDATED, S.REJECTED, S.ARCHIVED}),
    S.VALIDATED: frozenset({S.CANDIDATE, S.APPROVED, S.REJECTED, S.ARCHIVED}),
    S.APPROVED: frozenset({S.ARCHIVED}),
    S.REJECTED: frozenset({S.ARCHIVED}),
    S.ARCHIVED: frozenset(),
}


def check_transition(name: str, version: int, current: str, target: VersionStatus) -> None:
    """Refuse a status change the lifecycle does not allow, saying why."""
    if target not in TRANSITIONS[VersionStatus(current)]:
        hint = " (a rejected version stays rejected: register a new version)" if current == S.REJECTED.value else ""
        raise Conflict(f"version {version} of '{name}' is {current} and cannot become {target.value}{hint}", field="version")


class ApprovalOperations:
    """The lifecycle side of ``RegistryService``."""

    store: MetadataStore
    audit: AuditLog
    actor: Actor
    settings: RegistrySettings
    if TYPE_CHECKING:  # provided by RegistryService

        def _version_row(self, conn: Connection, name: str, version: int | str) -> tuple[Any, Any]: ...
        def get_model_version(self, name: str, version: int | str) -> ModelVersion: ...
        def _set_status(self, tx: AuditedTransaction, name: str, row: Any, status: VersionStatus, action: str,
                        actor: str, extra: dict[str, Any] | None = None) -> None: ...

    def _open_request(self, conn: Connection, version_id: str) -> Any:
        return conn.execute(select(approvals).where(
            approvals.c.version_id == version_id, approvals.c.decision.is_(None)
        ).order_by(approvals.c.id.desc())).first()

    @requires(Action.MODELS_WRITE)
    def request_approval(self, name: str, version: int | str, comment: str | None = None) -> Approval:
        """Ask a validator to approve a validated version."""
        with self.audit.transaction() as tx:
            _, row = self._version_row(tx.conn, name, version)
            if row.status != S.VALIDATED.value:
                hint = ": validate it first (conveyor models validate)" if row.status == S.CANDIDATE.value else ""
                raise Conflict(f"version {row.version} of '{name}' is {row.status}; only a validated version can be "
                               f"submitted for approval{hint}", field="version")
            if self._open_request(tx.conn, row.id) is not None:
                raise Conflict(f"approval of version {row.version} of '{name}' is already requested", field="version")
            tx.conn.execute(approvals.insert().values(
                version_id=row.id, requested_by=self.actor.name, requested_at=now_ms(), comment=comment
            ))
            tx.record(self.actor.name, "approval.requested", f"{name}/{row.version}", None, {"comment": comment})
        return self.list_approvals(name, row.version)[-1]

    def _decide(self, name: str, version: int | str, decision: VersionStatus, reason: str | None) -> ModelVersion:
        verb = "approve" if decision is S.APPROVED else "reject"
        with self.audit.transaction() as tx:
            _, row = self._version_row(tx.conn, name, version)
            if row.created_by == self.actor.name:
                raise PermissionDenied(
                    f"user '{self.actor.name}' created version {row.version} of '{name}' and may not {verb} it; "
                    "another validator must", field="user",
                )
            check_transition(name, row.version, row.status, decision)
            request = self._open_request(tx.conn, row.id)
            if request is None and decision is S.APPROVED:
                raise Conflict(f"no approval is requested for version {row.version} of '{name}' "
                               "(conveyor models request-approval)", field="version")
            if request is not None:
                tx.conn.execute(update(approvals).where(approvals.c.id == request.id).values(
                    decision=decision.value, decided_by=self.actor.name, decided_at=now_ms(), reason=reason
                ))
            self._set_status(tx, name, row, decision, f"approval.{decision.value}", self.actor.name, {"reason": reason})
        return self.get_model_version(name, row.version)

    @requires(Action.MODELS_APPROVE)
    def approve(self, name: str, version: int | str, comment: str | None = None) -> ModelVersion:
        """Approve a validated version whose approval was requested; only a validator who
        did not create it may."""
        return self._decide(name, version, S.APPROVED, comment)

    @requires(Action.MODELS_APPROVE)
    def reject(self, name: str, version: int | str, reason: str) -> ModelVersion:
        """Reject a candidate or validated version (closing its approval request, if any),
        with the reason recorded; a rejected version never holds an alias."""
        if not isinstance(reason, str) or not reason.strip():
            raise ValidationError("a rejection needs a reason", field="reason")
        return self._decide(name, version, S.REJECTED, reason.strip())

    @requires(Action.MODELS_WRITE)
    def archive(self, name: str, version: int | str) -> ModelVersion:
        """Retire a version; it must hold no alias."""
        with self.audit.transaction() as tx:
            _, row = self._version_row(tx.conn, name, version)
            held = tx.conn.execute(select(model_aliases.c.alias).where(
                model_aliases.c.model_id == row.model_id, model_aliases.c.version == row.version
            )).scalars().all()
            if held:
                raise Conflict(f"version {row.version} of '{name}' holds alias {', '.join(held)}: move it first", field="version")
            check_transition(name, row.version, row.status, S.ARCHIVED)
            self._set_status(tx, name, row, S.ARCHIVED, "version.archived", self.actor.name)
        return self.get_model_version(name, row.version)

    @requires(Action.MODELS_READ)
    def list_approvals(self, name: str, version: int | str) -> list[Approval]:
        """Requests and decisions for a version, oldest first."""
        with self.store.read() as conn:
            _, row = self._version_row(conn, name, version)
            rows = conn.execute(select(approvals).where(approvals.c.version_id == row.id).order_by(approvals.c.id)).all()
        return [Approval(version=row.version, **item._mapping) for item in rows]

    @requires(Action.MODELS_WRITE)
    def record_validation(
        self, name: str, version: int | str, passed: bool, report_sha256: str, html_sha256: str,
        summary: dict[str, Any], risk_tier: str,
    ) -> ModelVersion:
        """Store a validation result and move the status it decides: a pass makes a
        candidate validated (approved at once for auto-approved tiers); a failure sends a
        validated version back to candidate. Approved versions keep their status."""
        with self.audit.transaction() as tx:
            _, row = self._version_row(tx.conn, name, version)
            if row.status in {S.REJECTED.value, S.ARCHIVED.value}:
                raise Conflict(f"version {row.version} of '{name}' is {row.status}; it is not validated again", field="version")
            tx.conn.execute(validation_reports.insert().values(
                version_id=row.id, passed=passed, report_sha256=report_sha256, html_sha256=html_sha256,
                summary=summary, created_by=self.actor.name, created_at=now_ms(),
            ))
            tx.record(self.actor.name, "validation.recorded", f"{name}/{row.version}", None,
                      {"passed": passed, "report_sha256": report_sha256})
            if passed and row.status == S.CANDIDATE.value:
                self._set_status(tx, name, row, S.VALIDATED, "version.validated", self.actor.name)
                if risk_tier in self.settings.auto_approve_tiers:
                    _, row = self._version_row(tx.conn, name, row.version)
                    self._set_status(tx, name, row, S.APPROVED, "version.auto_approved", SYSTEM_ACTOR,
                                     {"reason": f"risk tier {risk_tier} is auto-approved when validation passes"})
            elif not passed and row.status == S.VALIDATED.value:
                self._set_status(tx, name, row, S.CANDIDATE, "version.invalidated", self.actor.name)
        return self.get_model_version(name, row.version)

    @requires(Action.MODELS_READ)
    def list_validations(self, name: str, version: int | str) -> list[ValidationRecord]:
        """Stored validation results of a version, oldest first."""
        with self.store.read() as conn:
            _, row = self._version_row(conn, name, version)
            rows = conn.execute(select(validation_reports).where(
                validation_reports.c.version_id == row.id
            ).order_by(validation_reports.c.id)).all()
        return [ValidationRecord(version=row.version, **item._mapping) for item in rows]
