"""Exactly once with several agents and dead agents: every schedule slot becomes one job
run once by one agent; a job whose agent was killed is taken over after its lease expires
and never registers a second model version for its trigger."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

from automation_support import HOUR, START, champion_workspace, policy
from pipeline_support import write_pipeline
from sqlalchemy import update

from conveyor.automation import Outcome
from conveyor.automation.handlers import JOB_TAG, retrain
from conveyor.automation.jobs import RUNNING, SUCCEEDED
from conveyor.automation.tables import automation_jobs
from conveyor.core.clock import ManualClock
from conveyor.core.workspace import Workspace


def test_two_agents_run_each_of_100_schedule_slots_once(workspace: Workspace) -> None:
    path = write_pipeline(Path(workspace.settings.workspace), tune=None, register={"model": "cancer"})
    workspace.automation.apply_policy(policy(path))
    runs: collections.Counter[str] = collections.Counter()
    by_agent: collections.Counter[str] = collections.Counter()
    lock = threading.Lock()

    def counting(agent_name: str):  # noqa: ANN202
        def handler(ws, policy, job, cancelled) -> Outcome:  # noqa: ANN001
            with lock:
                runs[job.trigger_key] += 1
                by_agent[agent_name] += 1
            time.sleep(0.002)
            return Outcome(SUCCEEDED, {})
        return handler

    clocks = [ManualClock(START), ManualClock(START)]
    agents = [Workspace(workspace.settings).automation.agent(clock=clock, lease_s=30, handlers={"retrain": counting(n)})
              for n, clock in zip("ab", clocks)]
    barrier = threading.Barrier(2)

    def loop(index: int) -> None:
        for _ in range(101):
            barrier.wait()
            agents[index].tick()
            agents[index].drain()
            barrier.wait()
            clocks[index].advance(HOUR)

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    for agent in agents:
        agent.close()
    jobs = workspace.automation.list_jobs(limit=1000)
    assert len(jobs) == 100
    assert {job.status for job in jobs} == {SUCCEEDED}
    assert len(runs) == 100 and set(runs.values()) == {1}
    assert sorted(int(key.split(":")[1]) for key in runs) == [(START + h * HOUR) * 1000 for h in range(1, 101)]
    assert set(by_agent) == {"a", "b"}, by_agent


AGENT_SCRIPT = textwrap.dedent("""
    import sys
    from conveyor.core.clock import ManualClock
    from conveyor.core.config import Settings
    from conveyor.core.workspace import Workspace

    workspace = Workspace(Settings.model_validate_json(sys.argv[1]))
    agent = workspace.automation.agent(clock=ManualClock(float(sys.argv[2])), lease_s=2, agent_id="doomed")
    agent.tick()
    agent.drain()
""")


def _scheduled_job(ws: Workspace) -> str:
    """The retrain job of the policy's first hourly slot, created but not run."""
    agent = ws.automation.agent(clock=ManualClock(START))
    agent.scheduler.evaluate("cancer-retrain", START * 1000)  # arms the schedule
    [job_id] = agent.scheduler.evaluate("cancer-retrain", (START + HOUR) * 1000).jobs
    agent.close()
    return job_id


def _tagged_versions(ws: Workspace, job_id: str) -> list[int]:
    return [v.version for v in ws.registry.list_model_versions("cancer")
            if ws.tracking.get_run(v.run_id).tags.get(JOB_TAG) == job_id]


def test_a_job_whose_agent_is_killed_is_taken_over_and_registers_one_version(workspace: Workspace,
                                                                             tmp_path: Path) -> None:
    path = champion_workspace(workspace)
    write_pipeline(path.parent, register={"model": "cancer", "alias": "champion", "risk_tier": "low"},
                   tune={"n_trials": 8, "parallelism": 1, "space": {"C": {"type": "float", "low": 0.01, "high": 10,
                                                                          "log": True}}})
    workspace.automation.apply_policy(policy(path))
    job_id = _scheduled_job(workspace)
    process = subprocess.Popen([sys.executable, "-c", AGENT_SCRIPT, workspace.settings.model_dump_json(),
                                str(START + HOUR)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while "RUNNING" not in _statuses(workspace, job_id):
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "the doomed agent never started the retrain"
        time.sleep(0.1)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    job = workspace.automation.get_job(job_id)
    assert job.status == RUNNING and job.lease_owner == "doomed" and job.attempts == 1
    successor = workspace.automation.agent(clock=ManualClock(START + HOUR), lease_s=2)
    assert successor.tick().started == []  # the lease has not expired yet
    time.sleep(2.2)
    assert successor.tick().started == [job_id]
    successor.close()
    job = workspace.automation.get_job(job_id)
    assert job.status == SUCCEEDED and job.attempts == 2 and job.result["outcome"] == "promoted"
    assert _tagged_versions(workspace, job_id) == [2]
    assert sorted(v.version for v in workspace.registry.list_model_versions("cancer")) == [1, 2]


def _statuses(ws: Workspace, job_id: str) -> list[str]:
    """Statuses of the pipeline runs the job started."""
    return ws.tracking.search_runs("cancer", filter=f"tags.{JOB_TAG} = '{job_id}'")["status"].tolist()


def test_a_successor_adopts_the_version_a_dead_attempt_registered(workspace: Workspace) -> None:
    path = champion_workspace(workspace)
    stored = workspace.automation.apply_policy(policy(path))
    job_id = _scheduled_job(workspace)
    [job] = workspace.automation.jobs.claim("dead", 1, 1, (START + HOUR) * 1000)
    # The dead attempt got as far as registering its candidate, then its agent died.
    registered = retrain(workspace, stored.model_copy(update={"promotion": stored.promotion.model_copy(
        update={"automatic_tiers": []})}), job, lambda: False)
    assert registered.result["version"] == 2
    with workspace.metadata.write() as conn:
        conn.execute(update(automation_jobs).where(automation_jobs.c.id == job_id).values(lease_expires_at=0))
    successor = workspace.automation.agent(clock=ManualClock(START + HOUR), lease_s=30)
    successor.tick()
    successor.close()
    job = workspace.automation.get_job(job_id)
    assert job.status == SUCCEEDED and job.attempts == 2
    assert job.result["adopted"] is True and job.result["outcome"] == "promoted" and job.result["version"] == 2
    assert sorted(v.version for v in workspace.registry.list_model_versions("cancer")) == [1, 2]
    assert workspace.registry.get_registered_model("cancer").aliases["champion"] == 2
