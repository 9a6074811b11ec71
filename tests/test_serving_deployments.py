"""Deployments served over real HTTP: a canary split converges to its share, shadow answers
are logged but never returned, A/B assignment is sticky, an alias move under load fails no
request, and rollback restores the previous version."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import duckdb
import pytest
from registry_support import CATEGORICAL, NUMERIC, credit_frame, log_version
from serving_support import running_server

from conveyor.core.config import load_settings
from conveyor.core.workspace import Workspace
from conveyor.serving.deployments import DeploymentSpec
from conveyor.serving.deployments.spec import Route

pytestmark = pytest.mark.slow
FAST = {"CONVEYOR_SERVING__POLL_INTERVAL_S": "0.2", "CONVEYOR_SERVING__LOG_FLUSH_INTERVAL_S": "0.2"}


@pytest.fixture
def two_versions(tmp_path: Path) -> Workspace:
    """'credit' v1 is champion, v2 (a different fit) challenger."""
    root = tmp_path / "ws"
    root.mkdir()
    workspace = Workspace(load_settings(root))
    workspace.registry.create_registered_model("credit", risk_tier="low")
    log_version(workspace, "credit", credit_frame())
    log_version(workspace, "credit", credit_frame(seed=1), C=0.05)
    workspace.registry.set_alias("credit", "champion", 1)
    workspace.registry.set_alias("credit", "challenger", 2)
    yield workspace
    workspace.close()


def _row(seed: int = 3) -> dict:
    return credit_frame(rows=1, seed=seed)[NUMERIC + CATEGORICAL].to_dict(orient="records")[0]


def _logged(workspace: Workspace, expected_rows: int) -> list[tuple]:
    """(request_id, version, variant, shadow) of every logged row, once the writer has caught up."""
    root = workspace.settings.prediction_log_url
    deadline = time.monotonic() + 15
    while True:
        files = list(Path(root).glob("**/*.parquet"))
        rows = duckdb.sql(
            f"select request_id, version, variant, shadow from read_parquet('{root}/**/*.parquet', "
            "hive_partitioning=true, union_by_name=true) order by request_id, shadow").fetchall() if files else []
        if len(rows) >= expected_rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_a_canary_split_converges_to_its_configured_share(two_versions: Workspace) -> None:
    two_versions.deployments.create("prod", DeploymentSpec(model="credit", policy="canary", traffic=[
        Route(target="champion", weight=70), Route(target="challenger", weight=30)]))
    requests = 1000
    with running_server(two_versions, deployments=("prod",), settings=FAST, log=False) as client:
        answers = [client.post("/v1/deployments/prod/predict", json={"instances": [_row()]}) for _ in range(requests)]
        by_model = client.post("/v1/models/credit/predict", json={"instances": [_row()]})
    assert all(answer.status_code == 200 for answer in answers)
    counts = Counter((a.json()["variant"], a.json()["version"]) for a in answers)
    assert set(counts) == {("champion", 1), ("challenger", 2)}
    share = counts[("challenger", 2)] / requests
    assert abs(share - 0.30) < 0.05, counts  # 3.4 standard deviations of a binomial share
    assert by_model.json()["deployment"] == "prod", "the model's own route follows its deployment"


def test_shadow_answers_are_logged_but_never_returned(two_versions: Workspace) -> None:
    two_versions.deployments.create("prod", DeploymentSpec(model="credit", policy="shadow",
                                                           traffic=[Route(target="champion")], shadow=["challenger"]))
    with running_server(two_versions, deployments=("prod",), settings=FAST) as client:
        answers = [client.post("/v1/deployments/prod/predict", json={"instances": [_row(seed)]}).json()
                   for seed in range(20)]
        metrics = client.get("/metrics").text
    assert {(a["version"], a["variant"]) for a in answers} == {(1, "champion")}
    assert all("shadow" not in str(a).lower() for a in answers)
    logged = _logged(two_versions, 40)
    ids = sorted(a["request_id"] for a in answers)
    assert [row for row in logged if not row[3]] == [(rid, 1, "champion", False) for rid in ids]
    assert [row for row in logged if row[3]] == [(rid, 2, "challenger", True) for rid in ids]
    assert 'status="shadow",variant="challenger",version="2"' in metrics


def test_ab_assignment_is_sticky_by_key(two_versions: Workspace) -> None:
    two_versions.deployments.create("ab", DeploymentSpec(model="credit", policy="ab", key="applicant", traffic=[
        Route(target="champion", weight=50), Route(target="challenger", weight=50)]))
    with running_server(two_versions, deployments=("ab",), settings=FAST, log=False) as client:
        first = {key: client.post("/v1/deployments/ab/predict",
                                  json={"instances": [{**_row(), "applicant": key}]}).json()["version"]
                 for key in range(40)}
        again = {key: client.post("/v1/deployments/ab/predict",
                                  json={"instances": [{**_row(), "applicant": key}]}).json()["version"]
                 for key in range(40)}
        mixed = client.post("/v1/deployments/ab/predict",
                            json={"instances": [{**_row(), "applicant": key} for key in range(40)]}).json()
        keyless = client.post("/v1/deployments/ab/predict", json={"instances": [_row()]})
    assert first == again and set(first.values()) == {1, 2}
    assert mixed["version"] == [first[key] for key in range(40)], "a request's rows are assigned one by one"
    assert keyless.status_code == 422 and keyless.json()["errors"][0]["field"] == "applicant"


def test_an_alias_move_under_load_fails_no_request_and_rollback_restores_the_version(two_versions: Workspace) -> None:
    two_versions.deployments.create("prod", DeploymentSpec(model="credit"))
    seen: list[tuple[float, int]] = []
    failures: list[str] = []
    stop = threading.Event()

    def load(client) -> None:  # noqa: ANN001
        while not stop.is_set():
            try:
                answer = client.post("/v1/deployments/prod/predict", json={"instances": [_row()]})
            except Exception as exc:  # noqa: BLE001 - every failure is counted
                failures.append(repr(exc))
                continue
            if answer.status_code != 200:
                failures.append(answer.text)
            else:
                seen.append((time.monotonic(), answer.json()["version"]))

    with running_server(two_versions, deployments=("prod",), settings=FAST) as client:
        threads = [threading.Thread(target=load, args=(client,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(1.5)
        moved_at = time.monotonic()
        two_versions.registry.set_alias("credit", "champion", 2)
        time.sleep(2.5)
        rolled_at = time.monotonic()
        two_versions.deployments.rollback("prod")
        time.sleep(2.5)
        stop.set()
        for thread in threads:
            thread.join()
        served = client.get("/v1/deployments").json()
    assert failures == []
    assert len(seen) > 200
    before = {v for t, v in seen if t < moved_at}
    between = [v for t, v in seen if moved_at + 1.5 < t < rolled_at]
    after = [v for t, v in seen if t > rolled_at + 1.5]
    assert before == {1} and set(between) == {2} and set(after) == {1}
    assert served[0]["revision"] == 3 and served[0]["variants"] == {"1": 1}
