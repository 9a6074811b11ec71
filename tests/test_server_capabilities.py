"""The capability routers over a real server: deployments, monitoring and alert rules,
policies and jobs, the audit log and pipelines, called through HTTP on a seeded workspace,
and the remote clients the CLI uses against them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
import yaml
from automation_support import policy
from monitoring_support import MODEL, applicants, log_predictions, trained_workspace
from pipeline_support import write_pipeline
from registry_support import as_user
from server_support import remote_of, serve

from conveyor.core.workspace import Workspace
from conveyor.errors import NotFound
from conveyor.monitoring.alerts import parse_rule

DAY = 86_400
MASK = "**********"


@pytest.fixture
def served(workspace: Workspace) -> Iterator[tuple[Workspace, httpx.Client, str]]:
    """The workspace behind a real server without authentication; a client of its ``/api/v1``."""
    with serve(workspace, auth=False) as url, httpx.Client(base_url=f"{url}/api/v1", timeout=120) as client:
        yield workspace, client, url


def error_of(response: httpx.Response, status: int) -> dict:
    """The error body of a response that must have ``status``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"code", "message", "field"}
    return error


# deployments -------------------------------------------------------------------------------

def test_a_deployment_created_over_http_reads_back_with_its_revisions(served, tmp_path: Path) -> None:  # noqa: ANN001
    workspace, client, url = served
    trained_workspace(workspace, rows=600)
    created = client.post("/deployments", json={"name": "credit-prod", "spec": {"model": MODEL}})
    assert created.status_code == 201, created.text
    assert (created.json()["revision"], created.json()["resolved"]) == (1, {"champion": 1})
    read = client.get("/deployments/credit-prod").json()
    assert read == created.json() and read["actor"] == workspace.default_actor.name
    pinned = client.put("/deployments/credit-prod", json={"spec": {"model": MODEL, "traffic": [{"target": "v1"}]}})
    assert pinned.status_code == 200 and pinned.json()["revision"] == 2
    revisions = client.get("/deployments/credit-prod/revisions").json()
    assert [(r["revision"], r["reason"], [t["target"] for t in r["spec"]["traffic"]]) for r in revisions] == [
        (1, "created", ["champion"]), (2, "updated", ["v1"])]
    assert [d["name"] for d in client.get("/deployments").json()] == ["credit-prod"]

    duplicate = error_of(client.post("/deployments", json={"name": "credit-prod", "spec": {"model": MODEL}}), 409)
    assert duplicate["field"] == "name"
    zero = error_of(client.put("/deployments/credit-prod", json={"spec": {"model": MODEL, "traffic": [
        {"target": "champion", "weight": 0}]}}), 422)
    assert zero["field"] == "spec.traffic.0.weight" and "greater than 0" in zero["message"]
    missing = error_of(client.get("/deployments/credit-dev"), 404)
    assert (missing["code"], missing["field"]) == ("not_found", "name") and "credit-dev" in missing["message"]

    remote = remote_of(url, tmp_path / "client")
    try:
        assert remote.deployments.get("credit-prod") == workspace.deployments.get("credit-prod")
        assert [d.revision for d in remote.deployments.history("credit-prod")] == [1, 2]
        assert remote.deployments.rollback("credit-prod").resolved == {"1": 1}
        with pytest.raises(NotFound, match="credit-dev"):
            remote.deployments.get("credit-dev")
    finally:
        remote.close()


# monitoring --------------------------------------------------------------------------------

def test_monitoring_over_http_stores_series_read_back_as_history(served, tmp_path: Path) -> None:  # noqa: ANN001
    workspace, client, url = served
    model, train = trained_workspace(workspace, rows=1500)
    start = (time.time() // DAY - 3) * DAY
    log_predictions(workspace, model, applicants(300, seed=12), [start + i * 60 for i in range(300)])
    log_predictions(workspace, model, applicants(200, seed=13, shift=1.0), [start + DAY + i * 60 for i in range(200)])

    ran = client.post(f"/monitoring/models/{MODEL}@champion/runs",
                      json={"window": "1d", "since": start, "until": start + 2 * DAY})
    assert ran.status_code == 201, ran.text
    runs = ran.json()
    assert [(r["version"], r["summary"]["rows"], r["summary"]["dataset_drift"]) for r in runs] == [
        (1, 300, False), (1, 200, True)]
    assert [r["window"]["start"] for r in runs] == [int(start * 1000), int((start + DAY) * 1000)]

    volume = client.get(f"/monitoring/models/{MODEL}/history", params={"metric": "volume.rows"})
    assert volume.status_code == 200
    body = volume.json()
    rows = [dict(zip(body["columns"], row)) for row in body["data"]]
    assert [(r["check"], r["statistic"], r["value"], r["status"]) for r in rows] == [
        ("volume", "rows", 300.0, "info"), ("volume", "rows", 200.0, "info")]
    stored = client.get(f"/monitoring/models/{MODEL}/runs").json()
    assert [r["id"] for r in stored] == [r["id"] for r in reversed(runs)]

    reference = client.get(f"/monitoring/models/{MODEL}/1/reference").json()
    assert (reference["model"], reference["version"], reference["rows"]) == (MODEL, 1, 1500)
    assert sorted(reference["columns"]) == sorted(train.columns) and reference["task"] == "classification"

    bad_metric = error_of(client.get(f"/monitoring/models/{MODEL}/history", params={"metric": "rows"}), 422)
    assert bad_metric["field"] == "metric" and "CHECK.STATISTIC" in bad_metric["message"]
    bad_window = error_of(client.post(f"/monitoring/models/{MODEL}/runs", json={"window": "often"}), 422)
    assert bad_window["field"] == "window"
    unknown = error_of(client.post("/monitoring/models/fraud/runs", json={}), 404)
    assert "fraud" in unknown["message"]

    rule = client.put("/monitoring/alert-rules/drifting", json={
        "model": MODEL, "metric": "dataset_drift.share_drifted", "op": ">", "threshold": 0.3})
    assert rule.status_code == 200, rule.text
    [event] = client.post(f"/monitoring/models/{MODEL}/alert-evaluations").json()
    assert (event["rule"], event["event"], event["window_end"]) == ("drifting", "firing", int((start + 2 * DAY) * 1000))
    [state] = client.get("/monitoring/alert-states", params={"model": MODEL}).json()
    assert (state["rule"], state["state"], state["value"]) == ("drifting", "firing", event["value"])
    [delivery] = client.get("/monitoring/alert-deliveries", params={"rule": "drifting"}).json()
    assert (delivery["id"], delivery["channel"], delivery["status"]) == (event["deliveries"][0], "log", "delivered")

    metric = client.put("/monitoring/metrics/approval_rate", json={
        "model": MODEL, "sql": "SELECT avg((score < 0.3)::INT) FROM predictions"})
    assert metric.status_code == 200 and metric.json()["model"] == MODEL
    assert [m["name"] for m in client.get("/monitoring/metrics", params={"model": MODEL}).json()] == ["approval_rate"]
    broken = error_of(client.put("/monitoring/metrics/loss", json={"model": MODEL, "sql": "SELECT sum(lgd) FROM predictions"}),
                      422)
    assert broken["field"] == "sql" and "business metric 'loss'" in broken["message"]
    assert client.delete("/monitoring/metrics/approval_rate").status_code == 200
    assert error_of(client.delete("/monitoring/metrics/approval_rate"), 404)["field"] == "name"

    remote = remote_of(url, tmp_path / "client")
    try:
        profile = remote.monitoring.set_reference(f"{MODEL}/1", train.head(500))
        assert profile.inputs.rows == 500 and profile.outputs is not None and "score" in profile.outputs.columns
        assert client.get(f"/monitoring/models/{MODEL}/reference").json()["rows"] == 500
        history = remote.monitoring.history(MODEL, "dataset_drift.share_drifted")
        local = workspace.monitoring.history(MODEL, "dataset_drift.share_drifted")
        pd.testing.assert_frame_equal(history, local)
        assert remote.monitoring.reference(workspace.monitoring.version(MODEL)).inputs.rows == 500
        [again] = remote.monitoring.run(MODEL, since=start, until=start + DAY)
        assert again.summary["rows"] == 300 and again.window.end == int((start + DAY) * 1000)
    finally:
        remote.close()


WEBHOOK_RULE = {"model": MODEL, "metric": "dataset_drift.share_drifted", "op": ">", "threshold": 0.3,
                "channels": [{"type": "log"}, {"type": "webhook", "url": "http://127.0.0.1:9/hook", "secret": "s3cret",
                                                "max_attempts": 1, "backoff_s": 0}]}


def test_alert_rules_are_put_listed_and_deleted_with_their_secrets_masked(served, tmp_path: Path) -> None:  # noqa: ANN001
    workspace, client, url = served
    put = client.put("/monitoring/alert-rules/drift-high", json=WEBHOOK_RULE)
    assert put.status_code == 200, put.text
    assert put.json()["name"] == "drift-high" and put.json()["channels"][1]["secret"] == MASK
    stored = workspace.monitoring.alerts.get_rule("drift-high").channels[1]
    assert stored.secret.get_secret_value() == "s3cret"
    listed = client.get("/monitoring/alert-rules").json()
    assert [(r["name"], r["threshold"], r["channels"][1]["secret"]) for r in listed] == [("drift-high", 0.3, MASK)]
    assert "s3cret" not in client.get("/monitoring/alert-rules/drift-high").text
    assert client.get("/monitoring/alert-states").json() == []

    bad = error_of(client.put("/monitoring/alert-rules/typo", json={**WEBHOOK_RULE, "metric": "drift"}), 422)
    assert bad["field"] == "metric" and bad["message"].startswith("rule typo metric:")
    other = error_of(client.put("/monitoring/alert-rules/typo", json={**WEBHOOK_RULE, "name": "drift-high"}), 422)
    assert other["field"] == "name"
    assert client.get("/monitoring/alert-rules/typo").status_code == 404

    remote = remote_of(url, tmp_path / "client")
    try:
        rule = parse_rule({**WEBHOOK_RULE, "name": "drift-remote", "channels": [
            {"type": "webhook", "url": "http://127.0.0.1:9/other", "secret": "t0ken"}]})
        assert remote.monitoring.alerts.put_rule(rule).channels[0].secret.get_secret_value() == MASK
        kept = workspace.monitoring.alerts.get_rule("drift-remote").channels[0].secret.get_secret_value()
        assert kept == "t0ken"
        assert [r.name for r in remote.monitoring.alerts.list_rules()] == ["drift-high", "drift-remote"]
    finally:
        remote.close()

    assert client.delete("/monitoring/alert-rules/drift-high").status_code == 200
    assert error_of(client.get("/monitoring/alert-rules/drift-high"), 404)["field"] == "name"
    assert [r["name"] for r in client.get("/monitoring/alert-rules").json()] == ["drift-remote"]


# automation --------------------------------------------------------------------------------

def _policy_yaml(workspace: Workspace) -> str:
    root = Path(workspace.settings.workspace)
    write_pipeline(root, tune=None, register={"model": "cancer", "alias": "champion", "risk_tier": "low"})
    document = policy(Path("pipeline.yaml"), notify=[
        {"type": "webhook", "url": "https://hooks.example.com/ml", "secret": "s3cret"}])
    return yaml.safe_dump(document)


def _seed_job(workspace: Workspace, key: str, at: int) -> str:
    with workspace.metadata.write() as conn:
        job = workspace.automation.jobs.create(conn, "cancer-retrain", "cancer", "retrain", "schedule", key,
                                               f"slot {key}", at, 3)
    assert job is not None
    return job


def test_a_policy_applied_as_yaml_is_listed_masked_and_its_jobs_are_filtered(served, tmp_path: Path) -> None:  # noqa: ANN001
    workspace, client, url = served
    applied = client.post("/automation/policies", content=_policy_yaml(workspace),
                          headers={"content-type": "application/yaml"})
    assert applied.status_code == 201, applied.text
    assert applied.json()["notify"][0]["secret"] == MASK
    root = Path(workspace.settings.workspace).resolve()
    assert applied.json()["retrain"]["pipeline"] == str(root / "pipeline.yaml")
    stored = workspace.automation.get_policy("cancer-retrain").notify[0]
    assert stored.secret.get_secret_value() == "s3cret"
    [listed] = client.get("/automation/policies").json()
    assert (listed["name"], listed["paused"], listed["spec"]["notify"][0]["secret"]) == ("cancer-retrain", False, MASK)
    assert "s3cret" not in client.get("/automation/policies/cancer-retrain").text

    assert client.put("/automation/policies/cancer-retrain/paused", json={"paused": True}).status_code == 200
    assert client.get("/automation/policies").json()[0]["paused"] is True

    first, second = _seed_job(workspace, "a", 1_000), _seed_job(workspace, "b", 2_000)
    jobs = client.get("/automation/jobs", params={"policy": "cancer-retrain", "status": "pending"}).json()
    assert [(j["id"], j["status"], j["reason"]) for j in jobs] == [(second, "pending", "slot b"),
                                                                   (first, "pending", "slot a")]
    cancelled = client.post(f"/automation/jobs/{first[:8]}/cancel").json()
    assert (cancelled["id"], cancelled["status"]) == (first, "cancelled")
    assert [j["id"] for j in client.get("/automation/jobs", params={"status": "cancelled"}).json()] == [first]
    assert client.post(f"/automation/jobs/{first}/retry").json()["status"] == "pending"
    assert client.get("/automation/job-counts").json() == {"pending": 2}
    assert client.get("/automation/watches").json() == [] and client.get("/automation/events").json() == []

    status = error_of(client.get("/automation/jobs", params={"status": "done"}), 422)
    assert status["field"] == "status" and "'done'" in status["message"]
    limit = error_of(client.get("/automation/jobs", params={"limit": "many"}), 422)
    assert limit["field"] == "limit"
    assert error_of(client.get("/automation/jobs/0123456789abcdef"), 404)["field"] == "job"
    assert error_of(client.post("/automation/jobs/0123456789abcdef/cancel"), 404)["field"] == "job"
    assert error_of(client.get("/automation/policies/nightly"), 404)["field"] == "policy"
    cron = error_of(client.post("/automation/policies", content=_policy_yaml(workspace).replace("0 * * * *", "hourly"),
                                headers={"content-type": "application/yaml"}), 422)
    assert cron["field"] == "triggers[0].cron" and cron["message"].startswith("policy triggers[0].cron:")
    broken = error_of(client.post("/automation/policies", content="name: [", headers={"content-type": "application/yaml"}),
                      422)
    assert broken["field"] == "policy" and "not valid YAML" in broken["message"]

    remote = remote_of(url, tmp_path / "client")
    try:
        assert [job.id for job in remote.automation.list_jobs(policy="cancer-retrain")] == [second, first]
        assert remote.automation.cancel_job(second).status == "cancelled"
        as_json = policy(root / "pipeline.yaml", name="cancer-weekly")
        assert remote.automation.apply_policy(as_json).name == "cancer-weekly"
        assert [row["name"] for row in remote.automation.list_policies()] == ["cancer-retrain", "cancer-weekly"]
        remote.automation.delete_policy("cancer-weekly")
        assert workspace.automation.find_policy("cancer-weekly") is None
    finally:
        remote.close()


# audit log ---------------------------------------------------------------------------------

def test_audit_entries_page_newest_first_filter_by_object_and_actor_and_verify(served, tmp_path: Path) -> None:  # noqa: ANN001
    workspace, client, url = served
    alice, bob = as_user(workspace, "alice"), as_user(workspace, "bob")
    for name in ("fraud", "churn", "credit"):
        alice.registry.create_registered_model(name)
    bob.registry.create_registered_model("ltv")

    page = client.get("/audit/entries", params={"actor": "alice", "limit": 2}).json()
    assert [(e["actor"], e["action"], e["entity"]) for e in page] == [("alice", "model.created", "credit"),
                                                                      ("alice", "model.created", "churn")]
    rest = client.get("/audit/entries", params={"actor": "alice", "limit": 2, "before": page[-1]["seq"]}).json()
    assert [e["entity"] for e in rest] == ["fraud"]
    assert [e["actor"] for e in client.get("/audit/entries", params={"entity": "ltv"}).json()] == ["bob"]
    everything = client.get("/audit/entries", params={"newest_first": False}).json()
    assert [e["seq"] for e in everything] == [1, 2, 3, 4]
    assert all(e["hash"] and e["prev_hash"] for e in everything)

    verification = client.get("/audit/verification").json()
    assert verification == {"ok": True, "entries": 4, "head_seq": 4, "head_hash": everything[-1]["hash"], "problems": []}
    stale = client.get("/audit/verification", params={"expect_head": f"3:{everything[2]['hash']}"}).json()
    assert stale["ok"] is False and "not the expected" in stale["problems"][0]

    assert error_of(client.get("/audit/entries", params={"limit": 0}), 422)["field"] == "limit"
    assert error_of(client.get("/audit/entries", params={"before": "last"}), 422)["field"] == "before"

    remote = remote_of(url, tmp_path / "client")
    try:
        assert [e.entity for e in remote.audit.list_entries(actor="bob")] == ["ltv"]
        assert remote.audit.verify().ok
    finally:
        remote.close()


# pipelines ---------------------------------------------------------------------------------

def test_a_pipeline_run_over_http_is_listed_read_back_and_reproduced(served, tmp_path: Path) -> None:  # noqa: ANN001
    workspace, client, url = served
    path = write_pipeline(Path(workspace.settings.workspace), tune=None, gate=None, register=None)
    ran = client.post("/pipelines/runs", json={"spec": path.read_text(), "overrides": ["seed=5"]})
    assert ran.status_code == 201, ran.text
    result = ran.json()
    assert [(s["step"], s["status"]) for s in result["steps"]] == [
        ("dataset", "ran"), ("split", "ran"), ("preprocess", "ran"), ("tune", "skipped"), ("train", "ran"),
        ("evaluate", "ran"), ("gate", "skipped"), ("register", "skipped")]
    assert 0.8 < result["metrics"]["roc_auc"] <= 1.0

    again = client.post("/pipelines/runs", json={"path": "pipeline.yaml", "overrides": ["seed=5"]}).json()
    assert {s["step"]: s["status"] for s in again["steps"]}["train"] == "cached"
    assert again["metrics"] == result["metrics"]

    listed = client.get("/pipelines/runs", params={"pipeline": "cancer"}).json()
    assert [r["run_id"] for r in listed] == [again["run_id"], result["run_id"]]
    assert listed[1]["status"] == "FINISHED" and listed[1]["steps"]["train"] == "ran"
    assert listed[1]["metrics"]["roc_auc"] == pytest.approx(result["metrics"]["roc_auc"])
    one = client.get(f"/pipelines/runs/{result['run_id']}").json()
    assert one == listed[1]
    assert one["dataset_sha256"] == result["dataset_sha256"]

    reproduced = client.post(f"/pipelines/runs/{result['run_id']}/reproduce")
    assert reproduced.status_code == 201, reproduced.text
    outcome = reproduced.json()
    assert outcome["metrics_match"] is True and outcome["identical_model"] is True
    assert outcome["metrics"]["roc_auc"][0] == pytest.approx(result["metrics"]["roc_auc"])
    newest = client.get("/pipelines/runs", params={"max_results": 1}).json()
    assert [(r["run_id"], r["reproduces"]) for r in newest] == [(outcome["result"]["run_id"], result["run_id"])]

    neither = error_of(client.post("/pipelines/runs", json={"overrides": []}), 422)
    assert neither["field"] == "spec"
    typo = error_of(client.post("/pipelines/runs", json={"spec": path.read_text().replace("task: binary", "task: binery")}),
                    422)
    assert typo["field"] == "task" and typo["message"].startswith("spec line 2, key task:")
    assert error_of(client.get("/pipelines/runs", params={"status": "DONE"}), 422)["field"] == "status"
    assert error_of(client.get("/pipelines/runs/0123456789abcdef0123456789abcdef"), 404)["code"] == "not_found"
