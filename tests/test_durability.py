"""Nothing acknowledged is lost: metrics survive kill -9, and dead runs are marked killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import conveyor
from conveyor.core.config import load_settings
from conveyor.core.workspace import Workspace
from conveyor.tracking.schemas import RunStatus

HELPER = Path(__file__).parent / "helpers" / "metric_logger.py"


def _spawn(root: Path, metadata_url: str, *args: str, flush_ms: int = 60_000) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "CONVEYOR_WORKSPACE": str(root),
        "CONVEYOR_METADATA__URL": metadata_url,
        # A long flush interval: only the write-ahead segment can save the points.
        "CONVEYOR_TRACKING__FLUSH_INTERVAL_MS": str(flush_ms),
    }
    return subprocess.Popen([sys.executable, str(HELPER), *args], stdout=subprocess.PIPE, text=True, env=env)


def _read_until(process: subprocess.Popen[str], predicate) -> tuple[list[str], str]:  # noqa: ANN001
    run_ids: list[str] = []
    for line in process.stdout:  # type: ignore[union-attr]
        if line.startswith("RUN "):
            run_ids.append(line.split()[1])
        if predicate(line):
            return run_ids, line
    raise AssertionError(f"child exited early with {process.wait()}")


def _kill(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait()


def _reopen(root: Path, metadata_url: str) -> Workspace:
    return Workspace(load_settings(root, metadata={"url": metadata_url}))


def test_points_acknowledged_before_kill_9_are_all_stored(tmp_path: Path, metadata_url: str) -> None:
    child = _spawn(tmp_path, metadata_url, "1", "5", "400", "--hang")
    run_ids, _ = _read_until(child, lambda line: line.startswith("HANGING"))
    _kill(child)
    workspace = _reopen(tmp_path, metadata_url)
    run = conveyor.get_run(run_ids[0], workspace=workspace)
    history = conveyor.get_metric_history(run_ids[0], "m3", workspace=workspace)
    assert run.info.status == RunStatus.KILLED
    assert list(history["step"]) == list(range(400))
    assert history["value"].iloc[-1] == 399 * 0.5 + 3
    assert run.metrics == {f"m{k}": 399 * 0.5 + k for k in range(5)}
    workspace.close()


def test_a_kill_in_the_middle_of_logging_loses_no_acknowledged_point(tmp_path: Path, metadata_url: str) -> None:
    child = _spawn(tmp_path, metadata_url, "1", "2", "1000000", flush_ms=50)
    run_ids, line = _read_until(child, lambda text: text.startswith("ACK") and int(text.split()[1]) >= 6000)
    acknowledged = int(line.split()[1])
    _kill(child)
    workspace = _reopen(tmp_path, metadata_url)
    history = conveyor.get_metric_history(run_ids[0], "m0", workspace=workspace)
    steps = list(history["step"])
    assert len(steps) >= acknowledged // 2
    assert steps == list(range(len(steps))), "every step exactly once: no gap, no duplicate from the replay"
    assert conveyor.get_run(run_ids[0], workspace=workspace).info.status == RunStatus.KILLED
    workspace.close()


def test_replaying_a_segment_twice_stores_nothing_twice(tmp_path: Path, metadata_url: str) -> None:
    child = _spawn(tmp_path, metadata_url, "1", "1", "300", "--hang")
    run_ids, _ = _read_until(child, lambda line: line.startswith("HANGING"))
    _kill(child)
    first = _reopen(tmp_path, metadata_url)
    assert len(conveyor.get_metric_history(run_ids[0], "m0", workspace=first)) == 300
    second = _reopen(tmp_path, metadata_url)
    assert len(conveyor.get_metric_history(run_ids[0], "m0", workspace=second)) == 300
    assert list((tmp_path / ".conveyor" / "wal").glob("*.wal")) == []
    first.close()
    second.close()


def test_a_run_whose_heartbeat_stopped_is_marked_killed(workspace: Workspace) -> None:
    from sqlalchemy import insert

    from conveyor.tracking.tables import runs

    experiment = workspace.tracking.ensure_experiment("remote")
    with workspace.metadata.write() as conn:
        conn.execute(insert(runs).values(
            id="f" * 32, experiment_id=experiment.id, name="elsewhere", status="RUNNING", start_time=1,
            heartbeat_at=1_000, host="another-host", pid=1, deleted=False,
        ))
    found = conveyor.search_runs("remote", workspace=workspace)
    assert list(found["status"]) == ["KILLED"]
    assert conveyor.get_run("f" * 32, workspace=workspace).info.end_time == 1_000


def test_a_live_run_of_another_process_is_not_reaped(tmp_path: Path, metadata_url: str) -> None:
    child = _spawn(tmp_path, metadata_url, "1", "1", "10", "--hang")
    run_ids, _ = _read_until(child, lambda line: line.startswith("HANGING"))
    try:
        workspace = _reopen(tmp_path, metadata_url)
        assert conveyor.get_run(run_ids[0], workspace=workspace).info.status == RunStatus.RUNNING
    finally:
        _kill(child)
    assert conveyor.get_run(run_ids[0], workspace=workspace).info.status == RunStatus.KILLED
    workspace.close()


@pytest.mark.parametrize("processes", [8])
def test_concurrent_processes_store_every_point_without_lock_errors(
    tmp_path: Path, metadata_url: str, processes: int
) -> None:
    children = [_spawn(tmp_path, metadata_url, "3", "5", "100", flush_ms=100) for _ in range(processes)]
    outputs = [child.communicate(timeout=300)[0] for child in children]
    assert [child.returncode for child in children] == [0] * processes, outputs
    workspace = _reopen(tmp_path, metadata_url)
    found = conveyor.search_runs("durability", max_results=1000, workspace=workspace)
    assert len(found) == 3 * processes
    assert set(found["status"]) == {"FINISHED"}
    assert workspace.tracking.count_metric_points() == processes * 3 * 5 * 100
    workspace.close()


def _log_in_forked_child(workspace: Workspace, parent_id: str, queue) -> None:  # noqa: ANN001
    with conveyor.start_run(parent=parent_id, workspace=workspace) as child:
        for step in range(100):
            child.log_metric("child_metric", float(step), step=step)
    queue.put(child.id)


def test_a_forked_child_logs_through_its_own_segment(tmp_path: Path) -> None:
    import multiprocessing

    workspace = _reopen(tmp_path, f"sqlite:///{tmp_path / 'fork.db'}")
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    with conveyor.start_run(workspace=workspace) as parent:
        parent.log_metric("parent_metric", 1.0)
        process = context.Process(target=_log_in_forked_child, args=(workspace, parent.id, queue))
        process.start()
        child_id = queue.get(timeout=60)
        process.join(timeout=60)
        parent.log_metric("parent_metric", 2.0, step=1)
    assert process.exitcode == 0
    assert len(conveyor.get_metric_history(child_id, "child_metric", workspace=workspace)) == 100
    assert list(conveyor.get_metric_history(parent.id, "parent_metric", workspace=workspace)["value"]) == [1.0, 2.0]
    assert conveyor.get_run(child_id, workspace=workspace).info.parent_id == parent.id
    workspace.close()
