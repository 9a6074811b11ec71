"""Online features over real HTTP: a request that sends only entity keys is answered with
features from the online store, values the store lacks are reported and named, and the
fetched columns reach the prediction log."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from serving_support import featured_workspace, running_server

from conveyor.core.workspace import Workspace
from conveyor.features import FeatureStore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, object]]:
    """'risk' (trained on feature service credit_v1) served, its features materialised online."""
    workspace = featured_workspace(tmp_path_factory.mktemp("features") / "ws")
    with FeatureStore(workspace=workspace) as store:
        store.materialize()
    with running_server(workspace, "risk@champion",
                        settings={"CONVEYOR_SERVING__LOG_FLUSH_INTERVAL_S": "0.2"}) as client:
        yield workspace, client
    workspace.close()


def test_entity_keys_alone_are_enriched_from_the_online_store(served) -> None:  # noqa: ANN001
    workspace, client = served
    customers = [3, 17, 38]
    answer = client.post("/v1/models/risk/predict", json={"instances": [{"customer_id": c} for c in customers]})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["features"] == {"service_columns": ["amount", "orders"], "missing": {}, "stale": {}}
    with FeatureStore(workspace=workspace) as store:
        online = store.get_online_features("credit_v1", [{"customer_id": c} for c in customers]).to_df()
    expected = workspace.registry.load_model("models:/risk@champion").predict_proba(online[["amount", "orders"]])
    np.testing.assert_allclose(body["probabilities"], expected, rtol=0, atol=1e-12)
    described = client.get("/v1/models/risk").json()
    assert described["feature_service"] == "credit_v1"


def test_request_time_values_are_kept_and_absent_entities_are_named(served) -> None:  # noqa: ANN001
    workspace, client = served
    sent = client.post("/v1/models/risk/predict", json={"instances": [{"customer_id": 3, "amount": 5000.0}]}).json()
    model = workspace.registry.load_model("models:/risk@champion")
    with FeatureStore(workspace=workspace) as store:
        orders = store.get_online_features("credit_v1", [{"customer_id": 3}]).to_dict()["orders"][0]
    expected = model.predict_proba(pd.DataFrame({"amount": [5000.0], "orders": [orders]}))
    np.testing.assert_allclose(sent["probabilities"], expected, rtol=0, atol=1e-12)
    assert sent["features"]["service_columns"] == ["orders"]
    unknown = client.post("/v1/models/risk/predict", json={"instances": [{"customer_id": 3}, {"customer_id": 999}]})
    assert unknown.status_code == 422
    errors = {e["field"]: e["message"] for e in unknown.json()["errors"]}
    assert errors["amount"].endswith("no value in the online store for row(s) [1]")
    keyless = client.post("/v1/models/risk/predict", json={"instances": [{"orders": 2}]})
    assert keyless.status_code == 422 and keyless.json()["errors"][0]["field"] == "customer_id"


def test_fetched_features_reach_the_prediction_log(served) -> None:  # noqa: ANN001
    workspace, client = served
    request_id = client.post("/v1/models/risk/predict", json={"instances": [{"customer_id": 21}]}).json()["request_id"]
    root = Path(workspace.settings.prediction_log_url)
    deadline = time.monotonic() + 15
    rows: list = []
    while not rows and time.monotonic() < deadline:
        time.sleep(0.2)
        if list(root.glob("**/*.parquet")):
            rows = duckdb.sql(f"select \"input.customer_id\", \"feature.amount\", \"feature.orders\" from read_parquet("
                              f"'{root}/**/*.parquet', union_by_name=true) where request_id = '{request_id}'").fetchall()
    with FeatureStore(workspace=workspace) as store:
        online = store.get_online_features("credit_v1", [{"customer_id": 21}]).to_dict()
    assert rows == [(21, online["amount"][0], online["orders"][0])]
