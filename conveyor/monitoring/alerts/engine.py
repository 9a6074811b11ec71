"""Alert rules in the metadata store, and their evaluation against monitoring results.

Each (rule, model) pair is a small state machine kept in ``alert_states``, so a
restarted process neither forgets a firing alert nor fires it again:

    ok     + breach  -> firing  (deliveries enqueued; or suppressed within the cool-down)
    firing + breach  -> firing  (nothing: an alert fires once per breach)
    firing + clear   -> ok      (a ``resolved`` delivery)

A point without a value or with status ``insufficient`` leaves the state as it is. A
transition and its deliveries are written in one transaction, then sent (see outbox);
the state row is compared and set, so two evaluators racing fire once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Connection, Row, delete, func, select, update

from conveyor.core.db import MetadataStore
from conveyor.core.db.base import now_ms as current_ms
from conveyor.errors import NotFound
from conveyor.governance.identity import ActingActor, Actor
from conveyor.governance.permissions import Action, requires
from conveyor.monitoring.alerts.outbox import AlertDelivery, Outbox, enqueue
from conveyor.monitoring.alerts.rules import ANY_COLUMN, AlertRule, load_rules
from conveyor.monitoring.tables import alert_rules, alert_states, monitor_results

logger = logging.getLogger("conveyor.alerts")

OK, FIRING = "ok", "firing"


class AlertEvent(BaseModel):
    """What one evaluation did for one (rule, model): ``firing`` or ``resolved`` (with the
    ids of the deliveries enqueued), or ``suppressed`` (a breach within the cool-down)."""

    rule: str
    model: str
    event: Literal["firing", "resolved", "suppressed"]
    severity: str
    metric: str
    column: str | None
    value: float | None
    version: int | None
    window_start: int
    window_end: int
    at: int
    deliveries: list[str]


class AlertState(BaseModel):
    """Where a (rule, model) stands: ``ok`` or ``firing`` since when, the last value seen."""

    rule: str
    model: str
    state: str
    value: float | None
    since: int
    last_fired_at: int | None
    evaluated_at: int


@dataclass(frozen=True)
class Reading:
    """A rule's verdict on the latest points: ``breach`` True, False or None (cannot say),
    the point to report, and for ``column: "*"`` every breaching column."""

    breach: bool | None
    point: Row
    columns: list[str]


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC, e.g. ``2026-01-31T12:00:00.000Z``."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _latest_points(conn: Connection, rule: AlertRule, model: str) -> list[Row]:
    """The latest point of the rule's series (by window end, then id); for ``column: "*"``
    the latest point of each column in the newest window."""
    table = monitor_results.c
    series = (table.model == model, table["check"] == rule.check, table.statistic == rule.statistic)
    if rule.column != ANY_COLUMN:
        query = (select(monitor_results).where(*series, table["column"] == (rule.column or ""))
                 .order_by(table.window_end.desc(), table.id.desc()).limit(1))
        return list(conn.execute(query).all())
    newest = conn.execute(select(func.max(table.window_end)).where(*series)).scalar_one()
    rows = conn.execute(select(monitor_results).where(*series, table.window_end == newest)
                        .order_by(table["column"], table.id)).all()
    return list({row.column: row for row in rows}.values())


def _judge(rule: AlertRule, points: list[Row]) -> Reading | None:
    """Breach if any point breaches; clear only if every point is clear; None without points."""
    if not points:
        return None
    verdicts = [(point, rule.breached_by(point.value, point.status)) for point in points]
    breaching = [point for point, verdict in verdicts if verdict is True]
    if breaching:
        return Reading(True, breaching[0], [point.column for point in breaching])
    unknown = [point for point, verdict in verdicts if verdict is None]
    if unknown:
        return Reading(None, unknown[0], [])
    return Reading(False, points[0], [])


def _alert(rule: AlertRule, model: str, event: str, reading: Reading, fired_at: int, at: int) -> dict[str, Any]:
    """The payload every channel receives (each adds its delivery id)."""
    point = reading.point
    alert = {"rule": rule.name, "model": model, "version": point.version, "metric": rule.metric,
             "column": point.column or None, "value": point.value, **rule.condition(), "severity": rule.severity,
             "event": event, "window_start": iso(point.window_start), "window_end": iso(point.window_end),
             "fired_at": iso(fired_at)}
    if event == "resolved":
        alert["resolved_at"] = iso(at)
    if rule.column == ANY_COLUMN:
        alert["columns"] = reading.columns
    return alert


def _cooling_down(rule: AlertRule, state: Row | None, at: int) -> bool:
    """Whether the rule fired for this model less than its cool-down before ``at``."""
    return state is not None and state.last_fired_at is not None and at - state.last_fired_at < rule.cooldown_ms


def _state(row: Row) -> AlertState:
    return AlertState(rule=row.rule, model=row.model, state=row.state, value=row.value, since=row.since,
                      last_fired_at=row.last_fired_at, evaluated_at=row.evaluated_at)


class AlertService:
    """Alert rules, their evaluation per model, and the deliveries they cause.

    Args:
        store: the metadata store.
        actor: who acts (the request's user instead, inside ``acting_as``).
    """

    actor = ActingActor()

    def __init__(self, store: MetadataStore, actor: Actor) -> None:
        self.store = store
        self.actor = actor
        self._outbox = Outbox(store, self.find_rule)

    # Rules

    def _upsert(self, conn: Connection, rule: AlertRule) -> None:
        at = current_ms()
        statement = self.store.dialect.insert(alert_rules).values(
            name=rule.name, spec=rule.stored(), created_at=at, updated_at=at)
        conn.execute(statement.on_conflict_do_update(
            index_elements=[alert_rules.c.name], set_={"spec": statement.excluded.spec, "updated_at": at}))

    @requires(Action.MONITORING_WRITE)
    def put_rule(self, rule: AlertRule) -> AlertRule:
        """Create or replace the rule named ``rule.name``; a firing alert stays firing."""
        with self.store.write() as conn:
            self._upsert(conn, rule)
        return rule

    @requires(Action.MONITORING_WRITE)
    def apply_file(self, path: str | Path) -> list[AlertRule]:
        """Create or replace every rule of a YAML file (see ``load_rules``), all in one
        transaction; rules not in the file are kept.

        Raises:
            ValidationError: the file or a rule in it is invalid; nothing is stored.
        """
        rules = load_rules(path)
        with self.store.write() as conn:
            for rule in rules:
                self._upsert(conn, rule)
        return rules

    @requires(Action.MONITORING_READ)
    def find_rule(self, name: str) -> AlertRule | None:
        """The rule named ``name``, or None."""
        with self.store.read() as conn:
            spec = conn.execute(select(alert_rules.c.spec).where(alert_rules.c.name == name)).scalar_one_or_none()
        return None if spec is None else AlertRule.model_validate(spec)

    @requires(Action.MONITORING_READ)
    def get_rule(self, name: str) -> AlertRule:
        """The rule named ``name``.

        Raises:
            NotFound: there is no such rule.
        """
        rule = self.find_rule(name)
        if rule is None:
            raise NotFound(f"no alert rule named {name!r}", field="name")
        return rule

    @requires(Action.MONITORING_READ)
    def list_rules(self) -> list[AlertRule]:
        """Every rule, by name."""
        with self.store.read() as conn:
            specs = conn.execute(select(alert_rules.c.spec).order_by(alert_rules.c.name)).scalars().all()
        return [AlertRule.model_validate(spec) for spec in specs]

    @requires(Action.MONITORING_WRITE)
    def delete_rule(self, name: str) -> None:
        """Delete a rule and its states; its undelivered deliveries are discarded when next tried.

        Raises:
            NotFound: there is no such rule.
        """
        with self.store.write() as conn:
            deleted = conn.execute(delete(alert_rules).where(alert_rules.c.name == name))
            if deleted.rowcount == 0:
                raise NotFound(f"no alert rule named {name!r}", field="name")
            conn.execute(delete(alert_states).where(alert_states.c.rule == name))

    # Evaluation

    @requires(Action.MONITORING_WRITE)
    def evaluate(self, model: str, now_ms: int | None = None) -> list[AlertEvent]:
        """Judge every rule watching ``model`` on its latest monitoring results, fire or
        resolve alerts, and deliver them; first retries what is still undelivered.

        Args:
            model: the model whose results to judge.
            now_ms: the evaluation time (epoch ms), for the cool-down; default now.

        Returns:
            What happened, per rule that fired, resolved or was suppressed.
        """
        at = now_ms if now_ms is not None else current_ms()
        down: set[str] = set()
        self._outbox.retry(down)
        events: list[AlertEvent] = []
        for rule in self.list_rules():
            if rule.applies_to(model) and (event := self._evaluate_rule(rule, model, at)) is not None:
                events.append(event)
                self._outbox.send(event.deliveries, down)
        return events

    def _evaluate_rule(self, rule: AlertRule, model: str, at: int) -> AlertEvent | None:
        with self.store.write() as conn:
            reading = _judge(rule, _latest_points(conn, rule, model))
            if reading is None:
                return None
            key = (alert_states.c.rule == rule.name, alert_states.c.model == model)
            state = conn.execute(select(alert_states).where(*key)).first()
            current = state.state if state is not None else OK
            if reading.breach is None:
                conn.execute(update(alert_states).where(*key).values(evaluated_at=at))
                return None
            if reading.breach and current == OK and _cooling_down(rule, state, at):
                conn.execute(update(alert_states).where(*key).values(value=reading.point.value, evaluated_at=at))
                logger.info("alert suppressed: rule=%s model=%s breached again within its cool-down %s",
                            rule.name, model, rule.cooldown)
                return self._event(rule, model, "suppressed", reading, at, [])
            if reading.breach == (current == FIRING):
                self._touch(conn, rule.name, model, reading, at)
                return None
            event = "firing" if reading.breach else "resolved"
            if not self._transition(conn, state, rule.name, model, reading, at):
                return None
            fired_at = at if reading.breach else state.last_fired_at
            ids = enqueue(conn, rule, model, _alert(rule, model, event, reading, fired_at, at))
        return self._event(rule, model, event, reading, at, ids)

    def _touch(self, conn: Connection, rule: str, model: str, reading: Reading, at: int) -> None:
        """Record the value seen without a change of state (creating an ``ok`` row if new)."""
        statement = self.store.dialect.insert(alert_states).values(
            rule=rule, model=model, state=OK, value=reading.point.value, since=at, evaluated_at=at)
        conn.execute(statement.on_conflict_do_update(
            index_elements=[alert_states.c.rule, alert_states.c.model],
            set_={"value": reading.point.value, "evaluated_at": at}))

    def _transition(self, conn: Connection, state: Row | None, rule: str, model: str, reading: Reading,
                    at: int) -> bool:
        """Flip ok <-> firing if nobody did meanwhile; whether this evaluator did."""
        new = FIRING if reading.breach else OK
        values: dict[str, Any] = {"state": new, "value": reading.point.value, "since": at, "evaluated_at": at}
        if reading.breach:
            values["last_fired_at"] = at
        if state is None:
            created = conn.execute(self.store.dialect.insert(alert_states).values(rule=rule, model=model, **values)
                                   .on_conflict_do_nothing().returning(alert_states.c.rule))
            return created.first() is not None
        table = alert_states.c
        changed = conn.execute(update(alert_states).where(
            table.rule == rule, table.model == model, table.state == state.state, table.since == state.since,
        ).values(**values))
        return changed.rowcount == 1

    @staticmethod
    def _event(rule: AlertRule, model: str, event: str, reading: Reading, at: int, ids: list[str]) -> AlertEvent:
        point = reading.point
        return AlertEvent(rule=rule.name, model=model, event=event, severity=rule.severity, metric=rule.metric,
                          column=point.column or None, value=point.value, version=point.version,
                          window_start=point.window_start, window_end=point.window_end, at=at, deliveries=ids)

    # Deliveries and states

    @requires(Action.MONITORING_WRITE)
    def retry_pending(self) -> list[AlertDelivery]:
        """Send again every ``pending`` or ``failed`` delivery, oldest first (a channel that
        is down is skipped for the rest of the pass). Returns them as they are now."""
        return self._outbox.retry(set())

    @requires(Action.MONITORING_READ)
    def deliveries(self, rule: str | None = None, model: str | None = None,
                   status: str | None = None) -> list[AlertDelivery]:
        """Deliveries, oldest first, of a rule, a model and a status when given."""
        return self._outbox.list(rule=rule, model=model, status=status)

    @requires(Action.MONITORING_READ)
    def states(self, model: str | None = None) -> list[AlertState]:
        """The state of every evaluated (rule, model), of one model when given."""
        query = select(alert_states).order_by(alert_states.c.rule, alert_states.c.model)
        if model is not None:
            query = query.where(alert_states.c.model == model)
        with self.store.read() as conn:
            return [_state(row) for row in conn.execute(query).all()]

