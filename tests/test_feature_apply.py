"""Definitions as code: plan and apply record versions, check the data, flag breaking changes."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from features_support import feature_store, write_parquet
from registry_support import credit_frame, log_version
from server_support import serve

from conveyor.core.config import load_settings
from conveyor.core.workspace import Workspace
from conveyor.errors import Conflict, ValidationError
from conveyor.features import (
    Entity,
    Feature,
    FeatureService,
    FeatureStore,
    FeatureView,
    FileSource,
    PostgresSource,
    SqlSource,
)
from conveyor.features.remote import RemoteFeatureStore

pytestmark = pytest.mark.both_modes

DEFS = """\
from datetime import timedelta
from conveyor.features import Entity, Feature, FeatureService, FeatureView, FileSource

customer = Entity("customer", ["customer_id"])
stats = FeatureView("customer_stats", [customer], FileSource("data/stats.parquet"), "event_timestamp",
                    [Feature("amount", "float64"), Feature("orders", "int64")], ttl=timedelta(days={ttl}))
credit = FeatureService("credit_v1", [stats{selection}])
"""


def stats_frame(rows: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return pd.DataFrame({
        "customer_id": rng.integers(0, 20, rows),
        "event_timestamp": pd.Timestamp("2026-01-01") + pd.to_timedelta(rng.integers(0, 90 * 86400, rows), "s"),
        "amount": rng.random(rows),
        "orders": rng.integers(0, 9, rows),
        "segment": rng.choice(["a", "b"], rows),
    })


def write_defs(root: Path, ttl: int = 30, selection: str = "") -> None:
    (root / "features").mkdir(exist_ok=True)
    (root / "features" / "definitions.py").write_text(DEFS.format(ttl=ttl, selection=selection))


@pytest.fixture
def served(tmp_path: Path, metadata_url: str) -> Workspace:
    """The store's workspace, in-process: in remote mode, the one the server serves."""
    root = tmp_path / "ws"
    root.mkdir()
    ws = Workspace(load_settings(root, metadata={"url": metadata_url}))
    yield ws
    ws.close()


@pytest.fixture
def store(served: Workspace, mode: str) -> FeatureStore:
    root = served.settings.workspace
    write_parquet(root / "data" / "stats.parquet", stats_frame())
    write_defs(root)
    with feature_store(served, mode) as store:
        yield store


def test_apply_records_a_version_per_changed_object_and_audits_it(store: FeatureStore, served: Workspace) -> None:
    first = store.apply()
    assert [(c.action, c.kind, c.name, c.version) for c in first.changes] == [
        ("create", "entity", "customer", 1), ("create", "feature_view", "customer_stats", 1),
        ("create", "feature_service", "credit_v1", 1),
    ]
    assert store.plan().changes == []
    write_defs(store.settings.workspace, ttl=7)
    second = store.apply()
    assert [(c.action, c.name, c.version) for c in second.changes] == [("update", "customer_stats", 2)]
    assert second.changes[0].details == ["~ ttl_seconds: 2592000.0 -> 604800.0"]
    assert store.get_feature_view("customer_stats").ttl == timedelta(days=7)
    assert store.get_feature_view("customer_stats", version=1).ttl == timedelta(days=30)
    actions = [(e.action, e.entity) for e in served.audit.list_entries(newest_first=False)]
    assert actions[-1] == ("features.update", "feature_view/customer_stats")
    assert served.audit.verify().ok


def test_a_definition_removed_from_the_folder_is_planned_as_a_delete(store: FeatureStore) -> None:
    store.apply()
    source = (store.settings.workspace / "features" / "definitions.py")
    source.write_text(source.read_text().replace('credit = FeatureService("credit_v1", [stats])\n', ""))
    plan = store.plan()
    assert [(c.action, c.name, c.version) for c in plan.changes] == [("delete", "credit_v1", 2)]
    store.apply()
    assert [obj.name for _, obj in store.list_definitions("feature_service")] == []


def test_a_partial_list_only_adds_or_updates(store: FeatureStore) -> None:
    store.apply()
    extra = Entity("merchant", ["merchant_id"])
    plan = store.apply([extra])
    assert [(c.action, c.name) for c in plan.changes] == [("create", "merchant")]
    assert {obj.name for _, obj in store.list_definitions()} == {"customer", "customer_stats", "credit_v1", "merchant"}


def test_a_change_breaking_a_service_a_model_uses_is_flagged_and_refused(store: FeatureStore) -> None:
    store.apply()
    version = log_version(store.workspace, "credit-risk", credit_frame())
    registry = store.workspace.registry
    registry.create_model_version("credit-risk", version.source, feature_service="credit_v1")
    write_defs(store.settings.workspace, selection='[["amount"]]')
    plan = store.plan()
    assert plan.breaking == ["feature service 'credit_v1', used by credit-risk v2: loses customer_stats:orders"]
    with pytest.raises(Conflict, match="loses customer_stats:orders"):
        store.apply()
    assert store.get_feature_service("credit_v1").refs == ["customer_stats:amount", "customer_stats:orders"]
    store.apply(allow_breaking=True)
    assert store.get_feature_service("credit_v1").refs == ["customer_stats:amount"]


def _view(**changes: object) -> FeatureView:
    fields: dict = dict(name="customer_stats", entities=[Entity("customer", ["customer_id"])],
                        source=FileSource("data/stats.parquet"), timestamp_field="event_timestamp",
                        features=[Feature("amount", "float64")])
    fields.update(changes)
    return FeatureView(**fields)


@pytest.mark.parametrize(("changes", "field", "message"), [
    ({"features": [Feature("nope", "float64")]}, "customer_stats:nope", "feature 'nope' is not a column"),
    ({"features": [Feature("amount", "int64")]}, "customer_stats:amount", "declared int64 but the column is DOUBLE"),
    ({"features": [Feature("segment", "float64")]}, "customer_stats:segment", "declared float64 but the column is VARCHAR"),
    ({"timestamp_field": "ts"}, "customer_stats.timestamp_field", "timestamp_field 'ts' is not a column"),
    ({"timestamp_field": "amount"}, "customer_stats.timestamp_field", "is DOUBLE, not a timestamp"),
    ({"entities": [Entity("customer", ["client_id"])]}, "customer_stats.client_id", "join key 'client_id'"),
    ({"source": FileSource("data/missing/*.parquet")}, "customer_stats.source", "source cannot be read"),
    ({"transform": "SELECT nope FROM source"}, "customer_stats.transform", "transform fails"),
])
def test_apply_checks_each_view_against_its_data(store: FeatureStore, changes: dict, field: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        store.apply([_view(**changes)])
    assert caught.value.field == field
    assert store.list_definitions() == []


def test_references_between_objects_are_checked(store: FeatureStore) -> None:
    view = _view()
    with pytest.raises(ValidationError, match="has no feature 'orders'") as caught:
        store.apply([view, FeatureService("svc", [FeatureView.__getitem__(view, ["amount"]), _selection("orders")])])
    assert caught.value.field == "customer_stats:orders"
    with pytest.raises(ValidationError, match="unknown entity 'shop'"):
        store.apply([_view(entities=["shop"])])


def _selection(name: str):  # noqa: ANN202
    from conveyor.features import FeatureSelection

    return FeatureSelection("customer_stats", (name,))


def test_two_definitions_with_one_name_are_refused(store: FeatureStore) -> None:
    other = store.settings.workspace / "features" / "more.py"
    other.write_text(textwrap.dedent("""\
        from conveyor.features import Entity
        customer = Entity("customer", ["client_id"])
    """))
    with pytest.raises(ValidationError, match="entity 'customer' is defined twice") as caught:
        store.plan()
    assert caught.value.field == "entity.name"


def test_a_definition_file_that_fails_is_one_line_naming_the_file(store: FeatureStore) -> None:
    (store.settings.workspace / "features" / "broken.py").write_text("x = 1\nraise RuntimeError('boom')\n")
    with pytest.raises(ValidationError, match=r"features/broken.py line 2: RuntimeError: boom"):
        store.plan()


@pytest.mark.parametrize(("build", "field"), [
    (lambda: Feature("amount", "decimal"), "feature.dtype"),
    (lambda: Feature("bad name", "float64"), "feature.name"),
    (lambda: Entity("customer", []), "entity.join_keys"),
    (lambda: _view(ttl=timedelta(days=-1)), "feature_view.ttl"),
    (lambda: _view(features=[]), "feature_view.features"),
    (lambda: _view(features=[Feature("a", "int64"), Feature("a", "int64")]), "feature_view.features"),
    (lambda: FileSource("x.json", format="json"), "source.format"),
    (lambda: PostgresSource(), "source.table"),
    (lambda: FeatureService("svc", []), "feature_service.features"),
])
def test_definitions_check_their_own_fields(build, field: str) -> None:  # noqa: ANN001
    with pytest.raises(ValidationError) as caught:
        build()
    assert caught.value.field == field


@pytest.mark.postgres
def test_a_postgres_table_is_a_source(tmp_path: Path, postgres_url: str, mode: str) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE payments (customer_id bigint, paid_at timestamptz, amount double precision)"))
        conn.execute(sa.text("INSERT INTO payments VALUES (1, '2026-01-01T00:00:00Z', 5.0), (1, '2026-02-01T00:00:00Z', 7.0)"))
    engine.dispose()
    customer = Entity("customer", ["customer_id"])
    view = FeatureView("payments", [customer], PostgresSource(table="payments"), "paid_at",
                       [Feature("amount", "float64")], ttl=timedelta(days=40))
    with feature_store(tmp_path, mode, features={"postgres_url": postgres_url}) as store:
        store.apply([customer, view])
        entity = pd.DataFrame({"customer_id": [1, 1, 1],
                               "event_timestamp": pd.to_datetime(["2026-01-15", "2026-02-01", "2026-03-20"])})
        result = store.get_historical_features(entity, ["payments:amount"]).to_df()
        assert result["amount"].tolist()[:2] == [5.0, 7.0] and pd.isna(result["amount"].iloc[2])
        with pytest.raises(ValidationError, match="declared int64 but the column is DOUBLE"):
            store.apply([FeatureView("payments", [customer], PostgresSource(table="payments"), "paid_at",
                                     [Feature("amount", "int64")])])


def test_sql_and_csv_sources_serve_features(tmp_path: Path, mode: str) -> None:
    orders = pd.DataFrame({"customer_id": [1, 1, 2], "amount": [10.0, 30.0, 5.0],
                           "event_timestamp": pd.to_datetime(["2026-01-01", "2026-01-10", "2026-01-05"])})
    write_parquet(tmp_path / "raw" / "orders.parquet", orders)
    (tmp_path / "csv").mkdir()
    orders.to_csv(tmp_path / "csv" / "part-1.csv", index=False)
    customer = Entity("customer", ["customer_id"])
    totals = FeatureView(
        "totals", [customer], SqlSource(
            "SELECT customer_id, event_timestamp, sum(amount) OVER (PARTITION BY customer_id ORDER BY event_timestamp) "
            "AS running_total FROM read_parquet('raw/orders.parquet')"),
        "event_timestamp", [Feature("running_total", "float64")])
    from_csv = FeatureView("csv_orders", [customer], FileSource("csv/*.csv"), "event_timestamp", [Feature("amount", "float64")])
    with feature_store(tmp_path, mode) as store:
        store.apply([customer, totals, from_csv])
        entity = pd.DataFrame({"customer_id": [1, 1, 2], "event_timestamp": pd.to_datetime(["2026-01-02", "2026-01-11", "2026-01-04"])})
        result = store.get_historical_features(entity, ["totals:running_total", "csv_orders:amount"]).to_df()
    assert result["running_total"].tolist()[:2] == [10.0, 40.0] and pd.isna(result["running_total"].iloc[2])
    assert result["amount"].tolist()[:2] == [10.0, 30.0]


def test_a_workspace_that_names_a_server_gets_the_feature_store_over_http(
    served: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_parquet(served.settings.workspace / "data" / "stats.parquet", stats_frame())
    client = tmp_path / "client"
    client.mkdir()
    write_defs(client)  # read here, on the client; the server reads the data in its own folder
    assert type(FeatureStore(workspace=served)) is FeatureStore
    with serve(served, auth=False) as url:
        monkeypatch.setenv("CONVEYOR_SERVER", url)
        store = FeatureStore(client)
        try:
            assert isinstance(store, RemoteFeatureStore)
            assert [c.name for c in store.apply().changes] == ["customer", "customer_stats", "credit_v1"]
        finally:
            store.workspace.close()
    assert FeatureStore(workspace=served).get_feature_service("credit_v1").refs == [
        "customer_stats:amount", "customer_stats:orders"]
