"""Deployments as stored: policies checked before they are stored, alias moves recorded as
revisions, rollback restoring exactly what served before, and the CLI's one-line errors."""

from __future__ import annotations

import pytest
from registry_support import credit_frame, log_version

from conveyor.core.workspace import Workspace
from conveyor.errors import Conflict, NotFound, ValidationError
from conveyor.serving.deployments import DeploymentSpec
from conveyor.serving.deployments.spec import Route, parse_traffic


@pytest.fixture
def two_versions(workspace: Workspace) -> Workspace:
    """'credit' v1 is champion, v2 challenger."""
    workspace.registry.create_registered_model("credit", risk_tier="low")
    log_version(workspace, "credit", credit_frame())
    log_version(workspace, "credit", credit_frame(seed=1), C=0.05)
    workspace.registry.set_alias("credit", "champion", 1)
    workspace.registry.set_alias("credit", "challenger", 2)
    return workspace


def _canary(champion: float = 90, challenger: float = 10) -> DeploymentSpec:
    return DeploymentSpec(model="credit", policy="canary",
                          traffic=[Route(target="champion", weight=champion), Route(target="challenger", weight=challenger)])


def test_a_deployment_resolves_its_targets_and_records_who_created_it(two_versions: Workspace) -> None:
    created = two_versions.deployments.create("credit-prod", _canary())
    assert (created.revision, created.resolved, created.versions()) == (1, {"champion": 1, "challenger": 2}, [1, 2])
    assert created.actor == two_versions.actor.name
    assert two_versions.deployments.get("credit-prod") == created
    entries = two_versions.audit.list_entries(entity="deployment:credit-prod")
    assert [entry.action for entry in entries] == ["deployment.create"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"policy": "canary", "traffic": [Route(target="champion", weight=90), Route(target="challenger", weight=20)]},
     "add up to 110"),
    ({"policy": "canary", "traffic": [Route(target="champion")]}, "two targets or more"),
    ({"policy": "shadow", "traffic": [Route(target="champion")]}, "needs at least one"),
    ({"policy": "single", "shadow": ["challenger"]}, "shadow targets go with policy shadow"),
    ({"policy": "ab", "traffic": [Route(target="champion", weight=50), Route(target="v2", weight=50)]},
     "key field"),
    ({"policy": "single", "traffic": [Route(target="champion")], "key": "id"}, "only ab takes one"),
])
def test_a_spec_that_breaks_its_policy_is_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DeploymentSpec(model="credit", **kwargs)


def test_traffic_items_parse_with_the_rest_shared_and_bad_weights_named() -> None:
    assert parse_traffic(["champion=90,challenger"]) == [Route(target="champion", weight=90),
                                                         Route(target="challenger", weight=10)]
    assert [r.target for r in parse_traffic(["v3=50", "7=50"])] == ["v3", "7"]
    with pytest.raises(ValidationError, match="weight must be a number") as caught:
        parse_traffic(["champion=lots"])
    assert caught.value.field == "traffic"


def test_an_unknown_alias_or_model_is_refused_naming_the_option(two_versions: Workspace) -> None:
    with pytest.raises(NotFound) as caught:
        two_versions.deployments.create("x", DeploymentSpec(model="credit", traffic=[Route(target="staging")]))
    assert caught.value.field == "traffic"
    with pytest.raises(NotFound) as caught:
        two_versions.deployments.create("x", DeploymentSpec(model="nope"))
    assert caught.value.field == "model"
    with pytest.raises(Conflict):
        two_versions.deployments.create("dup", DeploymentSpec(model="credit"))
        two_versions.deployments.create("dup", DeploymentSpec(model="credit"))


def test_an_alias_move_becomes_a_revision_once(two_versions: Workspace) -> None:
    service = two_versions.deployments
    service.create("prod", DeploymentSpec(model="credit"))
    assert service.sync("prod").revision == 1
    two_versions.registry.set_alias("credit", "champion", 2)
    moved = service.sync("prod")
    assert (moved.revision, moved.resolved, moved.reason) == (2, {"champion": 2}, "alias moved: champion 1→2")
    assert service.sync("prod").revision == 2
    assert [d.revision for d in service.history("prod")] == [1, 2]


def test_rollback_pins_what_the_previous_revision_served(two_versions: Workspace) -> None:
    service = two_versions.deployments
    service.create("prod", DeploymentSpec(model="credit"))
    two_versions.registry.set_alias("credit", "champion", 2)
    back = service.rollback("prod")
    assert (back.revision, back.versions(), back.spec.traffic[0].target) == (3, [1], "1")
    assert back.reason == "rolled back to revision 1"
    two_versions.registry.set_alias("credit", "champion", 1)
    two_versions.registry.set_alias("credit", "champion", 2)
    assert service.sync("prod").versions() == [1], "a pinned rollback ignores later alias moves"
    assert service.rollback("prod").versions() == [2]


def test_rollback_without_history_is_a_conflict(two_versions: Workspace) -> None:
    two_versions.deployments.create("prod", DeploymentSpec(model="credit"))
    with pytest.raises(Conflict, match="no earlier revision"):
        two_versions.deployments.rollback("prod")


def test_the_cli_creates_updates_shows_and_refuses_in_one_line(two_versions: Workspace, run_cli) -> None:  # noqa: ANN001
    created = run_cli(two_versions, "deploy", "create", "prod", "--model", "credit", "--policy", "canary",
                      "--traffic", "champion=90,challenger=10")
    assert created.returncode == 0, created.stderr
    assert "champion=90% (v1), challenger=10% (v2)" in created.stdout
    bad = run_cli(two_versions, "deploy", "update", "prod", "--traffic", "champion=90,challenger=20")
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["error: --traffic: the weights add up to 110, not 100"]
    shadow = run_cli(two_versions, "deploy", "update", "prod", "--policy", "shadow", "--traffic", "champion",
                     "--shadow", "challenger")
    assert shadow.returncode == 0, shadow.stderr
    shown = run_cli(two_versions, "deploy", "show", "prod", "--json")
    import json
    revisions = json.loads(shown.stdout)
    assert [(r["revision"], r["spec"]["policy"]) for r in revisions] == [(1, "canary"), (2, "shadow")]
    missing = run_cli(two_versions, "deploy", "rollback", "nope")
    assert missing.returncode != 0 and missing.stderr.strip().count("\n") == 0
