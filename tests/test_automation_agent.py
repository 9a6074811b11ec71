"""The agent end to end on the real pipeline, registry and monitoring store, in simulated
time: triggers start exactly one retrain, the gate and the approval workflow decide
promotion, and the limits hold. Runs on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from automation_support import (
    DAY,
    HOUR,
    START,
    champion_workspace,
    drift_points,
    policy,
    quality_points,
    write_points,
)

from conveyor.automation import Outcome
from conveyor.automation.jobs import SKIPPED, SUCCEEDED, WAITING
from conveyor.core.clock import ManualClock
from conveyor.core.workspace import Workspace


def retrains(ws: Workspace) -> list:
    return [job for job in ws.automation.list_jobs(kind="retrain") if job.status != SKIPPED]


def run_ticks(agent, clock: ManualClock, ticks: int, step_s: float, before=None) -> None:  # noqa: ANN001
    for index in range(ticks):
        if before is not None:
            before(index)
        agent.tick()
        agent.drain()
        clock.advance(step_s)


def test_a_drift_trigger_starts_exactly_one_retrain_and_promotes_the_better_candidate(workspace: Workspace) -> None:
    path = champion_workspace(workspace)
    workspace.automation.apply_policy(policy(path, triggers=[{"type": "drift", "above": 0.3, "over": "7d"}],
                                             limits={"cooldown": "30d"}))
    clock = ManualClock(START)
    agent = workspace.automation.agent(clock=clock, lease_s=30)

    def drifted_day(index: int) -> None:
        day = START + index * DAY
        write_points(workspace, 1, day - DAY, day, drift_points(0.6))

    run_ticks(agent, clock, 4, DAY, drifted_day)
    agent.close()
    jobs = retrains(workspace)
    assert len(jobs) == 1
    assert jobs[0].trigger == "drift" and jobs[0].status == SUCCEEDED
    assert jobs[0].result["outcome"] == "promoted" and jobs[0].result["version"] == 2
    assert workspace.registry.get_registered_model("cancer").aliases["champion"] == 2
    skipped = [job for job in workspace.automation.list_jobs(status=SKIPPED)]
    assert not skipped or all("cooldown" in job.error or "max_concurrent" in job.error for job in skipped)
    events = [event.type for event in workspace.automation.list_events("cancer")]
    assert events[:4] == ["trigger", "job.started", "job.succeeded", "promoted"]


def test_a_quality_trigger_needs_enough_labels_then_starts_exactly_one_retrain(workspace: Workspace) -> None:
    path = champion_workspace(workspace)
    workspace.automation.apply_policy(policy(path, triggers=[
        {"type": "quality", "metric": "model_quality.roc_auc", "below": 0.9, "over": "3d", "min_labels": 300}]))
    clock = ManualClock(START)
    agent = workspace.automation.agent(clock=clock, lease_s=30)

    def labelled_day(index: int) -> None:
        day = START + index * DAY
        write_points(workspace, 1, day - DAY, day, quality_points(0.8, 100))

    run_ticks(agent, clock, 2, DAY, labelled_day)
    assert retrains(workspace) == []  # 200 labelled rows < 300: no verdict yet
    run_ticks(agent, clock, 4, DAY, lambda i: labelled_day(i + 2))
    agent.close()
    jobs = retrains(workspace)
    assert [job.trigger for job in jobs] == ["quality"]
    assert "0.8000 < 0.9 on 300 labelled rows" in jobs[0].reason


def test_a_candidate_that_does_not_beat_the_champion_by_the_margin_is_not_promoted(workspace: Workspace) -> None:
    path = champion_workspace(workspace)
    workspace.automation.apply_policy(policy(path, promotion={"margin": 0.2}))
    clock = ManualClock(START)
    agent = workspace.automation.agent(clock=clock, lease_s=30)
    run_ticks(agent, clock, 2, HOUR)
    agent.close()
    [job] = retrains(workspace)
    assert job.status == SUCCEEDED and job.result["outcome"] == "not_promoted"
    assert "does not beat cancer@champion (version 1)" in job.result["reason"]
    assert "by the required 0.2" in job.result["reason"]
    assert [v.version for v in workspace.registry.list_model_versions("cancer")] == [1]
    assert workspace.registry.get_registered_model("cancer").aliases["champion"] == 1


def test_a_high_risk_candidate_waits_for_a_validator_then_is_promoted(workspace: Workspace) -> None:
    path = champion_workspace(workspace, tier="high")
    workspace.automation.apply_policy(policy(path))
    clock = ManualClock(START)
    agent = workspace.automation.agent(clock=clock, lease_s=30)
    run_ticks(agent, clock, 2, HOUR)
    [job] = retrains(workspace)
    assert job.status == WAITING and job.result["outcome"] == "awaiting_approval"
    assert workspace.registry.get_registered_model("cancer").aliases["champion"] == 1
    [request] = workspace.registry.list_approvals("cancer", 2)
    assert request.decision is None
    validator = Workspace(workspace.settings.model_copy(update={"user": "val", "roles": {"val": ["validator"]}}))
    validator.registry.approve("cancer", 2, "reviewed")
    agent.tick()
    agent.close()
    job = workspace.automation.get_job(job.id)
    assert job.status == SUCCEEDED and job.result["outcome"] == "promoted"
    assert workspace.registry.get_registered_model("cancer").aliases["champion"] == 2


def test_cooldown_and_limits_hold_over_a_simulated_day(workspace: Workspace) -> None:
    path = champion_workspace(workspace)
    workspace.automation.apply_policy(policy(path, limits={"cooldown": "3h", "max_retrains": 3, "per": "1d"}))
    ran: list[str] = []

    def quick(ws, policy, job, cancelled) -> Outcome:  # noqa: ANN001
        ran.append(job.trigger_key)
        return Outcome(SUCCEEDED, {"outcome": "unchanged"})

    clock = ManualClock(START)
    agent = workspace.automation.agent(clock=clock, lease_s=30, handlers={"retrain": quick})
    run_ticks(agent, clock, 25, HOUR)
    agent.close()
    slots = [int(key.split(":")[1]) // 1000 for key in ran]
    assert [(slot - START) // HOUR for slot in slots] == [1, 4, 7]  # 3h apart, then max 3 per day
    skipped = workspace.automation.list_jobs(status=SKIPPED, limit=1000)
    reasons = {job.error.split(":")[0] for job in skipped}
    assert reasons == {"cooldown", "max_retrains"}
    assert len(skipped) == 24 - 3


def test_max_concurrent_holds_while_a_retrain_runs(workspace: Workspace) -> None:
    path = champion_workspace(workspace)
    workspace.automation.apply_policy(policy(path))
    release = threading.Event()

    def slow(ws, policy, job, cancelled) -> Outcome:  # noqa: ANN001
        release.wait(30)
        return Outcome(SUCCEEDED, {"outcome": "unchanged"})

    clock = ManualClock(START)
    agent = workspace.automation.agent(clock=clock, workers=2, lease_s=30, handlers={"retrain": slow})
    for _ in range(4):
        clock.advance(HOUR)
        agent.tick()
    release.set()
    agent.close()
    statuses = sorted(job.status for job in workspace.automation.list_jobs())
    assert statuses == [SKIPPED, SKIPPED, SUCCEEDED]
    assert all("max_concurrent" in job.error for job in workspace.automation.list_jobs(status=SKIPPED))


@pytest.mark.parametrize("catchup, expected", [("skip", 0), ("once", 1)])
def test_missed_slots_follow_the_catch_up_policy(workspace: Workspace, catchup: str, expected: int) -> None:
    path = champion_workspace(workspace)
    workspace.automation.apply_policy(policy(path, triggers=[
        {"type": "schedule", "cron": "0 * * * *", "catchup": catchup, "grace": "10m"}]))
    ran: list[str] = []

    def quick(ws, policy, job, cancelled) -> Outcome:  # noqa: ANN001
        ran.append(job.trigger_key)
        return Outcome(SUCCEEDED, {})

    clock = ManualClock(START)
    agent = workspace.automation.agent(clock=clock, handlers={"retrain": quick})
    agent.tick()  # arms the schedule
    clock.advance(5 * HOUR + 1800)  # the agent was down for five slots
    agent.tick()
    agent.close()
    assert len(ran) == expected
    [missed] = [e for e in workspace.automation.list_events("cancer") if e.type == "schedule.missed"]
    assert missed.payload["missed"] == 5 - expected


def test_a_retrain_runs_in_a_worker_process_with_the_same_outcome(workspace: Workspace) -> None:
    path = champion_workspace(workspace)
    workspace.automation.apply_policy(policy(path))
    clock = ManualClock(START)
    agent = workspace.automation.agent(clock=clock, runner="process", lease_s=30)
    run_ticks(agent, clock, 2, HOUR)
    agent.close()
    [job] = retrains(workspace)
    assert job.status == SUCCEEDED and job.result["outcome"] == "promoted" and job.result["version"] == 2
    assert workspace.registry.get_registered_model("cancer").aliases["champion"] == 2
    [agent_row] = workspace.automation.agents()
    assert agent_row["runner"] == "process" and agent_row["stopped_at"] is not None


def test_two_versions_served_in_one_window_keep_a_point_each(workspace: Workspace) -> None:
    from conveyor.automation.triggers import series

    write_points(workspace, 1, START, START + DAY, quality_points(0.9, 100))
    write_points(workspace, 2, START, START + DAY, quality_points(0.7, 50))
    since, until = (START - DAY) * 1000, (START + DAY) * 1000
    assert series(workspace, "cancer", 1, "model_quality.roc_auc", "", since, until)["value"].tolist() == [0.9]
    assert series(workspace, "cancer", 2, "model_quality.roc_auc", "", since, until)["value"].tolist() == [0.7]
