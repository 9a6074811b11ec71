"""The ``conveyor`` command: listings, JSON output, one-line errors with exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import conveyor
from conveyor.core.config import CONFIG_FILE, load_settings
from conveyor.core.workspace import Workspace


def cli(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "conveyor", "-w", str(root), *args],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "200", **(env or {})}, timeout=120,
    )


@pytest.fixture
def populated(tmp_path: Path) -> tuple[Path, list[str]]:
    workspace = Workspace(load_settings(tmp_path))
    ids = []
    for model, auc in (("lgbm", 0.91), ("rf", 0.84)):
        with conveyor.start_run(experiment="credit", params={"model": model}, workspace=workspace) as run:
            run.log_metric("auc", auc)
        ids.append(run.id)
    workspace.close()
    return tmp_path, ids


def test_init_writes_the_config_and_creates_the_store(tmp_path: Path) -> None:
    result = cli(tmp_path, "init", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / CONFIG_FILE).read_text().startswith("# Conveyor workspace settings")
    assert (tmp_path / ".conveyor" / "conveyor.db").is_file()
    again = cli(tmp_path, "init", str(tmp_path))
    assert again.returncode == 1
    assert again.stderr.strip() == f"error: {tmp_path / CONFIG_FILE} exists already (use --force to overwrite)"


def test_runs_list_json_is_machine_readable(populated: tuple[Path, list[str]]) -> None:
    root, ids = populated
    result = cli(root, "runs", "list", "-e", "credit", "-f", "metrics.auc > 0.9", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [row["run_id"] for row in rows] == [ids[0]]
    assert rows[0]["metrics.auc"] == 0.91 and rows[0]["params.model"] == "lgbm"


def test_experiments_list_and_runs_show_compare(populated: tuple[Path, list[str]]) -> None:
    root, ids = populated
    experiments = json.loads(cli(root, "experiments", "list", "--json").stdout)
    assert [e["name"] for e in experiments] == ["credit"]
    shown = json.loads(cli(root, "runs", "show", ids[1], "--json").stdout)
    assert shown["params"] == {"model": "rf"} and shown["info"]["status"] == "FINISHED"
    compared = json.loads(cli(root, "runs", "compare", *ids, "--json").stdout)
    assert compared[ids[0]]["params.model"] == "lgbm" and compared[ids[1]]["metrics.auc"] == 0.84
    table = cli(root, "runs", "list", "-e", "credit", "-o", "metrics.auc DESC")
    assert table.returncode == 0 and table.stdout.index(ids[0]) < table.stdout.index(ids[1])


def test_delete_hides_a_run(populated: tuple[Path, list[str]]) -> None:
    root, ids = populated
    assert cli(root, "runs", "delete", ids[0]).returncode == 0
    rows = json.loads(cli(root, "runs", "list", "-e", "credit", "--json").stdout)
    assert [row["run_id"] for row in rows] == [ids[1]]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (("runs", "list", "-e", "credit", "-f", "metrics.auc >"), 2, "error: filter: unexpected end of input"),
        (("runs", "list", "-e", "nope"), 3, "error: experiment 'nope' does not exist"),
        (("runs", "show", "0" * 32), 3, f"error: run '{'0' * 32}' does not exist"),
    ],
)
def test_errors_are_one_line_with_an_exit_code(
    populated: tuple[Path, list[str]], args: tuple[str, ...], code: int, message: str
) -> None:
    result = cli(populated[0], *args)
    assert result.returncode == code
    assert result.stderr.strip().startswith(message)
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_a_bad_setting_from_the_environment_names_the_key(populated: tuple[Path, list[str]]) -> None:
    result = cli(populated[0], "runs", "list", "-e", "credit", env={"CONVEYOR_TRACKING__FLUSH_INTERVAL_MS": "soon"})
    assert result.returncode == 2
    assert result.stderr.startswith("error: setting 'tracking.flush_interval_ms'")
    assert len(result.stderr.strip().splitlines()) == 1


def test_an_unreachable_database_is_one_line_exit_7(tmp_path: Path) -> None:
    result = cli(tmp_path, "--metadata-url", "postgresql+psycopg://x@127.0.0.1:1/none?connect_timeout=2", "experiments", "list")
    assert result.returncode == 7
    assert result.stderr.startswith("error: metadata store") and "unreachable" in result.stderr
