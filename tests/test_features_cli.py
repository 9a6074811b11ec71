"""``conveyor features``: plan, apply, materialize, get, list, show; errors are one line with an exit code."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from features_support import write_parquet
from test_feature_apply import stats_frame, write_defs

from conveyor.core.config import load_settings
from conveyor.core.workspace import Workspace
from conveyor.features import FeatureStore


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    root = tmp_path / "ws"
    root.mkdir()
    frame = stats_frame()
    frame["event_timestamp"] = pd.Timestamp.now().floor("s") - pd.Timedelta(days=1)
    write_parquet(root / "data" / "stats.parquet", frame)
    write_defs(root)
    workspace = Workspace(load_settings(root))
    yield workspace
    workspace.close()


def test_plan_apply_materialize_and_get(ws: Workspace, run_cli) -> None:  # noqa: ANN001
    plan = run_cli(ws, "features", "plan")
    assert plan.returncode == 0, plan.stderr
    assert "create" in plan.stdout and "customer_stats" in plan.stdout
    applied = run_cli(ws, "features", "apply")
    assert applied.returncode == 0 and "applied 3 change(s)" in applied.stdout
    assert "no changes" in run_cli(ws, "features", "plan").stdout
    materialized = run_cli(ws, "features", "materialize")
    assert materialized.returncode == 0, materialized.stderr
    assert "customer_stats v1: read 200 rows, wrote 20 entities" in materialized.stdout
    got = run_cli(ws, "features", "get", "credit_v1", "-e", "customer_id=3", "-e", "customer_id=999", "--json")
    answer = json.loads(got.stdout)
    assert answer["statuses"] == {"amount": ["present", "missing"], "orders": ["present", "missing"]}
    assert isinstance(answer["values"]["amount"][0], float) and answer["values"]["amount"][1] is None
    listed = json.loads(run_cli(ws, "features", "list", "--json").stdout)
    assert [(row["kind"], row["name"], row["version"]) for row in listed] == [
        ("entity", "customer", 1), ("feature_service", "credit_v1", 1), ("feature_view", "customer_stats", 1),
    ]
    assert listed[2]["materialized"].startswith("20 rows, newest")
    shown = json.loads(run_cli(ws, "features", "show", "customer_stats", "--json").stdout)
    assert shown["statistics"]["orders"]["count"] == 20
    assert shown["materializations"][0]["status"] == "committed"
    again = run_cli(ws, "features", "materialize", "--incremental", "--end", "2000-01-01")
    assert again.stdout.strip() == "nothing to materialise: every view is up to date"


@pytest.mark.parametrize(("args", "code", "message"), [
    (["features", "get", "credit_v1", "-e", "customer_id"], 2, "--entity 'customer_id': expected key=value"),
    (["features", "get", "nope:x", "-e", "customer_id=1"], 3, "feature view 'nope' is not applied"),
    (["features", "show", "nope"], 3, "no applied entity, feature view or feature service 'nope'"),
    (["features", "list", "--kind", "table"], 2, "--kind must be one of"),
    (["features", "materialize", "--start", "yesterday-ish"], 2, "start: 'yesterday-ish' is not a time"),
    (["features", "materialize", "--incremental", "--start", "2026-01-01"], 2, "drop --start"),
])
def test_bad_input_is_one_line_and_an_exit_code(ws: Workspace, run_cli, args: list[str], code: int, message: str) -> None:  # noqa: ANN001
    FeatureStore(workspace=ws).apply()
    result = run_cli(ws, *args)
    assert result.returncode == code, result.stdout + result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_broken_definition_file_fails_apply_with_one_line(ws: Workspace, run_cli) -> None:  # noqa: ANN001
    write_defs(ws.settings.workspace, selection='[["amount", "nope"]]')
    result = run_cli(ws, "features", "apply")
    assert result.returncode == 2
    assert "features/definitions.py" in result.stderr and "has no feature 'nope'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
