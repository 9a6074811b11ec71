"""Watching a new champion: a breach of its watch rolls the alias back to the previous
champion (audited, announced), a running server follows without failing a request, and a
champion that holds up passes its watch."""

from __future__ import annotations

import threading
import time

from automation_support import (
    DAY,
    HOUR,
    START,
    champion_workspace,
    policy,
    quality_points,
    write_points,
)
from pipeline_support import FEATURES
from serving_support import running_server

from conveyor.core.clock import ManualClock
from conveyor.core.workspace import Workspace
from conveyor.pipelines.service import PipelineService

FAST = {"CONVEYOR_SERVING__POLL_INTERVAL_S": "0.2"}
WATCHED = {"period": "7d", "checks": [{"metric": "model_quality.roc_auc", "max_drop": 0.05, "min_labels": 300}]}


def second_version(ws: Workspace, path) -> int:  # noqa: ANN001
    """Version 2, registered and validated but not champion."""
    result = PipelineService(ws).run(path, ["register.alias=null"])
    assert result.model_version == 2
    return 2


def watched_workspace(ws: Workspace) -> tuple:
    path = champion_workspace(ws)
    second_version(ws, path)
    ws.automation.apply_policy(policy(path, triggers=[{"type": "staleness", "max_age": "365d"}], watch=WATCHED))
    write_points(ws, 1, START - DAY, START, quality_points(0.95, 500))
    clock = ManualClock(START)
    agent = ws.automation.agent(clock=clock, lease_s=30)
    agent.tick()  # the agent knows version 1 as champion
    return agent, clock


def test_a_breach_during_the_watch_rolls_back_and_serving_follows_without_a_failed_request(
        workspace: Workspace) -> None:
    agent, clock = watched_workspace(workspace)
    row = {name: 14.0 if "radius" in name else 0.1 for name in FEATURES}
    answers: list[tuple[int, int | None]] = []
    stop = threading.Event()
    with running_server(workspace, "cancer@champion", settings=FAST) as client:
        def send() -> None:
            while not stop.is_set():
                response = client.post("/v1/models/cancer/predict", json={"instances": [row]})
                answers.append((response.status_code, response.json().get("version")))

        sender = threading.Thread(target=send)
        sender.start()
        workspace.registry.set_alias("cancer", "champion", 2)  # a person promotes version 2
        clock.advance(HOUR)
        agent.tick()
        [watch] = workspace.automation.watches()
        assert (watch["version"], watch["previous_version"], watch["status"]) == (2, 1, "watching")
        assert watch["baseline"]["model_quality.roc_auc"]["value"] == 0.95
        _wait_for_version(answers, 2)
        write_points(workspace, 2, START, START + 2 * HOUR, quality_points(0.85, 400))
        clock.advance(HOUR)
        agent.tick()
        agent.close()
        assert workspace.registry.get_registered_model("cancer").aliases["champion"] == 1
        _wait_for_version(answers, 1)
        stop.set()
        sender.join()
    assert answers and all(status == 200 for status, _ in answers)
    versions = [version for _, version in answers]
    assert versions[0] == 1 and versions[-1] == 1 and 2 in versions
    [watch] = workspace.automation.watches()
    assert watch["status"] == "rolled_back" and "0.8500, more than 0.05 below" in watch["reason"]
    move = workspace.registry.alias_history("cancer", "champion")[-1]
    assert (move.action, move.version, move.previous_version) == ("rollback", 1, 2)
    assert any(entry.action == "alias.rollback" for entry in workspace.audit.list_entries())
    [event] = [e for e in workspace.automation.list_events("cancer") if e.type == "rolled_back"]
    assert event.payload["restored"] == 1 and event.payload["version"] == 2
    deliveries = workspace.monitoring.alerts.deliveries(rule="policy:cancer-retrain")
    assert any(d.event == "rolled_back" and d.status == "delivered" for d in deliveries)


def _wait_for_version(answers: list, version: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while not answers or answers[-1][1] != version:
        assert time.monotonic() < deadline, f"the server never served version {version}"
        time.sleep(0.05)


def test_a_champion_that_holds_up_passes_its_watch_and_too_few_labels_decide_nothing(workspace: Workspace) -> None:
    agent, clock = watched_workspace(workspace)
    workspace.registry.set_alias("cancer", "champion", 2)
    clock.advance(HOUR)
    agent.tick()
    write_points(workspace, 2, START, START + DAY, quality_points(0.70, 100))  # bad, but on 100 labels < 300
    clock.advance(DAY)
    agent.tick()
    assert workspace.automation.watches()[0]["status"] == "watching"
    write_points(workspace, 2, START + DAY, START + 2 * DAY, quality_points(0.97, 400))  # 0.916 on 500 labels
    clock.advance(DAY)
    agent.tick()
    assert workspace.automation.watches()[0]["status"] == "watching"
    clock.advance(6 * DAY)
    agent.tick()
    agent.close()
    [watch] = workspace.automation.watches()
    assert watch["status"] == "passed"
    assert workspace.registry.get_registered_model("cancer").aliases["champion"] == 2
    assert [e.type for e in workspace.automation.list_events("cancer")] == ["watch.started", "watch.passed"]
