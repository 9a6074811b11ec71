"""Conveyor's side of ``bench/automation.py``: two agents over simulated hourly slots.

One policy with an hourly schedule (``0 * * * *``, the policy of
``tests/test_automation_exactly_once.py``) is applied to a fresh workspace on the given
metadata URL. Two agents, each with its own ``Workspace`` (engine, connection pool) and
its own ``ManualClock``, run on two threads of this process. For each slot both threads
meet at a barrier, each agent ``tick()``s (evaluate the policy: lock its row, insert the
slot's job with ON CONFLICT DO NOTHING, record events; then claim due jobs by
compare-and-set under a lease and start them) and ``drain()``s (wait for its job and
record how it ended), they meet again and both clocks advance one hour. The retrain
handler is injected (``handlers={"retrain": ...}``, thread runner): it only counts its
execution, so the time measured is the scheduler's own. The first tick (which arms the
schedule: no slot is owed before it) is not timed.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import yaml
from _automation_common import Outcome

from conveyor.automation import Outcome as JobOutcome
from conveyor.automation.agent import Agent
from conveyor.automation.events import Events
from conveyor.automation.jobs import SUCCEEDED
from conveyor.automation.scheduler import PolicyScheduler
from conveyor.core.clock import ManualClock
from conveyor.core.config import load_settings
from conveyor.core.workspace import Workspace

START = 1_704_067_200  # 2024-01-01T00:00:00Z
HOUR = 3600
PIPELINE = {  # never run (the handler is injected); the policy needs a pipeline that registers its model
    "name": "bench", "task": "binary", "target": "label", "dataset": {"path": "data/never-read.parquet"},
    "train": {"estimator": "sklearn.linear_model.LogisticRegression"}, "register": {"model": "bench"},
}


# Where an agent's time goes: the wall time of these calls, each without the listed calls
# nested in it (a notice sent inside an evaluation counts as sending, not as evaluating).
PHASES = (
    (PolicyScheduler, "evaluate", "evaluate the policy: lock its row, create the slot's job, trigger event"),
    (Agent, "_dispatch", "claim due jobs (compare-and-set) and start them, job.started event"),
    (Agent, "drain", "wait for the running job (the no-op handler, on the runner's thread)"),
    (Agent, "_finish", "record the end: job row, policy state, job.succeeded event"),
    (Events, "send", "send the notices just recorded (outbox claim, log channel, mark delivered)"),
    (Events, "retry", "outbox pass over pending notices (every tick)"),
    (Agent, "_beat", "the agent's heartbeat row (every tick)"),
    (Agent, "tick", "rest of tick(): list policies, collect finished jobs"),
)


class Breakdown:
    """Exclusive wall time per phase, summed over the agents' threads (installed on the
    classes for the duration of a run; about a microsecond per call)."""

    def __init__(self) -> None:
        self.seconds: collections.Counter[str] = collections.Counter()
        self.calls: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()
        self._local = threading.local()

    def _wrap(self, function, key: str):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            stack = self._local.__dict__.setdefault("stack", [])
            stack.append(0.0)
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - start
                nested = stack.pop()
                if stack:
                    stack[-1] += elapsed
                with self._lock:
                    self.seconds[key] += elapsed - nested
                    self.calls[key] += 1
        return timed

    @contextlib.contextmanager
    def installed(self) -> Iterator[Breakdown]:
        originals = [(cls, name, cls.__dict__[name]) for cls, name, _ in PHASES]
        for cls, name, function in originals:
            setattr(cls, name, self._wrap(function, name))
        try:
            yield self
        finally:
            for cls, name, function in originals:
                setattr(cls, name, function)

    def rows(self, slots: int, agents: int, wall: float) -> list[tuple[str, float, float]]:
        """(phase, ms per slot per agent, calls per slot per agent), then what is left of the
        wall time (barriers: an agent waits for the other)."""
        rows = [(label, self.seconds[name] / slots / agents * 1000, self.calls[name] / slots / agents)
                for _, name, label in PHASES]
        left = wall / slots * 1000 - sum(row[1] for row in rows)
        return [*rows, ("waiting at the slot barriers for the other agent, clock", left, 2.0)]


def policy_document(pipeline: Path) -> dict:
    """Retrain ``bench`` at every hour; limits loose enough for one retrain per slot."""
    return {
        "name": "bench-retrain", "model": "bench",
        "triggers": [{"type": "schedule", "cron": "0 * * * *"}],
        "retrain": {"pipeline": str(pipeline)},
        "limits": {"cooldown": "1m", "max_retrains": 1000, "per": "1d"},
    }


def run_conveyor(store: str, url: str | None, folder: Path, slots: int) -> Outcome:
    """``slots`` hourly slots through two agents on the metadata database at ``url``
    (None: the workspace's embedded SQLite)."""
    outcome = Outcome("Conveyor, 2 agents", store, slots)
    root = folder / f"workspace-{store.lower()}"
    root.mkdir(parents=True)
    pipeline = root / "pipeline.yaml"
    pipeline.write_text(yaml.safe_dump(PIPELINE, sort_keys=False))
    settings = load_settings(root, metadata={"url": url}) if url else load_settings(root)
    setup = Workspace(settings)
    setup.automation.apply_policy(policy_document(pipeline))

    runs: collections.Counter[str] = collections.Counter()
    by_agent: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    def counting(name: str):
        def handler(workspace, policy, job, cancelled) -> JobOutcome:
            with lock:
                runs[job.trigger_key] += 1
                by_agent[name] += 1
            return JobOutcome(SUCCEEDED, {})
        return handler

    clocks = [ManualClock(START), ManualClock(START)]
    workspaces = [Workspace(settings) for _ in clocks]
    agents = [ws.automation.agent(clock=clock, lease_s=60, handlers={"retrain": counting(name)}, agent_id=name)
              for ws, clock, name in zip(workspaces, clocks, ("agent-a", "agent-b"), strict=True)]
    breakdown = Breakdown()
    errors: list[BaseException] = []
    marks: list[float] = []
    baseline: list[tuple[collections.Counter[str], collections.Counter[str]]] = []
    passages = [0]

    def at_barrier() -> None:  # run by one thread while both wait; the third passage starts slot 1
        passages[0] += 1
        if passages[0] == 3:
            baseline.append((breakdown.seconds.copy(), breakdown.calls.copy()))
            marks.append(time.perf_counter())

    barrier = threading.Barrier(2, action=at_barrier)

    def loop(index: int) -> None:
        try:
            for _ in range(slots + 1):  # tick 0 arms the schedule; ticks 1..N each owe one slot
                barrier.wait()
                agents[index].tick()
                agents[index].drain()
                barrier.wait()
                clocks[index].advance(HOUR)
        except BaseException as error:  # noqa: BLE001 - reported; the other thread is released
            errors.append(error)
            barrier.abort()

    threads = [threading.Thread(target=loop, args=(i,), name=f"bench-agent-{i}") for i in range(2)]
    with breakdown.installed():
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        end = time.perf_counter()
    if baseline:
        breakdown.seconds.subtract(baseline[0][0])
        breakdown.calls.subtract(baseline[0][1])
    for agent in agents:
        agent.close()
    jobs = setup.automation.job_counts()
    for ws in (*workspaces, setup):
        ws.close()
    real = [error for error in errors if not isinstance(error, threading.BrokenBarrierError)]
    if real:
        outcome.error = f"{type(real[0]).__name__}: {real[0]}"
        return outcome
    outcome.seconds = end - marks[0]
    outcome.runs = dict(runs)
    outcome.breakdown = breakdown.rows(slots, len(agents), outcome.seconds)
    outcome.notes.append(f"jobs in the store: {', '.join(f'{n:,} {s}' for s, n in sorted(jobs.items()))}; "
                         f"run by agent-a {by_agent['agent-a']:,}, agent-b {by_agent['agent-b']:,}")
    if jobs != {SUCCEEDED: slots}:
        outcome.failures.append(f"expected {slots:,} succeeded jobs in the store, found {jobs}")
    return outcome
