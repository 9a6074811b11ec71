"""One evaluation of one policy: settle approvals, watch the champion, then turn due
schedule slots and firing triggers into jobs, within the limits.

Job creation happens in one transaction that first locks the policy's row (``SELECT ...
FOR UPDATE`` on PostgreSQL; SQLite's write transactions are exclusive), so the limits are
checked and the job inserted atomically however many agents evaluate at once; a unique
``(policy, trigger_key)`` keeps one job per slot or piece of evidence on top of that.
Registry actions (promote after approval, roll back) happen outside that transaction,
each claimed first by a compare-and-set, and are idempotent when repeated by a successor.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select, update

from conveyor.automation.events import Events
from conveyor.automation.jobs import FAILED, SKIPPED, SUCCEEDED, WAITING, JobStore
from conveyor.automation.policy import Policy, ScheduleTrigger
from conveyor.automation.promotion import decide_waiting
from conveyor.automation.tables import automation_policies, automation_watches
from conveyor.automation.triggers import Context, Firing, condition_firings, schedule
from conveyor.automation.watch import (
    OPEN,
    PASSED,
    ROLLED_BACK,
    ROLLING_BACK,
    SUPERSEDED,
    WATCHING,
    baseline,
    breach,
)
from conveyor.core.clock import iso
from conveyor.errors import ConveyorError, NotFound
from conveyor.monitoring.alerts.rules import duration_ms

if TYPE_CHECKING:
    from conveyor.core.workspace import Workspace

log = logging.getLogger("conveyor.automation")


@dataclass
class Evaluation:
    """What one evaluation of a policy did."""

    policy: str
    jobs: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def load_policy_row(conn: Connection, name: str, lock: bool = False) -> Any:
    """A policy's row, locked for the transaction when ``lock``."""
    query = select(automation_policies).where(automation_policies.c.name == name)
    return conn.execute(query.with_for_update() if lock else query).first()


class PolicyScheduler:
    """Evaluates policies of one workspace."""

    def __init__(self, workspace: Workspace, jobs: JobStore, events: Events) -> None:
        self.workspace = workspace
        self.store = workspace.metadata
        self.jobs = jobs
        self.events = events

    def evaluate(self, name: str, now: int) -> Evaluation:
        """Evaluate one policy at ``now`` (agent clock, epoch ms)."""
        evaluation = Evaluation(name)
        with self.store.read() as conn:
            row = load_policy_row(conn, name)
        if row is None or row.paused:
            return evaluation
        policy = Policy.model_validate(row.spec)
        self._settle_approvals(policy, now, evaluation)
        self._watch(policy, now, evaluation)
        champion = self._champion(policy)
        context = Context(self.workspace, policy, champion, (row.state.get("champion") or {}).get("since"),
                          row.state.get("last_training"), now)
        firings = condition_firings(context) if champion is not None else []
        ids: list[str] = []
        with self.store.write() as conn:
            locked = load_policy_row(conn, name, lock=True)
            if locked is None or locked.paused:
                return evaluation
            state = dict(locked.state)
            ids += self._see_champion(conn, policy, state, champion, now)
            ids += self._monitor_slot(conn, policy, state, now, evaluation)
            firings += self._schedule(conn, policy, state, now, ids)
            for firing in firings:
                ids += self._propose(conn, policy, firing, now, evaluation)
            conn.execute(update(automation_policies).where(automation_policies.c.name == name).values(state=state))
        self.events.send(ids)
        return evaluation

    def _champion(self, policy: Policy) -> int | None:
        try:
            return self.workspace.registry.get_registered_model(policy.model).aliases.get(policy.alias)
        except NotFound:
            return None

    # Jobs from slots and triggers

    def _monitor_slot(self, conn: Connection, policy: Policy, state: dict[str, Any], now: int,
                      evaluation: Evaluation) -> list[str]:
        """One monitor job per ``monitor.every`` slot (epoch-aligned); missed slots collapse into the newest."""
        if policy.monitor is None:
            return []
        every = duration_ms(policy.monitor.every)
        slot = now // every * every
        if state.get("monitor_slot") is not None and slot <= state["monitor_slot"]:
            return []
        state["monitor_slot"] = slot
        job = self.jobs.create(conn, policy.name, policy.model, "monitor", "monitor", f"monitor:{slot}",
                               f"monitoring slot {iso(slot / 1000)}", slot, policy.limits.max_attempts)
        if job is not None:
            evaluation.jobs.append(job)
        return []

    def _schedule(self, conn: Connection, policy: Policy, state: dict[str, Any], now: int,
                  ids: list[str]) -> list[Firing]:
        """Firings of the schedule triggers' due slots; missed slots are reported once."""
        slots = state.setdefault("slots", {})
        firings = []
        for index, trigger in enumerate(policy.triggers):
            if not isinstance(trigger, ScheduleTrigger):
                continue
            key = f"{index}:{trigger.cron}:{trigger.timezone}"
            decision = schedule(trigger, slots.get(key), now)
            slots[key] = decision.last_slot
            if decision.missed:
                ids += self.events.record(conn, policy, "schedule.missed",
                                          f"{decision.missed} slot(s) of '{trigger.cron}' missed while no agent ran "
                                          f"(catchup: {trigger.catchup})", now, missed=decision.missed)
            if decision.run is not None:
                firings.append(Firing("schedule", f"schedule:{decision.run}",
                                      f"schedule '{trigger.cron}' ({trigger.timezone}) slot {iso(decision.run / 1000)}"))
        return firings

    def _limit(self, conn: Connection, policy: Policy, now: int) -> str | None:
        """Why a retrain may not start now, or None."""
        limits = policy.limits
        active = self.jobs.active(conn, policy.name, "retrain")
        if len(active) >= limits.max_concurrent:
            return f"max_concurrent: {len(active)} retrain job(s) of this policy already active"
        last = self.jobs.last(conn, policy.name, "retrain")
        if last is not None and now - last.scheduled_for < duration_ms(limits.cooldown):
            return f"cooldown: the last retrain started {iso(last.scheduled_for / 1000)}, within {limits.cooldown}"
        recent = self.jobs.started_since(conn, policy.name, "retrain", now - duration_ms(limits.per))
        if len(recent) >= limits.max_retrains:
            return f"max_retrains: {len(recent)} retrain(s) in the last {limits.per}"
        return None

    def _propose(self, conn: Connection, policy: Policy, firing: Firing, now: int, evaluation: Evaluation) -> list[str]:
        """A retrain job for a firing, or a skipped one saying which limit held it back."""
        blocked = self._limit(conn, policy, now)
        status, error = (SKIPPED, blocked) if blocked else ("pending", None)
        job = self.jobs.create(conn, policy.name, policy.model, "retrain", firing.trigger, firing.key, firing.reason,
                               now, policy.limits.max_attempts, status, error)
        if job is None:
            return []
        if blocked:
            evaluation.skipped.append(job)
            return []
        evaluation.jobs.append(job)
        return self.events.record(conn, policy, "trigger", f"{firing.trigger} trigger: {firing.reason}; retrain job "
                                  f"{job[:12]} created", now, job=job, trigger=firing.trigger)

    # Approvals

    def _settle_approvals(self, policy: Policy, now: int, evaluation: Evaluation) -> None:
        """Promote waiting candidates a validator approved; close rejected ones."""
        waiting = [job for job in self.jobs.list(policy=policy.name, status=WAITING, kind="retrain")]
        for job in waiting:
            try:
                outcome = decide_waiting(self.workspace, policy, job.result)
            except ConveyorError as exc:
                outcome = None
                evaluation.notes.append(f"job {job.id[:12]}: {exc.message}")
            if outcome is None or outcome.status == WAITING:
                continue
            with self.store.write() as conn:
                if not self.jobs.settle(conn, job, outcome.status, now, outcome.result):
                    continue
                ids = self._record_outcome(conn, policy, job.id, outcome.result, outcome.summary, now)
            self.events.send(ids)

    def _record_outcome(self, conn: Connection, policy: Policy, job_id: str, result: dict[str, Any], summary: str,
                        at: int) -> list[str]:
        """Events of a finished retrain; a promotion also marks when the policy last trained."""
        ids = self.events.record(conn, policy, "job.succeeded", f"job {job_id[:12]}: {summary}", at, job=job_id,
                                 outcome=result.get("outcome"), version=result.get("version"))
        if result.get("outcome") == "promoted":
            ids += self.events.record(conn, policy, "promoted", summary, at, job=job_id, version=result.get("version"),
                                      previous=result.get("previous"))
        return ids

    def record_finished(self, policy: Policy, job_id: str, status: str, result: dict[str, Any], summary: str,
                        error: str | None, at: int, kind: str) -> None:
        """Events of a job an agent finished (and when a retrain ran, for ``new_data``)."""
        with self.store.write() as conn:
            if kind == "retrain" and status in (SUCCEEDED, WAITING):
                row = load_policy_row(conn, policy.name, lock=True)
                if row is not None:
                    conn.execute(update(automation_policies).where(automation_policies.c.name == policy.name)
                                 .values(state={**row.state, "last_training": at}))
            if status == FAILED:
                ids = self.events.record(conn, policy, "job.failed", f"{kind} job {job_id[:12]} failed: {error}", at,
                                         job=job_id)
            elif status == WAITING:
                ids = self.events.record(conn, policy, "job.waiting", f"job {job_id[:12]}: {summary}", at, job=job_id,
                                         version=result.get("version"))
            elif kind == "retrain":
                ids = self._record_outcome(conn, policy, job_id, result, summary, at)
            else:
                ids = []
        self.events.send(ids)

    # Watches

    def _see_champion(self, conn: Connection, policy: Policy, state: dict[str, Any], champion: int | None,
                      now: int) -> list[str]:
        """Notice a new champion; start a watch when a person or the agent moved the alias to it."""
        known = state.get("champion") or {}
        if champion is None or known.get("version") == champion:
            return []
        state["champion"] = {"version": champion, "since": now}
        previous = known.get("version")
        if policy.watch is None or previous is None:
            return []
        history = self.workspace.registry.alias_history(policy.model, policy.alias)
        move = history[-1] if history else None
        if move is None or move.action != "set" or move.version != champion:
            return []
        figures = baseline(self.workspace, policy, previous, now)
        values = {"id": uuid.uuid4().hex, "policy": policy.name, "model": policy.model, "alias": policy.alias,
                  "version": champion, "previous_version": previous, "alias_change_id": move.id, "started_at": now,
                  "ends_at": now + duration_ms(policy.watch.period), "baseline": figures, "status": WATCHING}
        inserted = conn.execute(self.store.dialect.insert(automation_watches).values(**values)
                                .on_conflict_do_nothing(index_elements=["policy", "alias_change_id"])
                                .returning(automation_watches.c.id)).scalar()
        if inserted is None:
            return []
        known_figures = ", ".join(f"{k} {v['value']:.4f}" for k, v in figures.items() if v["value"] is not None)
        return self.events.record(conn, policy, "watch.started",
                                  f"watching version {champion} as {policy.alias} until "
                                  f"{iso(values['ends_at'] / 1000)} against version {previous} "
                                  f"({known_figures or 'no figures of it yet'})", now, version=champion,
                                  previous=previous)

    def _watch(self, policy: Policy, now: int, evaluation: Evaluation) -> None:
        """Decide open watches: roll back on a breach, pass at the end of the period."""
        if policy.watch is None:
            return
        table = automation_watches.c
        with self.store.read() as conn:
            watches = conn.execute(select(automation_watches).where(table.policy == policy.name,
                                                                    table.status.in_(OPEN))).all()
        for watch in watches:
            current = self._champion(policy)
            if watch.status == WATCHING:
                if current != watch.version:
                    self._close_watch(policy, watch, WATCHING, SUPERSEDED, f"{policy.alias} moved to {current}", now)
                    continue
                reason = breach(self.workspace, policy, watch.version, watch.started_at, now, watch.baseline)
                if reason is None:
                    if now >= watch.ends_at:
                        self._close_watch(policy, watch, WATCHING, PASSED, "no breach during the watch period", now)
                    continue
                if not self._claim_watch(watch, reason):
                    continue
            self._roll_back(policy, watch, current, now, evaluation)

    def _claim_watch(self, watch: Any, reason: str) -> bool:
        table = automation_watches.c
        with self.store.write() as conn:
            return conn.execute(update(automation_watches).where(table.id == watch.id, table.status == WATCHING)
                                .values(status=ROLLING_BACK, reason=reason)).rowcount == 1

    def _roll_back(self, policy: Policy, watch: Any, current: int | None, now: int, evaluation: Evaluation) -> None:
        """Move the alias back (once: only while it still points at the watched version)."""
        with self.store.read() as conn:
            reason = conn.execute(select(automation_watches.c.reason).where(
                automation_watches.c.id == watch.id)).scalar()
        restored = current
        if current == watch.version:
            try:
                restored = self.workspace.registry.rollback_alias(policy.model, policy.alias).version
            except ConveyorError as exc:
                evaluation.notes.append(f"rollback of {policy.model}@{policy.alias} failed: {exc.message}")
                log.error("rollback of %s@%s failed: %s", policy.model, policy.alias, exc.message)
                return
        self._close_watch(policy, watch, ROLLING_BACK, ROLLED_BACK, reason, now, restored=restored)

    def _close_watch(self, policy: Policy, watch: Any, expected: str, status: str, reason: str | None, now: int,
                     restored: int | None = None) -> None:
        table = automation_watches.c
        with self.store.write() as conn:
            done = conn.execute(update(automation_watches).where(table.id == watch.id, table.status == expected)
                                .values(status=status, reason=reason, decided_at=now)).rowcount
            if not done or status == SUPERSEDED:
                return
            if status == ROLLED_BACK:
                summary = (f"{policy.model}@{policy.alias} rolled back from version {watch.version} to {restored}: "
                           f"{reason}")
                ids = self.events.record(conn, policy, "rolled_back", summary, now, version=watch.version,
                                         restored=restored, reason=reason)
            else:
                ids = self.events.record(conn, policy, "watch.passed", f"version {watch.version} passed its watch",
                                         now, version=watch.version)
        self.events.send(ids)

    def watches(self, policy: str | None = None) -> list[dict[str, Any]]:
        """Watches, newest first."""
        table = automation_watches.c
        query = select(automation_watches).order_by(table.started_at.desc())
        if policy is not None:
            query = query.where(table.policy == policy)
        with self.store.read() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

