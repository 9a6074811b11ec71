"""Governance: who acts with which roles (users, API tokens, projects), and the tamper-evident audit log."""

from conveyor.governance.audit import (
    AuditedTransaction,
    AuditEntry,
    AuditLog,
    AuditVerification,
)
from conveyor.governance.identity import (
    SYSTEM_ACTOR,
    ActingActor,
    Actor,
    acting_as,
    current_actor,
    request_actor,
)
from conveyor.governance.permissions import MATRIX, ROLES, Action, requires
from conveyor.governance.schemas import Grant, Project, TokenInfo, User
from conveyor.governance.users import IdentityService

__all__ = [
    "MATRIX",
    "ROLES",
    "SYSTEM_ACTOR",
    "ActingActor",
    "Action",
    "Actor",
    "AuditEntry",
    "AuditLog",
    "AuditVerification",
    "AuditedTransaction",
    "Grant",
    "IdentityService",
    "Project",
    "TokenInfo",
    "User",
    "acting_as",
    "current_actor",
    "request_actor",
    "requires",
]
