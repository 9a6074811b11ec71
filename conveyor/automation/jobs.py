"""Jobs in the metadata store: created once per trigger, claimed under a lease, finished once.

Exactly once rests on two things the database guarantees on SQLite and PostgreSQL alike:
a job's ``(policy, trigger_key)`` is unique, so a slot or a trigger seen by several agents
inserts one row; and claiming is a compare-and-set on the row (``pending``, or ``running``
with an expired lease), so one agent wins it. Every claim bumps ``attempts``, which is the
fencing token: a late agent whose lease was taken over can no longer renew or finish it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Connection, and_, func, or_, select, update

from conveyor.automation.tables import automation_jobs
from conveyor.core.db import MetadataStore
from conveyor.core.db.base import now_ms
from conveyor.errors import Conflict, NotFound, ValidationError

PENDING, RUNNING, WAITING = "pending", "running", "waiting"
SUCCEEDED, FAILED, CANCELLED, SKIPPED = "succeeded", "failed", "cancelled", "skipped"
ACTIVE = (PENDING, RUNNING, WAITING)
STATUSES = (PENDING, RUNNING, WAITING, SUCCEEDED, FAILED, CANCELLED, SKIPPED)
KINDS = ("retrain", "monitor")


class Job(BaseModel):
    """One unit of automated work and where it stands."""

    id: str
    policy: str
    model: str
    kind: str
    trigger: str
    trigger_key: str
    reason: str
    status: str
    attempts: int
    max_attempts: int
    lease_owner: str | None
    lease_expires_at: int | None
    cancel_requested: bool
    scheduled_for: int
    created_at: int
    started_at: int | None
    finished_at: int | None
    result: dict[str, Any]
    error: str | None


def _job(row: Any) -> Job:
    return Job(**row._mapping)


class JobStore:
    """Create, claim, renew, finish and list jobs."""

    def __init__(self, store: MetadataStore) -> None:
        self.store = store

    def create(self, conn: Connection, policy: str, model: str, kind: str, trigger: str, key: str, reason: str,
               scheduled_for: int, max_attempts: int, status: str = PENDING, error: str | None = None) -> str | None:
        """Insert a job in the caller's transaction; None if the trigger already made one."""
        job_id = uuid.uuid4().hex
        values = {
            "id": job_id, "policy": policy, "model": model, "kind": kind, "trigger": trigger, "trigger_key": key[:256],
            "reason": reason, "status": status, "attempts": 0, "max_attempts": max_attempts,
            "cancel_requested": False, "scheduled_for": scheduled_for, "created_at": scheduled_for, "result": {},
            "error": error, "finished_at": scheduled_for if status == SKIPPED else None,
        }
        return conn.execute(self.store.dialect.insert(automation_jobs).values(**values)
                            .on_conflict_do_nothing(index_elements=["policy", "trigger_key"])
                            .returning(automation_jobs.c.id)).scalar()

    def claim(self, owner: str, lease_ms: int, limit: int, at: int, kinds: Sequence[str] = KINDS) -> list[Job]:
        """Take up to ``limit`` due jobs (pending, or running under an expired lease), oldest
        first; ``at`` is the agent clock (a job scheduled later waits)."""
        table = automation_jobs.c
        now = now_ms()
        due = or_(table.status == PENDING, and_(table.status == RUNNING, table.lease_expires_at < now))
        with self.store.read() as conn:
            rows = conn.execute(select(automation_jobs).where(
                due, table.kind.in_(list(kinds)), table.scheduled_for <= at,
            ).order_by(table.scheduled_for, table.id).limit(limit * 4)).all()
        claimed = []
        for row in rows:
            if len(claimed) == limit:
                break
            if row.cancel_requested or row.attempts >= row.max_attempts:
                self._give_up(row, at)
                continue
            with self.store.write() as conn:
                won = conn.execute(update(automation_jobs).where(
                    table.id == row.id, table.attempts == row.attempts,
                    or_(table.status == PENDING, and_(table.status == RUNNING, table.lease_expires_at < now)),
                ).values(status=RUNNING, attempts=row.attempts + 1, lease_owner=owner, lease_expires_at=now + lease_ms,
                         started_at=at))
            if won.rowcount == 1:
                claimed.append(self.get(row.id))
        return claimed

    def _give_up(self, row: Any, at: int) -> None:
        """Close a job nobody may run again: cancelled while its agent was gone, or every
        attempt ended with its agent gone."""
        table = automation_jobs.c
        if row.cancel_requested:
            status, error = CANCELLED, "cancelled by a user"
        else:
            status, error = FAILED, f"gave up after {row.attempts} attempt(s): the agent running it stopped each time"
        with self.store.write() as conn:
            conn.execute(update(automation_jobs).where(table.id == row.id, table.attempts == row.attempts,
                                                       table.status.in_(ACTIVE)).values(
                status=status, finished_at=at, lease_owner=None, error=error))

    def renew(self, owner: str, leases: dict[str, int], lease_ms: int) -> set[str]:
        """Extend the leases ``owner`` holds (job id -> attempt); returns the ids still held."""
        table = automation_jobs.c
        held = set()
        with self.store.write() as conn:
            for job_id, attempt in leases.items():
                renewed = conn.execute(update(automation_jobs).where(
                    table.id == job_id, table.lease_owner == owner, table.attempts == attempt, table.status == RUNNING,
                ).values(lease_expires_at=now_ms() + lease_ms))
                if renewed.rowcount == 1:
                    held.add(job_id)
        return held

    def finish(self, job: Job, status: str, at: int, result: dict[str, Any] | None = None,
               error: str | None = None) -> bool:
        """Record how a claimed job ended; False if its lease was lost (another attempt owns it)."""
        table = automation_jobs.c
        with self.store.write() as conn:
            done = conn.execute(update(automation_jobs).where(
                table.id == job.id, table.lease_owner == job.lease_owner, table.attempts == job.attempts,
                table.status == RUNNING,
            ).values(status=status, finished_at=None if status == WAITING else at, lease_owner=None,
                     lease_expires_at=None, result=result or {}, error=error))
        return done.rowcount == 1

    def settle(self, conn: Connection, job: Job, status: str, at: int, result: dict[str, Any],
               error: str | None = None) -> bool:
        """Close a ``waiting`` job (approval decided) in the caller's transaction."""
        table = automation_jobs.c
        done = conn.execute(update(automation_jobs).where(table.id == job.id, table.status == WAITING).values(
            status=status, finished_at=at, result=result, error=error))
        return done.rowcount == 1

    def get(self, job_id: str) -> Job:
        """One job by id (a unique prefix of at least 6 characters is enough)."""
        table = automation_jobs.c
        with self.store.read() as conn:
            if len(job_id) >= 32:
                rows = conn.execute(select(automation_jobs).where(table.id == job_id)).all()
            elif len(job_id) >= 6:
                rows = conn.execute(select(automation_jobs).where(table.id.startswith(job_id)).limit(2)).all()
            else:
                raise ValidationError(f"job id {job_id!r} is too short: give at least 6 characters", field="job")
        if not rows:
            raise NotFound(f"no job {job_id!r}", field="job")
        if len(rows) > 1:
            raise ValidationError(f"job id {job_id!r} is ambiguous: give more characters", field="job")
        return _job(rows[0])

    def list(self, policy: str | None = None, status: str | None = None, kind: str | None = None,
             limit: int = 100) -> list[Job]:
        """Jobs, newest first, filtered by whichever of the arguments are given."""
        if status is not None and status not in STATUSES:
            raise ValidationError(f"status {status!r} is not one of {', '.join(STATUSES)}", field="status")
        if kind is not None and kind not in KINDS:
            raise ValidationError(f"kind {kind!r} is not one of {', '.join(KINDS)}", field="kind")
        if limit < 1:
            raise ValidationError(f"limit must be at least 1, got {limit}", field="limit")
        table = automation_jobs.c
        query = select(automation_jobs).order_by(table.scheduled_for.desc(), table.id.desc()).limit(limit)
        for column, value in ((table.policy, policy), (table.status, status), (table.kind, kind)):
            if value is not None:
                query = query.where(column == value)
        with self.store.read() as conn:
            return [_job(row) for row in conn.execute(query).all()]

    def active(self, conn: Connection, policy: str, kind: str) -> list[Job]:
        """The policy's jobs of ``kind`` not finished yet."""
        table = automation_jobs.c
        return [_job(row) for row in conn.execute(select(automation_jobs).where(
            table.policy == policy, table.kind == kind, table.status.in_(ACTIVE)).order_by(table.scheduled_for))]

    def started_since(self, conn: Connection, policy: str, kind: str, since: int) -> list[int]:
        """When the policy's jobs of ``kind`` created at or after ``since`` were scheduled (skips excluded)."""
        table = automation_jobs.c
        return list(conn.execute(select(table.scheduled_for).where(
            table.policy == policy, table.kind == kind, table.status != SKIPPED, table.scheduled_for >= since,
        )).scalars())

    def last(self, conn: Connection, policy: str, kind: str, status: str | None = None) -> Job | None:
        """The policy's newest job of ``kind`` (with ``status``), skips excluded."""
        table = automation_jobs.c
        query = select(automation_jobs).where(table.policy == policy, table.kind == kind, table.status != SKIPPED)
        if status is not None:
            query = query.where(table.status == status)
        row = conn.execute(query.order_by(table.scheduled_for.desc()).limit(1)).first()
        return None if row is None else _job(row)

    def cancel(self, job_id: str, at: int) -> Job:
        """Cancel a job: at once if it is pending or waiting, at its next step if running."""
        job = self.get(job_id)
        table = automation_jobs.c
        with self.store.write() as conn:
            if job.status in (PENDING, WAITING):
                conn.execute(update(automation_jobs).where(table.id == job.id, table.status == job.status).values(
                    status=CANCELLED, finished_at=at, error="cancelled by a user"))
            elif job.status == RUNNING:
                conn.execute(update(automation_jobs).where(table.id == job.id).values(cancel_requested=True))
            else:
                raise Conflict(f"job {job.id[:12]} is {job.status}: only a pending, running or waiting job can be "
                               "cancelled", field="job")
        return self.get(job.id)

    def retry(self, job_id: str) -> Job:
        """Run a failed or cancelled job again, with its attempts reset."""
        job = self.get(job_id)
        if job.status not in (FAILED, CANCELLED):
            raise Conflict(f"job {job.id[:12]} is {job.status}: only a failed or cancelled job can be retried",
                           field="job")
        table = automation_jobs.c
        with self.store.write() as conn:
            conn.execute(update(automation_jobs).where(table.id == job.id, table.status == job.status).values(
                status=PENDING, attempts=0, error=None, cancel_requested=False, finished_at=None, lease_owner=None,
                lease_expires_at=None))
        return self.get(job.id)

    def cancel_requested(self, job_id: str) -> bool:
        """Whether a user asked to cancel the job while it runs."""
        with self.store.read() as conn:
            return bool(conn.execute(select(automation_jobs.c.cancel_requested).where(
                automation_jobs.c.id == job_id)).scalar())

    def counts(self) -> dict[str, int]:
        """How many jobs are in each status."""
        table = automation_jobs.c
        with self.store.read() as conn:
            return {status: count for status, count in conn.execute(
                select(table.status, func.count()).group_by(table.status)).all()}
