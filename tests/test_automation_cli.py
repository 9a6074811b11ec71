"""``conveyor policies``, ``conveyor agent`` and ``conveyor jobs`` from a shell, as a user runs them.

No test runs a real retrain (each takes seconds): the schedules used here have no slot in
the time the agent covers, and jobs are created directly in the store. Each CLI call spends
seconds importing, so independent calls run side by side, and the tests whose commands
only read or validate run on SQLite alone; those that claim, cancel and lock run on both.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml
from pipeline_support import write_pipeline

from conveyor.core.config import load_settings
from conveyor.core.workspace import Workspace

POLICY = {
    "name": "cancer-weekly",
    "model": "cancer",
    "triggers": [{"type": "schedule", "cron": "0 3 * * 1"}],
    "retrain": {"pipeline": "pipeline.yaml"},
    "limits": {"cooldown": "1h"},
}
NEW_YEAR = 1_704_067_200_000  # 2024-01-01T00:00:00Z in epoch ms


def _policy_file(folder: Path, **changes: Any) -> Path:
    """A policy over the small cancer pipeline (written next to it), with ``changes``."""
    write_pipeline(folder, tune=None, register={"model": "cancer", "risk_tier": "low"})
    path = folder / "policy.yaml"
    path.write_text(yaml.safe_dump({**POLICY, **changes}, sort_keys=False))
    return path


def _sqlite_workspace(tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    root.mkdir()
    return Workspace(load_settings(root))


def _together(run_cli, ws: Workspace, *commands: tuple[str, ...]) -> list:  # noqa: ANN001
    """Run independent commands at once; results in the order given."""
    with ThreadPoolExecutor(len(commands)) as pool:
        return list(pool.map(lambda args: run_cli(ws, *args), commands))


def _ok(result) -> str:  # noqa: ANN001
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_apply_then_list_and_show_round_trip(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    workspace = _sqlite_workspace(tmp_path)
    path = _policy_file(tmp_path)
    applied = _ok(run_cli(workspace, "policies", "apply", str(path)))
    assert applied.strip() == "applied policy cancer-weekly (model cancer): schedule '0 3 * * 1'"
    listed, shown = _together(run_cli, workspace, ("policies", "list"), ("policies", "show", "cancer-weekly", "--json"))
    row = next(line for line in _ok(listed).splitlines() if "cancer-weekly" in line)
    assert [cell.strip() for cell in row.strip("│ ").split("│")][:4] == ["cancer-weekly", "cancer",
                                                                        "schedule '0 3 * * 1'", "False"]
    stored = json.loads(_ok(shown))
    assert stored["policy"]["triggers"] == [{"type": "schedule", "cron": "0 3 * * 1", "timezone": "UTC",
                                             "catchup": "skip", "grace": "1h"}]
    assert stored["policy"]["retrain"]["pipeline"] == str(tmp_path / "pipeline.yaml")
    assert stored["policy"]["limits"]["cooldown"] == "1h"
    assert stored["paused"] is False and stored["state"] == {}


def test_bad_input_is_one_red_line_with_the_exit_code_of_its_error(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    ws = _sqlite_workspace(tmp_path)
    bad_cron = _policy_file(tmp_path, triggers=[{"type": "schedule", "cron": "not a cron"}])
    cases = [
        (("policies", "apply", str(bad_cron)), 2, f"error: {bad_cron} triggers[0].cron: 'not a cron' is not a cron "
                                                  "expression such as '0 3 * * 1' (minute hour day month weekday)"),
        (("policies", "delete", "nope"), 3, "error: no policy 'nope'"),
        (("jobs", "show", "0123456789ab"), 3, "error: no job '0123456789ab'"),
        (("agent", "run", "--once", "--from", "2024-01-01"), 2, "error: --from needs --simulate"),
    ]
    results = _together(run_cli, ws, *(args for args, _, _ in cases))
    for (args, code, message), result in zip(cases, results):
        assert (result.returncode, result.stderr.strip().splitlines()) == (code, [message]), args


def test_agents_on_the_system_and_a_simulated_clock_arm_their_schedules_and_report_status(
        workspace: Workspace, tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    service = workspace.automation
    service.apply_policy(_policy_file(tmp_path))
    # Once a year (July 1st): no slot in the simulated day, so no retrain runs.
    service.apply_policy(_policy_file(tmp_path, name="cancer-yearly", triggers=[{"type": "schedule",
                                                                                  "cron": "0 3 1 7 *"}]))
    once, simulated = _together(
        run_cli, workspace, ("agent", "run", "--once", "--policy", "cancer-weekly"),
        ("agent", "run", "--policy", "cancer-yearly", "--simulate", "--from", "2024-01-01T00:00:00Z", "--speed",
         "3600000", "--until", "2024-01-02T00:00:00Z", "--interval", "1h"))
    assert "stopped after 1 tick(s)" in _ok(once)
    assert "on the simulated clock from 2024-01-01T00:00:00Z" in _ok(simulated)
    slots = {row["name"]: list(row["state"]["slots"]) for row in service.list_policies()}
    assert slots == {"cancer-weekly": ["0:0 3 * * 1:UTC"], "cancer-yearly": ["0:0 3 1 7 *:UTC"]}
    status = json.loads(_ok(run_cli(workspace, "agent", "status", "--json")))
    agents = {agent["clock"].split()[0]: agent for agent in status["agents"]}
    assert sorted(agents) == ["simulated", "system"]
    assert (agents["system"]["ticks"], agents["system"]["runner"], agents["system"]["alive"]) == (1, "thread", False)
    assert agents["simulated"]["ticks"] >= 1 and agents["simulated"]["clock_now"] >= NEW_YEAR + 86_400_000
    assert all(agent["stopped_at"] is not None for agent in status["agents"]) and status["jobs"] == {}


def test_jobs_are_listed_cancelled_and_retried(workspace: Workspace, run_cli) -> None:  # noqa: ANN001
    jobs = workspace.automation.jobs
    with workspace.metadata.write() as conn:
        ids = [jobs.create(conn, "cancer-weekly", "cancer", "retrain", "schedule", f"schedule:{slot}",
                           "a test slot", slot, 3) for slot in (NEW_YEAR, NEW_YEAR + 3_600_000)]
    listed, cancelled = _together(run_cli, workspace, ("jobs", "list", "--json"), ("jobs", "cancel", ids[0][:8]))
    assert [(job["id"], job["policy"], job["kind"]) for job in json.loads(_ok(listed))] == [
        (ids[1], "cancer-weekly", "retrain"), (ids[0], "cancer-weekly", "retrain")]
    assert _ok(cancelled).strip() == f"job {ids[0][:12]} cancelled"
    assert workspace.automation.get_job(ids[0]).status == "cancelled"
    assert _ok(run_cli(workspace, "jobs", "retry", ids[0])).strip() == f"job {ids[0][:12]} is pending again (attempts reset)"
    job = workspace.automation.get_job(ids[0])
    assert (job.status, job.attempts, job.error, job.finished_at) == ("pending", 0, None, None)
