"""``conveyor models`` end to end in a subprocess: listings as JSON, the approval
workflow by two users, reports and cards written, one-line errors with exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from registry_support import credit_frame, log_version

from conveyor.core.workspace import Workspace

pytestmark = pytest.mark.both_modes

ROLES = json.dumps({"dana": ["data-scientist"], "val": ["validator"]})


@pytest.fixture
def metadata_url(tmp_path: Path) -> str:
    """SQLite only: the CLI is a thin face, and the service tests cover both backends."""
    return f"sqlite:///{tmp_path / 'meta' / 'conveyor.db'}"


@pytest.fixture
def registered(workspace: Workspace, tmp_path: Path) -> Path:
    """credit-risk (high tier) with version 1 by dana, and a holdout file."""
    from registry_support import as_user

    dana = as_user(workspace, "dana")
    dana.registry.create_registered_model("credit-risk", risk_tier="high", owner_team="credit",
                                         intended_use="rank applications", limitations=None)
    log_version(dana, "credit-risk", credit_frame(seed=1))
    dana.close()
    holdout = tmp_path / "holdout.parquet"
    credit_frame(seed=2).to_parquet(holdout)
    return holdout


def test_workflow_through_the_cli(workspace: Workspace, registered: Path, run_cli, tmp_path: Path) -> None:
    env = {"CONVEYOR_ROLES": ROLES}
    report = tmp_path / "report.html"
    validated = run_cli(workspace, "models", "validate", "credit-risk", "1", "--data", str(registered),
                        "--segment", "grade", "--time-column", "issued", "-o", str(report), user="dana", env=env)
    assert validated.returncode == 0, validated.stderr
    assert "passed → status validated" in validated.stdout
    assert "data:image/png;base64," in report.read_text()

    denied = run_cli(workspace, "models", "alias", "credit-risk", "champion", "1", user="dana", env=env)
    assert denied.returncode == 4
    assert denied.stderr.strip() == (
        "error: version 1 of 'credit-risk' (risk tier high) is validated: it must be approved before it can hold alias 'champion'"
    )
    assert run_cli(workspace, "models", "request-approval", "credit-risk", "1", user="dana", env=env).returncode == 0
    self_approval = run_cli(workspace, "models", "approve", "credit-risk", "1", user="dana", env=env)
    assert self_approval.returncode == 5 and "needs role validator" in self_approval.stderr
    approved = run_cli(workspace, "models", "approve", "credit-risk", "1", user="val", env=env)
    assert approved.returncode == 0, approved.stderr
    assert run_cli(workspace, "models", "alias", "credit-risk", "champion", "1", user="dana", env=env).returncode == 0

    shown = json.loads(run_cli(workspace, "models", "show", "credit-risk", "--json").stdout)
    assert shown["aliases"] == {"champion": 1}
    assert [(v["version"], v["status"]) for v in shown["versions"]] == [(1, "approved")]
    listed = json.loads(run_cli(workspace, "models", "list", "--json").stdout)
    assert [(m["name"], m["risk_tier"]) for m in listed] == [("credit-risk", "high")]
    card = tmp_path / "card.md"
    assert run_cli(workspace, "models", "card", "credit-risk", "1", "-o", str(card)).returncode == 0
    text = card.read_text()
    assert "rank applications" in text and "high" in text and "Not documented" in text
    audit = json.loads(run_cli(workspace, "audit", "list", "--entity", "credit-risk", "--json").stdout)
    assert [e["action"] for e in audit][:3] == ["alias.set", "approval.approved", "approval.requested"]
    assert {e["actor"] for e in audit} == {"dana", "val"}


def test_rollback_and_alias_history(workspace: Workspace, run_cli) -> None:
    for seed in (1, 2):
        log_version(workspace, "churn", credit_frame(rows=200, seed=seed))
    for version in ("1", "2"):
        assert run_cli(workspace, "models", "alias", "churn", "champion", version).returncode == 0
    rolled = run_cli(workspace, "models", "rollback", "churn", "--alias", "champion")
    assert rolled.returncode == 0 and "rolled back to version 1" in rolled.stdout
    history = json.loads(run_cli(workspace, "models", "alias", "churn", "champion", "--json").stdout)
    assert [(h["action"], h["version"]) for h in history] == [("set", 1), ("set", 2), ("rollback", 1)]
    versions = json.loads(run_cli(workspace, "models", "versions", "churn", "--json").stdout)
    assert [(v["version"], v["aliases"]) for v in versions] == [(2, []), (1, ["champion"])]


def test_cli_errors_are_one_line_with_exit_codes(workspace: Workspace, registered: Path, run_cli, tmp_path: Path) -> None:
    cases = [
        (("models", "show", "fraud"), 3, "error: registered model 'fraud' does not exist"),
        (("models", "alias", "credit-risk", "champion", "9"), 3, "error: registered model 'credit-risk' has no version 9"),
        (("models", "reject", "credit-risk", "1", "--reason", "x"), 5,
         "error: user 'dana' lacks permission models.approve: needs role validator "
         "(has data-engineer, data-scientist, ml-engineer)"),
        (("models", "validate", "credit-risk", "1", "--data", str(tmp_path / "none.parquet")), 2,
         f"error: data file '{tmp_path / 'none.parquet'}' does not exist"),
        (("models", "validate", "credit-risk", "1", "--data", str(registered), "--target", "nope"), 2, None),
    ]
    for args, code, message in cases:
        result = run_cli(workspace, *args, user="dana")
        assert result.returncode == code, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        if message:
            assert lines[0] == message
