"""Where an agent runs its jobs: threads of its own process, spawned worker processes, or Ray.

The agent keeps the lease and records the outcome; a runner only executes
``run_job(settings, kind, policy, job)`` somewhere and hands back a future. Worker
processes and Ray tasks open the workspace from its settings, so they need nothing from
the agent's memory.
"""

from __future__ import annotations

import multiprocessing
import signal
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Literal, Protocol

from conveyor.automation.handlers import HANDLERS, Handler
from conveyor.automation.jobs import Job, JobStore
from conveyor.automation.policy import Policy
from conveyor.automation.promotion import Outcome
from conveyor.errors import Unavailable, ValidationError

if TYPE_CHECKING:
    from conveyor.core.workspace import Workspace

RunnerType = Literal["thread", "process", "ray"]
RUNNERS = ("thread", "process", "ray")


class JobRunner(Protocol):
    """Executes jobs, several at once."""

    name: str

    def submit(self, policy: Policy, job: Job) -> Future[Outcome]:
        """Start the job; the future holds its outcome (or the handler's exception)."""
        ...

    def close(self) -> None:
        """Stop taking jobs and release the workers."""
        ...


def run_job(settings_json: str, policy_json: dict[str, Any], job_json: dict[str, Any]) -> Outcome:
    """In a worker: open the workspace and run the job's handler (cancellation read from the store)."""
    from conveyor.core.config import Settings
    from conveyor.core.workspace import Workspace

    workspace = Workspace(Settings.model_validate_json(settings_json))
    try:
        job = Job.model_validate(job_json)
        jobs = JobStore(workspace.metadata)
        return HANDLERS[job.kind](workspace, Policy.model_validate(policy_json), job,
                                  lambda: jobs.cancel_requested(job.id))
    finally:
        workspace.close()


class ThreadRunner:
    """Jobs on threads of the agent's process, over its own workspace (or custom handlers)."""

    name = "thread"

    def __init__(self, workspace: Workspace, workers: int, handlers: dict[str, Handler] | None = None) -> None:
        self.workspace = workspace
        self.handlers = handlers or HANDLERS
        self.jobs = JobStore(workspace.metadata)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="conveyor-job")

    def submit(self, policy: Policy, job: Job) -> Future[Outcome]:
        handler = self.handlers[job.kind]
        return self.pool.submit(handler, self.workspace, policy, job, lambda: self.jobs.cancel_requested(job.id))

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _ignore_interrupts() -> None:
    """In a worker: Ctrl-C is the agent's to handle (it drains, then stops the pool)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class ProcessRunner:
    """Jobs in spawned worker processes on this machine (a crash in a job cannot take the agent down)."""

    name = "process"

    def __init__(self, workspace: Workspace, workers: int) -> None:
        self.settings = workspace.settings.model_dump_json()
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_ignore_interrupts)

    def submit(self, policy: Policy, job: Job) -> Future[Outcome]:
        return self.pool.submit(run_job, self.settings, policy.stored(), job.model_dump(mode="json"))

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class RayRunner:
    """Jobs as Ray tasks (a local Ray, or the cluster at ``address``)."""

    name = "ray"

    def __init__(self, workspace: Workspace, address: str | None = None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise Unavailable("the ray runner needs Ray: pip install 'conveyor-ml[ray]'") from exc
        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
        self.settings = workspace.settings.model_dump_json()
        self.remote: Callable[..., Any] = ray.remote(run_job)

    def submit(self, policy: Policy, job: Job) -> Future[Outcome]:
        return self.remote.remote(self.settings, policy.stored(), job.model_dump(mode="json")).future()

    def close(self) -> None:
        return None


def open_runner(kind: str, workspace: Workspace, workers: int, handlers: dict[str, Handler] | None = None,
                address: str | None = None) -> JobRunner:
    """The runner ``kind`` names; custom ``handlers`` run only on threads."""
    if kind == "thread":
        return ThreadRunner(workspace, workers, handlers)
    if handlers is not None:
        raise ValidationError("custom job handlers run only with the 'thread' runner", field="runner")
    if kind == "process":
        return ProcessRunner(workspace, workers)
    if kind == "ray":
        return RayRunner(workspace, address)
    raise ValidationError(f"runner {kind!r} is not one of {', '.join(RUNNERS)}", field="runner")
