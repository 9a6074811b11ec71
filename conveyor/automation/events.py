"""What automation did, as platform events and notices through monitoring's alert channels.

Every trigger, job, promotion and rollback is written to ``platform_events`` (type
``automation.<event>``, subject the model) in the transaction that makes it happen, with a
pending delivery per channel of the policy's ``notify``; the deliveries are sent after the
commit and retried by the outbox, so a notice is never lost with a killed agent.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, insert, select

from conveyor.automation.policy import Policy
from conveyor.core.clock import iso
from conveyor.core.db import MetadataStore
from conveyor.core.db.base import now_ms
from conveyor.monitoring.alerts.outbox import AlertDelivery, Outbox, enqueue
from conveyor.monitoring.alerts.rules import ChannelSpec
from conveyor.monitoring.tables import platform_events

NAMESPACE = "policy"
PREFIX = "automation."
WARNING_EVENTS = {"rolled_back", "job.failed"}


@dataclass(frozen=True)
class PolicyNotifier:
    """The sender of a policy's notices: its channels under ``policy:NAME``."""

    name: str
    channels: list[ChannelSpec]


@dataclass(frozen=True)
class AutomationEvent:
    """One recorded event."""

    id: int
    type: str
    model: str
    payload: dict[str, Any]
    created_at: int


class Events:
    """Writes automation events and sends their notices."""

    def __init__(self, store: MetadataStore, find_policy: Callable[[str], Policy | None]) -> None:
        self.store = store
        self.find_policy = find_policy
        self.outbox = Outbox(store, self._notifier, namespace=NAMESPACE)

    def _notifier(self, name: str) -> PolicyNotifier | None:
        policy = self.find_policy(name.removeprefix(f"{NAMESPACE}:"))
        return None if policy is None else PolicyNotifier(name, list(policy.notify))

    def record(self, conn: Connection, policy: Policy, event: str, summary: str, at: int, **details: Any) -> list[str]:
        """Write the event and its pending notices in the caller's transaction; returns the
        delivery ids to ``send`` after the commit."""
        payload = {"event": event, "policy": policy.name, "model": policy.model, "at": iso(at / 1000),
                   "summary": summary, "severity": "warning" if event in WARNING_EVENTS else "info", **details}
        conn.execute(insert(platform_events).values(type=f"{PREFIX}{event}", subject=policy.model, payload=payload,
                                                    created_at=now_ms()))
        notifier = PolicyNotifier(f"{NAMESPACE}:{policy.name}", list(policy.notify))
        return enqueue(conn, notifier, policy.model, payload)

    def send(self, ids: list[str]) -> list[AlertDelivery]:
        """Send just-recorded notices (what fails stays pending for ``retry``)."""
        return self.outbox.send(ids, set())

    def retry(self) -> list[AlertDelivery]:
        """Send every pending or failed notice of any policy, oldest first."""
        return self.outbox.retry(set())

    def list(self, model: str | None = None, after_id: int = 0, limit: int = 1000) -> list[AutomationEvent]:
        """Automation events, oldest first, of one model when given."""
        table = platform_events.c
        query = select(platform_events).where(table.type.startswith(PREFIX), table.id > after_id)
        if model is not None:
            query = query.where(table.subject == model)
        with self.store.read() as conn:
            rows = conn.execute(query.order_by(table.id).limit(limit)).all()
        return [AutomationEvent(row.id, row.type.removeprefix(PREFIX), row.subject, row.payload, row.created_at)
                for row in rows]
