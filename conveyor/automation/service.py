"""The automation service: policies, jobs, agents, watches and events of one workspace.
SDK, CLI and HTTP are thin over it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select

from conveyor.automation.agent import Agent, agent_rows
from conveyor.automation.events import AutomationEvent, Events
from conveyor.automation.handlers import Handler, pipeline_overrides
from conveyor.automation.jobs import Job, JobStore
from conveyor.automation.policy import Policy, load_policy, parse_policy
from conveyor.automation.scheduler import PolicyScheduler
from conveyor.automation.tables import automation_policies
from conveyor.core.clock import SYSTEM_CLOCK, Clock
from conveyor.core.db.base import now_ms
from conveyor.errors import NotFound, ValidationError
from conveyor.governance.identity import Actor
from conveyor.governance.permissions import Action, requires

if TYPE_CHECKING:
    from conveyor.core.workspace import Workspace


class AutomationService:
    """Retraining policies and the jobs, watches and events they produce."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.store = workspace.metadata
        self.jobs = JobStore(self.store)
        self.events = Events(self.store, self.find_policy)

    @property
    def actor(self) -> Actor:
        """Who acts: the workspace's acting user."""
        return self.workspace.actor

    # Policies

    @requires(Action.AUTOMATION_WRITE)
    def apply_policy(self, source: Policy | dict[str, Any] | str | Path) -> Policy:
        """Check a policy (a ``Policy``, plain data or a YAML path) and its pipeline, then
        store it; its evaluation state survives a change of the policy.

        Raises:
            ValidationError: the policy or its pipeline is invalid, or the pipeline does not
                register the policy's model.
        """
        if isinstance(source, Policy):
            policy = parse_policy(source.stored())
        elif isinstance(source, dict):
            policy = parse_policy(source)
        elif isinstance(source, (str, Path)):
            policy = load_policy(source)
        else:
            raise ValidationError(f"a policy is a Policy, a mapping or a YAML path, not {type(source).__name__}",
                                  field="policy")
        self._check_pipeline(policy)
        now = now_ms()
        actor = self.workspace.actor.name
        with self.workspace.audit.transaction() as tx:
            existing = tx.conn.execute(select(automation_policies).where(
                automation_policies.c.name == policy.name)).first()
            values = {"name": policy.name, "model": policy.model, "spec": policy.stored(), "updated_at": now,
                      "updated_by": actor}
            if existing is None:
                tx.conn.execute(automation_policies.insert().values(**values, state={}, paused=False, created_at=now))
            else:
                tx.conn.execute(automation_policies.update().where(automation_policies.c.name == policy.name)
                                .values(**values))
            tx.record(actor, "policy.applied", f"policy:{policy.name}",
                      None if existing is None else {"spec": existing.spec}, {"spec": policy.model_dump(mode="json")})
        return policy

    def _check_pipeline(self, policy: Policy) -> None:
        from conveyor.pipelines.service import PipelineService

        try:
            pipeline, _ = PipelineService(self.workspace).load(policy.retrain.pipeline,
                                                               pipeline_overrides(policy, now_ms()))
        except ValidationError as exc:
            raise ValidationError(f"policy {policy.name} retrain.pipeline: {exc.message}",
                                  field="retrain.pipeline") from None
        if pipeline.registration is None or pipeline.registration.model != policy.model:
            raise ValidationError(f"policy {policy.name} retrain.pipeline: {policy.retrain.pipeline} must register "
                                  f"model {policy.model!r} (its register.model)", field="retrain.pipeline")

    @requires(Action.AUTOMATION_READ)
    def find_policy(self, name: str) -> Policy | None:
        """A stored policy, or None."""
        with self.store.read() as conn:
            spec = conn.execute(select(automation_policies.c.spec).where(automation_policies.c.name == name)).scalar()
        return None if spec is None else Policy.model_validate(spec)

    @requires(Action.AUTOMATION_READ)
    def get_policy(self, name: str) -> Policy:
        """A stored policy; ``NotFound`` names it."""
        policy = self.find_policy(name)
        if policy is None:
            raise NotFound(f"no policy {name!r}", field="policy")
        return policy

    @requires(Action.AUTOMATION_READ)
    def list_policies(self) -> list[dict[str, Any]]:
        """Every policy with its state, by name; webhook secrets in ``spec`` are masked."""
        with self.store.read() as conn:
            rows = conn.execute(select(automation_policies).order_by(automation_policies.c.name)).all()
        return [{**row._mapping, "spec": Policy.model_validate(row.spec).model_dump(mode="json")} for row in rows]

    @requires(Action.AUTOMATION_WRITE)
    def delete_policy(self, name: str) -> None:
        """Remove a policy; its jobs and events stay as history."""
        actor = self.workspace.actor.name
        with self.workspace.audit.transaction() as tx:
            deleted = tx.conn.execute(delete(automation_policies).where(automation_policies.c.name == name))
            if deleted.rowcount == 0:
                raise NotFound(f"no policy {name!r}", field="policy")
            tx.record(actor, "policy.deleted", f"policy:{name}", None, None)

    @requires(Action.AUTOMATION_WRITE)
    def set_paused(self, name: str, paused: bool) -> None:
        """Pause a policy (no evaluation, no new jobs) or resume it."""
        with self.store.write() as conn:
            updated = conn.execute(automation_policies.update().where(automation_policies.c.name == name)
                                   .values(paused=paused))
        if updated.rowcount == 0:
            raise NotFound(f"no policy {name!r}", field="policy")

    # Jobs, watches, events, agents

    @requires(Action.AUTOMATION_READ)
    def list_jobs(self, policy: str | None = None, status: str | None = None, kind: str | None = None,
                  limit: int = 100) -> list[Job]:
        """Jobs, newest first."""
        return self.jobs.list(policy, status, kind, limit)

    @requires(Action.AUTOMATION_READ)
    def get_job(self, job_id: str) -> Job:
        """One job by id or unique prefix."""
        return self.jobs.get(job_id)

    @requires(Action.AUTOMATION_WRITE)
    def cancel_job(self, job_id: str, clock: Clock = SYSTEM_CLOCK) -> Job:
        """Cancel a job (a running one stops at its next step)."""
        return self.jobs.cancel(job_id, int(clock.now() * 1000))

    @requires(Action.AUTOMATION_WRITE)
    def retry_job(self, job_id: str) -> Job:
        """Queue a failed or cancelled job again."""
        return self.jobs.retry(job_id)

    @requires(Action.AUTOMATION_READ)
    def watches(self, policy: str | None = None) -> list[dict[str, Any]]:
        """Watches of new champions, newest first."""
        return PolicyScheduler(self.workspace, self.jobs, self.events).watches(policy)

    @requires(Action.AUTOMATION_READ)
    def list_events(self, model: str | None = None, after_id: int = 0, limit: int = 1000) -> list[AutomationEvent]:
        """Automation events (triggers, jobs, promotions, rollbacks), oldest first."""
        return self.events.list(model, after_id, limit)

    @requires(Action.AUTOMATION_READ)
    def agents(self) -> list[dict[str, Any]]:
        """Every agent that registered, newest first."""
        return agent_rows(self.workspace)

    @requires(Action.AUTOMATION_READ)
    def job_counts(self) -> dict[str, int]:
        """How many jobs are in each status."""
        return self.jobs.counts()

    @requires(Action.AUTOMATION_WRITE)
    def agent(self, clock: Clock = SYSTEM_CLOCK, runner: str = "thread", workers: int = 1, interval_s: float = 30.0,
              lease_s: float = 60.0, handlers: dict[str, Handler] | None = None,
              policies: list[str] | None = None, agent_id: str | None = None) -> Agent:
        """A new agent over this workspace (``run()`` it, or ``tick()`` it step by step)."""
        return Agent(self.workspace, clock, runner, workers, interval_s, lease_s, handlers, policies, agent_id)
