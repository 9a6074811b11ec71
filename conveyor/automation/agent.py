"""The agent: a long-running loop that evaluates policies, claims due jobs, runs them and
records how they ended, with its state in the metadata store.

Several agents may run against one database. Each tick evaluates every policy (job
creation is exactly once, see ``scheduler``), then claims as many due jobs as it has free
workers under a lease it renews from a heartbeat thread. An agent killed with ``kill -9``
stops renewing; once its leases expire another agent claims the jobs, and a retrain
adopts the version the dead attempt registered instead of registering another.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from conveyor.automation.events import Events
from conveyor.automation.handlers import Handler, JobCancelled
from conveyor.automation.jobs import CANCELLED, FAILED, Job, JobStore
from conveyor.automation.policy import Policy
from conveyor.automation.promotion import Outcome
from conveyor.automation.runners import JobRunner, open_runner
from conveyor.automation.scheduler import PolicyScheduler
from conveyor.automation.tables import automation_agents, automation_policies
from conveyor.core.clock import SYSTEM_CLOCK, Clock
from conveyor.core.db.base import now_ms
from conveyor.errors import ConveyorError, ValidationError

if TYPE_CHECKING:
    from conveyor.core.workspace import Workspace

log = logging.getLogger("conveyor.automation")


@dataclass
class Tick:
    """What one pass of the loop did."""

    at: int
    created: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    finished: list[Job] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class _InFlight:
    job: Job
    policy: Policy
    future: Future[Outcome]


class Agent:
    """Evaluates policies and runs their jobs.

    Args:
        workspace: the stores the agent works on.
        clock: where "now" comes from (simulated in tests and the demo).
        runner: ``thread``, ``process`` or ``ray``.
        workers: jobs run at once by this agent.
        interval_s: clock seconds between ticks.
        lease_s: real seconds a claimed job stays this agent's without a heartbeat.
        handlers: the work per job kind (threads only; default: retrain and monitor).
        policies: evaluate only these policies (default: all).
    """

    def __init__(self, workspace: Workspace, clock: Clock = SYSTEM_CLOCK, runner: str = "thread", workers: int = 1,
                 interval_s: float = 30.0, lease_s: float = 60.0, handlers: dict[str, Handler] | None = None,
                 policies: list[str] | None = None, agent_id: str | None = None) -> None:
        if workers < 1:
            raise ValidationError("workers must be at least 1", field="workers")
        if interval_s <= 0 or lease_s <= 0:
            raise ValidationError("interval and lease must be positive", field="interval" if interval_s <= 0 else "lease")
        self.workspace = workspace
        self.clock = clock
        self.workers = workers
        self.interval_s = interval_s
        self.lease_ms = int(lease_s * 1000)
        self.policies = policies
        self.id = agent_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.jobs = JobStore(workspace.metadata)
        self.events = Events(workspace.metadata, self._find_policy)
        self.scheduler = PolicyScheduler(workspace, self.jobs, self.events)
        self.runner: JobRunner = open_runner(runner, workspace, workers, handlers)
        self._in_flight: dict[str, _InFlight] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._closed = threading.Event()
        self._ticks = 0
        self._register()
        self._heartbeat = threading.Thread(target=self._renew_leases, name="conveyor-agent-heartbeat", daemon=True)
        self._heartbeat.start()

    def now(self) -> int:
        """The agent clock, in epoch ms."""
        return int(self.clock.now() * 1000)

    def _find_policy(self, name: str) -> Policy | None:
        with self.workspace.metadata.read() as conn:
            spec = conn.execute(select(automation_policies.c.spec).where(automation_policies.c.name == name)).scalar()
        return None if spec is None else Policy.model_validate(spec)

    def _policy_names(self) -> list[str]:
        with self.workspace.metadata.read() as conn:
            names = list(conn.execute(select(automation_policies.c.name).order_by(automation_policies.c.name)).scalars())
        return [name for name in names if self.policies is None or name in self.policies]

    # Registration and heartbeat

    def _register(self) -> None:
        real = now_ms()
        with self.workspace.metadata.write() as conn:
            conn.execute(automation_agents.insert().values(
                id=self.id, host=socket.gethostname(), pid=os.getpid(), runner=self.runner.name, clock=repr(self.clock),
                started_at=real, heartbeat_at=real, clock_now=self.now(), running_jobs=0, ticks=0))

    def _beat(self) -> None:
        with self.workspace.metadata.write() as conn:
            conn.execute(update(automation_agents).where(automation_agents.c.id == self.id).values(
                heartbeat_at=now_ms(), clock_now=self.now(), running_jobs=len(self._in_flight), ticks=self._ticks))

    def _renew_leases(self) -> None:
        """Every third of a lease: extend the leases of running jobs, say this agent is alive."""
        while not self._closed.wait(self.lease_ms / 3000):
            try:
                with self._lock:
                    leases = {job_id: flight.job.attempts for job_id, flight in self._in_flight.items()}
                held = self.jobs.renew(self.id, leases, self.lease_ms) if leases else set()
                with self._lock:
                    lost_jobs = (set(leases) - held) & set(self._in_flight)
                for lost in lost_jobs:
                    log.warning("agent %s lost the lease of job %s to another agent", self.id, lost[:12])
                self._beat()
            except Exception as exc:  # noqa: BLE001 - a failed beat is retried next time; the thread must live
                log.warning("heartbeat of agent %s failed: %s", self.id, exc)

    # The loop

    def tick(self) -> Tick:
        """Evaluate every policy, collect finished jobs, start due ones."""
        at = self.now()
        tick = Tick(at)
        tick.finished += self._collect()
        for name in self._policy_names():
            try:
                evaluation = self.scheduler.evaluate(name, at)
            except ConveyorError as exc:
                tick.notes.append(f"policy {name}: {exc.message}")
                log.error("evaluating policy %s failed: %s", name, exc.message)
                continue
            tick.created += evaluation.jobs
            tick.skipped += evaluation.skipped
            tick.notes += evaluation.notes
        tick.started += self._dispatch(at)
        self.events.retry()
        self._ticks += 1
        self._beat()
        return tick

    def _dispatch(self, at: int) -> list[str]:
        free = self.workers - len(self._in_flight)
        if free <= 0:
            return []
        started = []
        for job in self.jobs.claim(self.id, self.lease_ms, free, at):
            policy = self._find_policy(job.policy)
            if policy is None:
                self.jobs.finish(job, FAILED, at, error=f"policy {job.policy!r} no longer exists")
                continue
            with self.workspace.metadata.write() as conn:
                ids = self.events.record(conn, policy, "job.started", f"{job.kind} job {job.id[:12]} started by agent "
                                         f"{self.id} (attempt {job.attempts}): {job.reason}", at, job=job.id,
                                         attempt=job.attempts)
            self.events.send(ids)
            with self._lock:
                self._in_flight[job.id] = _InFlight(job, policy, self.runner.submit(policy, job))
            started.append(job.id)
        return started

    def _collect(self) -> list[Job]:
        with self._lock:
            done = [flight for flight in self._in_flight.values() if flight.future.done()]
        return [self._finish(flight) for flight in done]

    def _finish(self, flight: _InFlight) -> Job:
        at = self.now()
        job = flight.job
        error = None
        try:
            outcome = flight.future.result()
            status, result, summary = outcome.status, outcome.result, outcome.summary
        except JobCancelled as exc:
            status, result, summary, error = CANCELLED, {}, "", exc.message
        except Exception as exc:  # noqa: BLE001 - a job's failure is recorded, never the agent's end
            status = CANCELLED if self.jobs.cancel_requested(job.id) else FAILED
            result, summary = {}, ""
            error = exc.message if isinstance(exc, ConveyorError) else f"{type(exc).__name__}: {exc}"
        with self._lock:
            self._in_flight.pop(job.id, None)
        if self.jobs.finish(job, status, at, result, error):
            self.scheduler.record_finished(flight.policy, job.id, status, result, summary, error, at, job.kind)
        else:
            log.warning("job %s finished on agent %s after its lease was taken over; outcome dropped", job.id[:12],
                        self.id)
        return self.jobs.get(job.id)

    def run(self, until: float | None = None, max_ticks: int | None = None) -> None:
        """Tick every ``interval_s`` of the clock until ``stop()``, the clock reaches ``until``
        (epoch seconds) or ``max_ticks`` ticks; then wait for running jobs."""
        try:
            while not self._stop.is_set():
                self.tick()
                if max_ticks is not None and self._ticks >= max_ticks:
                    break
                if until is not None and self.clock.now() >= until:
                    break
                self.clock.sleep(self.interval_s)
        finally:
            self.close()

    def drain(self, timeout_s: float | None = None) -> list[Job]:
        """Wait for the jobs in flight and record them."""
        with self._lock:
            futures = [flight.future for flight in self._in_flight.values()]
        for future in futures:
            future.exception(timeout=timeout_s)
        return self._collect()

    def stop(self) -> None:
        """Ask the loop to end after the current tick."""
        self._stop.set()

    def close(self) -> None:
        """Wait for running jobs and record them, stop the heartbeat and the runner; the
        agent is recorded as stopped."""
        self.drain()
        self._stop.set()
        self._closed.set()
        self.runner.close()
        with self.workspace.metadata.write() as conn:
            conn.execute(update(automation_agents).where(automation_agents.c.id == self.id).values(
                stopped_at=now_ms(), running_jobs=0))


def agent_rows(workspace: Workspace) -> list[dict[str, Any]]:
    """Every agent that ever registered, newest first."""
    with workspace.metadata.read() as conn:
        rows = [dict(row._mapping) for row in conn.execute(
            select(automation_agents).order_by(automation_agents.c.started_at.desc()))]
    return rows

