"""Governance: who acts with which roles, and the tamper-evident audit log."""

from conveyor.governance.audit import (
    AuditedTransaction,
    AuditEntry,
    AuditLog,
    AuditVerification,
)
from conveyor.governance.identity import SYSTEM_ACTOR, Actor, current_actor

__all__ = [
    "SYSTEM_ACTOR",
    "Actor",
    "AuditEntry",
    "AuditLog",
    "AuditVerification",
    "AuditedTransaction",
    "current_actor",
]
