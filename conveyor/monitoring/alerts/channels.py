"""Where alerts go: a log line, a signed webhook, or a platform event.

Each channel delivers one stored delivery (its id, event and exact JSON body) and says
how it went; the engine records that in ``alert_deliveries``. Delivery is at least
once: a receiver deduplicates on ``X-Conveyor-Delivery`` (or the payload's ``delivery``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from typing import Protocol

import httpx
from sqlalchemy import insert

from conveyor.core.db import MetadataStore
from conveyor.core.db.base import now_ms
from conveyor.errors import ConveyorError
from conveyor.monitoring.alerts.rules import (
    ChannelSpec,
    EventChannelSpec,
    LogChannelSpec,
    WebhookChannelSpec,
)
from conveyor.monitoring.tables import platform_events

logger = logging.getLogger("conveyor.alerts")

LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.CRITICAL}
SIGNATURE_HEADER = "X-Conveyor-Signature"
DELIVERY_HEADER = "X-Conveyor-Delivery"
EVENT_HEADER = "X-Conveyor-Event"
MAX_ERROR = 1024


@dataclass(frozen=True)
class Delivery:
    """One alert on its way to one channel: ``payload`` is the exact JSON body."""

    id: str
    event: str
    model: str
    payload: str


@dataclass(frozen=True)
class Outcome:
    """How a delivery went: ``attempts`` made this time, the last HTTP status and error;
    ``unreachable`` when the channel itself is down, so later deliveries to it can wait."""

    delivered: bool
    attempts: int
    response_status: int | None = None
    error: str | None = None
    unreachable: bool = False


class Channel(Protocol):
    """Something that can deliver an alert."""

    def deliver(self, delivery: Delivery) -> Outcome:
        """Try to deliver ``delivery``, retrying as the channel sees fit; never raises."""


def sign(secret: str, body: bytes) -> str:
    """The ``X-Conveyor-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _retryable(status: int) -> bool:
    """Whether an HTTP status may succeed if sent again (overload, server trouble)."""
    return status == 429 or status >= 500


class LogChannel:
    """One line on the ``conveyor.alerts`` logger, at the rule's severity (resolved: INFO);
    other capabilities' notices carry a one-line ``summary`` instead of an alert's fields."""

    def deliver(self, delivery: Delivery) -> Outcome:
        alert = json.loads(delivery.payload)
        if "summary" in alert:
            logger.log(LEVELS[alert.get("severity", "info")], "%s: model=%s %s delivery=%s", delivery.event,
                       delivery.model, alert["summary"], delivery.id)
            return Outcome(delivered=True, attempts=1)
        condition = (f"status {alert['status']}" if "status" in alert
                     else f"{alert['op']} {alert['threshold']}")
        level = LEVELS[alert["severity"]] if delivery.event == "firing" else logging.INFO
        logger.log(level, "alert %s: rule=%s model=%s version=%s metric=%s column=%s value=%s condition=%r "
                   "severity=%s window=%s..%s delivery=%s", delivery.event, alert["rule"], alert["model"],
                   alert["version"], alert["metric"], alert["column"] or "-", alert["value"], condition,
                   alert["severity"], alert["window_start"], alert["window_end"], delivery.id)
        return Outcome(delivered=True, attempts=1)


class WebhookChannel:
    """HTTP POST of the JSON body, retried with exponential back-off on connection
    errors, timeouts, 429 and 5xx; any other non-2xx answer is final."""

    def __init__(self, spec: WebhookChannelSpec) -> None:
        self.spec = spec

    def _headers(self, delivery: Delivery, body: bytes) -> dict[str, str]:
        headers = {**self.spec.headers, "Content-Type": "application/json", "User-Agent": "conveyor-alerts",
                   DELIVERY_HEADER: delivery.id, EVENT_HEADER: delivery.event}
        if self.spec.secret is not None:
            headers[SIGNATURE_HEADER] = sign(self.spec.secret.get_secret_value(), body)
        return headers

    def deliver(self, delivery: Delivery) -> Outcome:
        body = delivery.payload.encode()
        headers = self._headers(delivery, body)
        status: int | None = None
        error = ""
        with httpx.Client(timeout=self.spec.timeout_s) as client:
            for attempt in range(self.spec.max_attempts):
                if attempt:
                    time.sleep(self.spec.backoff_s * 2 ** (attempt - 1))
                try:
                    response = client.post(self.spec.url, content=body, headers=headers)
                except httpx.TransportError as exc:  # refused, reset, timed out
                    status, error = None, f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
                    continue
                status = response.status_code
                if response.is_success:
                    return Outcome(delivered=True, attempts=attempt + 1, response_status=status)
                error = f"HTTP {status}: {response.text[:200]}"
                if not _retryable(status):
                    return Outcome(delivered=False, attempts=attempt + 1, response_status=status, error=error)
        return Outcome(delivered=False, attempts=self.spec.max_attempts, response_status=status, error=error,
                       unreachable=True)


class EventChannel:
    """A ``platform_events`` row, ``alert.firing`` or ``alert.resolved`` about the model,
    which the automation capability consumes in id order."""

    def __init__(self, store: MetadataStore) -> None:
        self.store = store

    def deliver(self, delivery: Delivery) -> Outcome:
        try:
            with self.store.write() as conn:
                conn.execute(insert(platform_events).values(
                    type=f"alert.{delivery.event}", subject=delivery.model, payload=json.loads(delivery.payload),
                    created_at=now_ms()))
        except ConveyorError as exc:
            return Outcome(delivered=False, attempts=1, error=exc.message[:MAX_ERROR], unreachable=True)
        return Outcome(delivered=True, attempts=1)


def build_channel(spec: ChannelSpec, store: MetadataStore) -> Channel:
    """The channel a rule's channel spec describes."""
    if isinstance(spec, WebhookChannelSpec):
        return WebhookChannel(spec)
    if isinstance(spec, EventChannelSpec):
        return EventChannel(store)
    assert isinstance(spec, LogChannelSpec)
    return LogChannel()
