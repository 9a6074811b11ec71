"""The alert outbox: one ``alert_deliveries`` row per channel, written in the transaction
that changes the alert's state, then sent.

A process killed between the two loses nothing: the row stays ``pending`` and the next
``retry`` sends it. A row is claimed before sending (its ``attempts`` compared and
bumped), so two processes retrying at once do not both send it. A channel that is down
in one pass is not tried again for later rows in that pass, which keeps each channel's
alerts in order (a ``resolved`` never overtakes its ``firing``).

Other capabilities notify through the same outbox under a namespace (automation writes
``policy:NAME``); each ``Outbox`` retries only the deliveries of its own namespace.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from pydantic import BaseModel
from sqlalchemy import Connection, Row, insert, select, update

from conveyor.core.db import MetadataStore
from conveyor.core.db.base import now_ms
from conveyor.monitoring.alerts.channels import Delivery, Outcome, build_channel
from conveyor.monitoring.alerts.rules import ChannelSpec
from conveyor.monitoring.tables import alert_deliveries

PENDING, DELIVERED, FAILED, DISCARDED = "pending", "delivered", "failed", "discarded"
DUE = (PENDING, FAILED)


class AlertDelivery(BaseModel):
    """One alert sent (or to be sent) to one channel, and how that went."""

    id: str
    rule: str
    model: str
    channel: str
    event: str
    status: str
    attempts: int
    response_status: int | None
    last_error: str | None
    created_at: int
    delivered_at: int | None
    payload: dict[str, Any]


class Notifier(Protocol):
    """What deliveries are written for: an alert rule, or another capability's sender."""

    name: str
    channels: list[ChannelSpec]


def _delivery(row: Row) -> AlertDelivery:
    return AlertDelivery(id=row.id, rule=row.rule, model=row.model, channel=row.channel, event=row.event,
                         status=row.status, attempts=row.attempts, response_status=row.response_status,
                         last_error=row.last_error, created_at=row.created_at, delivered_at=row.delivered_at,
                         payload=json.loads(row.payload))


def enqueue(conn: Connection, rule: Notifier, model: str, alert: dict[str, Any]) -> list[str]:
    """Write a ``pending`` delivery of ``alert`` for each of the sender's channels, in the
    caller's transaction; each payload carries its own delivery id. Returns the ids."""
    ids = []
    for spec in rule.channels:
        delivery_id = uuid.uuid4().hex
        payload = json.dumps({**alert, "delivery": delivery_id}, separators=(",", ":"), allow_nan=False)
        conn.execute(insert(alert_deliveries).values(
            id=delivery_id, rule=rule.name, model=model, channel=spec.key(), event=alert["event"], payload=payload,
            status=PENDING, attempts=0, created_at=now_ms()))
        ids.append(delivery_id)
    return ids


class Outbox:
    """Sends stored deliveries through the channels their rule names now (so a fixed
    secret or header applies to what is still pending)."""

    def __init__(self, store: MetadataStore, find_rule: Callable[[str], Notifier | None],
                 namespace: str | None = None) -> None:
        self.store = store
        self.find_rule = find_rule
        self.namespace = namespace

    def _own(self) -> Any:
        """The deliveries this outbox retries: its namespace's, or alert rules' (no namespace)."""
        rule = alert_deliveries.c.rule
        return rule.startswith(f"{self.namespace}:") if self.namespace else ~rule.contains(":")

    def retry(self, down: set[str], limit: int = 1000) -> list[AlertDelivery]:
        """Send up to ``limit`` ``pending`` and ``failed`` deliveries, oldest first; channels
        found down are added to ``down``. Returns the deliveries tried, as they are now."""
        with self.store.read() as conn:
            rows = conn.execute(select(alert_deliveries).where(alert_deliveries.c.status.in_(DUE), self._own())
                                .order_by(alert_deliveries.c.created_at, alert_deliveries.c.id).limit(limit)).all()
        return self._send(rows, down)

    def send(self, ids: list[str], down: set[str]) -> list[AlertDelivery]:
        """Send the deliveries ``ids`` (just enqueued), skipping channels in ``down``."""
        if not ids:
            return []
        with self.store.read() as conn:
            rows = conn.execute(select(alert_deliveries).where(alert_deliveries.c.id.in_(ids))
                                .order_by(alert_deliveries.c.created_at, alert_deliveries.c.id)).all()
        return self._send(rows, down)

    def list(self, rule: str | None = None, model: str | None = None, status: str | None = None,
             ids: Iterable[str] | None = None) -> list[AlertDelivery]:
        """Deliveries, oldest first, filtered by whichever of the arguments are given."""
        table = alert_deliveries.c
        query = select(alert_deliveries).order_by(table.created_at, table.id)
        for column, value in ((table.rule, rule), (table.model, model), (table.status, status)):
            if value is not None:
                query = query.where(column == value)
        if ids is not None:
            query = query.where(table.id.in_(list(ids)))
        with self.store.read() as conn:
            return [_delivery(row) for row in conn.execute(query).all()]

    def _send(self, rows: list[Row], down: set[str]) -> list[AlertDelivery]:
        rules: dict[str, Notifier | None] = {}
        tried = []
        for row in rows:
            if row.channel in down:
                continue
            if row.rule not in rules:
                rules[row.rule] = self.find_rule(row.rule)
            spec = _channel(rules[row.rule], row.channel)
            if spec is None:
                self._discard(row, f"rule {row.rule!r} no longer exists or has no channel {row.channel}")
            elif self._claim(row):
                outcome = build_channel(spec, self.store).deliver(
                    Delivery(id=row.id, event=row.event, model=row.model, payload=row.payload))
                self._record(row, outcome)
                if outcome.unreachable:
                    down.add(row.channel)
            tried.append(row.id)
        return self.list(ids=tried) if tried else []

    def _claim(self, row: Row) -> bool:
        """Whether this process won the right to send ``row`` (nobody sent it meanwhile)."""
        table = alert_deliveries.c
        with self.store.write() as conn:
            claimed = conn.execute(update(alert_deliveries).where(
                table.id == row.id, table.status.in_(DUE), table.attempts == row.attempts,
            ).values(attempts=row.attempts + 1))
        return claimed.rowcount == 1

    def _record(self, row: Row, outcome: Outcome) -> None:
        with self.store.write() as conn:
            conn.execute(update(alert_deliveries).where(alert_deliveries.c.id == row.id).values(
                status=DELIVERED if outcome.delivered else FAILED, attempts=row.attempts + outcome.attempts,
                response_status=outcome.response_status, last_error=outcome.error,
                delivered_at=now_ms() if outcome.delivered else None))

    def _discard(self, row: Row, reason: str) -> None:
        with self.store.write() as conn:
            conn.execute(update(alert_deliveries).where(
                alert_deliveries.c.id == row.id, alert_deliveries.c.status.in_(DUE),
            ).values(status=DISCARDED, last_error=reason))


def _channel(rule: Notifier | None, key: str) -> ChannelSpec | None:
    """The channel of ``rule`` that deliveries name ``key``."""
    if rule is None:
        return None
    return next((spec for spec in rule.channels if spec.key() == key), None)
