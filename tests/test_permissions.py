"""The permission matrix: documented as it is, enforced by every service, first of all."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from features_support import write_parquet

from conveyor.automation.service import AutomationService
from conveyor.core.workspace import Workspace
from conveyor.errors import NotFound, PermissionDenied
from conveyor.features import Entity, Feature, FeatureStore, FeatureView, FileSource
from conveyor.governance import Actor, AuditLog, acting_as
from conveyor.governance.permissions import (
    MATRIX,
    ROLES,
    Action,
    action_of,
    render_markdown,
)
from conveyor.monitoring.alerts import AlertService
from conveyor.monitoring.business import BusinessMetrics
from conveyor.monitoring.results import ResultStore
from conveyor.monitoring.service import MonitoringService
from conveyor.pipelines.service import PipelineService
from conveyor.registry.service import RegistryService
from conveyor.serving.deployments import DeploymentSpec
from conveyor.serving.deployments.service import DeploymentService
from conveyor.tracking.service import TrackingService

DOC = Path(__file__).resolve().parents[1] / "docs" / "permissions.md"

UNGUARDED = {
    TrackingService: {"close", "flush", "reap_dead_runs", "count_metric_points", "count_runs"},
    RegistryService: {"check_may_hold"},
    FeatureStore: {"close", "refresh"},
    DeploymentService: set(),
    MonitoringService: set(),
    AlertService: set(),
    ResultStore: set(),
    BusinessMetrics: set(),
    AutomationService: set(),
    PipelineService: {"load"},
    AuditLog: {"transaction"},
}
"""Public methods that need no permission: housekeeping, or parsing that reads nothing stored."""


def as_role(*roles: str) -> Actor:
    return Actor(name=f"user-{'-'.join(roles) or 'nobody'}", roles=frozenset(roles))


def test_the_permissions_doc_shows_the_current_matrix() -> None:
    text = DOC.read_text()
    shown = re.search(r"<!-- matrix -->\n(.*)<!-- /matrix -->", text, re.S)
    assert shown is not None, "docs/permissions.md keeps the matrix between <!-- matrix --> markers"
    assert shown.group(1) == render_markdown(), "regenerate the table with render_markdown()"


@pytest.mark.parametrize("role", ROLES)
def test_each_role_may_take_exactly_the_actions_the_matrix_gives_it(role: str) -> None:
    actor = as_role(role)
    for action in Action:
        if role in MATRIX[action]:
            actor.require(action)
            continue
        with pytest.raises(PermissionDenied, match=rf"lacks permission {re.escape(action.value)}: needs role") as error:
            actor.require(action)
        assert error.value.field == "user"


def test_a_user_without_roles_may_do_nothing() -> None:
    for action in Action:
        with pytest.raises(PermissionDenied, match=r"\(has none\)"):
            as_role().require(action)


@pytest.mark.parametrize("service", list(UNGUARDED), ids=lambda cls: cls.__name__)
def test_every_public_service_method_names_its_permission(service: type) -> None:
    unguarded = [
        name for name, member in inspect.getmembers(service, inspect.isfunction)
        if not name.startswith("_") and action_of(member) is None and name not in UNGUARDED[service]
    ]
    assert unguarded == [], f"{service.__name__} methods without @requires"


def test_a_viewer_reads_a_run_but_cannot_create_one(workspace: Workspace) -> None:
    run = workspace.tracking.create_run("credit", name="baseline")
    workspace.tracking.end_run(run.id)
    with acting_as(as_role("viewer")):
        assert workspace.tracking.get_run(run.id).info.name == "baseline"
        with pytest.raises(PermissionDenied, match="lacks permission experiments.write") as error:
            workspace.tracking.create_run("credit")
        with pytest.raises(PermissionDenied, match="experiments.write"):
            workspace.tracking.log_metrics(run.id, {"auc": 0.9})
    assert error.value.field == "user"
    assert workspace.tracking.count_runs() == 1


def test_the_check_comes_before_the_input_is_looked_at(workspace: Workspace) -> None:
    with acting_as(as_role("viewer")):
        with pytest.raises(PermissionDenied, match="experiments.write"):
            workspace.tracking.log_table("no-such-run", "not a frame", "x")  # type: ignore[arg-type]
        with pytest.raises(PermissionDenied, match="models.write"):
            workspace.registry.create_model_version("bad name!", "nonsense")


def test_a_data_engineer_applies_feature_definitions_a_viewer_cannot(workspace: Workspace) -> None:
    rng = np.random.default_rng(3)
    write_parquet(workspace.settings.workspace / "data" / "stats.parquet", pd.DataFrame({
        "customer_id": rng.integers(0, 5, 50),
        "event_timestamp": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 86400 * 30, 50), "s"),
        "amount": rng.random(50),
    }))
    customer = Entity("customer", ["customer_id"])
    stats = FeatureView("customer_stats", [customer], FileSource("data/stats.parquet"), "event_timestamp",
                        [Feature("amount", "float64")])
    store = FeatureStore(workspace=workspace)
    try:
        with acting_as(as_role("viewer")), pytest.raises(PermissionDenied, match="features.apply"):
            store.apply([customer, stats])
        with acting_as(as_role("data-engineer")):
            plan = store.apply([customer, stats])
            assert {change.name for change in plan.changes} == {"customer", "customer_stats"}
            assert store.get_feature_view("customer_stats").name == "customer_stats"
        with acting_as(as_role("data-scientist")), pytest.raises(PermissionDenied, match="features.materialize"):
            store.materialize()
    finally:
        store.close()


@pytest.mark.parametrize("role", [role for role in ROLES if role != "validator"])
def test_only_a_validator_approves(workspace: Workspace, role: str) -> None:
    with acting_as(as_role(role)):
        with pytest.raises(PermissionDenied, match="lacks permission models.approve: needs role validator"):
            workspace.registry.approve("credit-risk", 1)
        with pytest.raises(PermissionDenied, match="models.approve"):
            workspace.registry.reject("credit-risk", 1, "no")
    with acting_as(as_role("validator")), pytest.raises(NotFound, match="registered model 'credit-risk'"):
        workspace.registry.approve("credit-risk", 1)


def test_a_data_scientist_cannot_change_a_deployment(workspace: Workspace) -> None:
    spec = DeploymentSpec(model="credit")
    with acting_as(as_role("data-scientist")):
        assert workspace.deployments.list() == []
        with pytest.raises(PermissionDenied, match="lacks permission deployments.write: needs role platform-admin or "
                                                   "ml-engineer"):
            workspace.deployments.create("prod", spec)
        with pytest.raises(PermissionDenied, match="deployments.write"):
            workspace.deployments.rollback("prod")
    with acting_as(as_role("ml-engineer")), pytest.raises(NotFound, match="credit"):
        workspace.deployments.create("prod", spec)


def test_reading_the_audit_log_and_automation_needs_a_role(workspace: Workspace) -> None:
    with acting_as(as_role("viewer")):
        assert workspace.audit.verify().ok
        assert workspace.automation.list_policies() == []
        with pytest.raises(PermissionDenied, match="automation.write"):
            workspace.automation.delete_policy("nightly")
    with acting_as(as_role()):
        with pytest.raises(PermissionDenied, match="audit.read"):
            workspace.audit.list_entries()
        with pytest.raises(PermissionDenied, match="monitoring.read"):
            workspace.monitoring.alerts.list_rules()
