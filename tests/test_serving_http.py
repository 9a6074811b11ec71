"""The model server over real HTTP: predictions as in-process, bad input as 422 naming
each field, model description, health, metrics and the OpenAPI schema."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from registry_support import CATEGORICAL, NUMERIC, credit_frame, log_version
from serving_support import running_server

from conveyor.core.config import load_settings
from conveyor.core.workspace import Workspace

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """A workspace whose 'credit' champion is served for the whole module."""
    root: Path = tmp_path_factory.mktemp("serving") / "ws"
    root.mkdir()
    workspace = Workspace(load_settings(root))
    workspace.registry.create_registered_model("credit", risk_tier="low")
    log_version(workspace, "credit", credit_frame())
    workspace.registry.set_alias("credit", "champion", 1)
    with running_server(workspace, "credit@champion") as client:
        yield workspace, client
    workspace.close()


def _rows(count: int = 5):  # noqa: ANN202
    return credit_frame(rows=count, seed=9)[NUMERIC + CATEGORICAL]


def test_predictions_over_http_equal_in_process_predictions(served) -> None:  # noqa: ANN001
    workspace, client = served
    rows = _rows(20)
    model = workspace.registry.load_model("models:/credit@champion")
    records = client.post("/v1/models/credit/predict", json={"instances": rows.to_dict(orient="records")})
    columnar = client.post("/v1/models/credit/predict", json={"columns": list(rows.columns), "data": rows.values.tolist()})
    for answer in (records, columnar):
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert np.allclose(body["probabilities"], model.predict_proba(rows), rtol=0, atol=1e-12)
        assert body["predictions"] == model.predict(rows).tolist()
        assert (body["model"], body["version"], len(body["request_id"])) == ("credit", 1, 32)
    assert records.json()["request_id"] != columnar.json()["request_id"]


def test_bad_input_is_a_422_naming_every_offending_field(served) -> None:  # noqa: ANN001
    _, client = served
    row = _rows(1).to_dict(orient="records")[0]
    row.update(income="a lot", grade="Z")
    del row["age"]
    answer = client.post("/v1/models/credit/predict", json={"instances": [row]})
    assert answer.status_code == 422
    fields = {error["field"]: error["message"] for error in answer.json()["errors"]}
    assert set(fields) == {"income", "grade", "age"}
    assert fields["age"] == "is missing"
    assert "'Z'" in fields["grade"]


@pytest.mark.parametrize(("body", "field"), [
    (b"{not json", "body"),
    (b"[1, 2]", "body"),
    (b'{"instances": []}', "instances"),
    (b'{"columns": ["income"], "data": [[1, 2]]}', "data[0]"),
])
def test_malformed_bodies_are_422_never_500(served, body: bytes, field: str) -> None:  # noqa: ANN001
    _, client = served
    answer = client.post("/v1/models/credit/predict", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == field


def test_unknown_model_is_404(served) -> None:  # noqa: ANN001
    _, client = served
    answer = client.post("/v1/models/churn/predict", json={"instances": [{"x": 1}]})
    assert answer.status_code == 404 and answer.json()["field"] == "name"


def test_description_health_metrics_and_openapi(served) -> None:  # noqa: ANN001
    _, client = served
    described = client.get("/v1/models/credit").json()
    assert described["version"] == 1
    assert [c["name"] for c in described["signature"]["inputs"]] == NUMERIC + CATEGORICAL
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready", "models": {"credit": 1}}
    client.post("/v1/models/credit/predict", json={"instances": _rows(3).to_dict(orient="records")})
    metrics = client.get("/metrics").text
    served_count = next(line for line in metrics.splitlines()
                        if line.startswith('conveyor_requests_total{model="credit",status="200",variant="champion",version="1"}'))
    assert float(served_count.split()[-1]) >= 1
    assert 'conveyor_request_seconds_bucket{le="0.005",model="credit",version="1"}' in metrics
    assert "conveyor_prediction_log_dropped_rows_total 0.0" in metrics
    schema = client.get("/openapi.json").json()
    assert {"/v1/models/{name}/predict", "/v1/deployments/{name}/predict", "/v1/feedback"} <= set(schema["paths"])


def test_serving_a_model_that_does_not_exist_is_one_line(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    root = tmp_path / "ws"
    root.mkdir()
    workspace = Workspace(load_settings(root))
    result = run_cli(workspace, "serve", "nosuch@champion", "--port", "1")
    assert result.returncode == 3
    assert result.stderr.strip().startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    bad = run_cli(workspace, "serve", "credit@@x")
    assert bad.returncode == 2 and "expected NAME@ALIAS, NAME/VERSION or NAME" in bad.stderr


def test_feedback_is_recorded_by_request_id_and_bad_feedback_names_the_field(served) -> None:  # noqa: ANN001
    from conveyor.serving.feedback import FeedbackService

    workspace, client = served
    request_id = client.post("/v1/models/credit/predict",
                             json={"instances": _rows(2).to_dict(orient="records")}).json()["request_id"]
    recorded = client.post("/v1/feedback", json={"feedback": [{"request_id": request_id, "row": 0, "label": 1},
                                                              {"request_id": request_id, "row": 1, "label": 0}]})
    assert recorded.status_code == 200 and recorded.json() == {"recorded": 2}
    stored = FeedbackService(workspace.metadata).get(request_id)
    assert sorted((f.row, f.label) for f in stored) == [(0, 1), (1, 0)]
    bad = client.post("/v1/feedback", json={"feedback": [{"request_id": request_id, "label": 1}, {"request_id": "x"}]})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} >= {"feedback[1].request_id"}
