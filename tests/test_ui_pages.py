"""The web UI's pages over HTTP, without a browser: every page renders for a signed-in user,
sign-in and static files work as a browser needs, bad input is explained in the page (never
a 500), the runs table pages, sorts and keeps its columns in the URL, artifacts stream
verified, a non-validator cannot approve, and no page shows a webhook's secret."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from ui_support import (
    DEPLOYMENT,
    DRIFT_RULE,
    EXPERIMENT,
    REGISTERED,
    Seeded,
    bulk_runs,
    issue_token,
    seed,
)

from conveyor.core.config import load_settings
from conveyor.core.workspace import Workspace
from conveyor.ui.pages.automation import mask_url, masked

pytestmark = pytest.mark.slow
HTML = {"Accept": "text/html"}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    found = seed(tmp_path_factory.mktemp("ui-pages"))
    bulk_runs(found.workspace, "sweep", 120)
    yield found
    found.workspace.close()


@pytest.fixture(scope="module")
def app(seeded: Seeded):
    from conveyor.server.app import create_app

    return create_app(seeded.workspace)


def client_for(app: object, token: str | None) -> TestClient:
    client = TestClient(app, follow_redirects=False, headers=HTML)
    if token:
        client.cookies.set("conveyor_token", token)
    return client


@pytest.fixture(scope="module")
def ann(app: object, seeded: Seeded) -> TestClient:
    return client_for(app, seeded.tokens["ann"])


def test_every_page_renders_for_a_signed_in_user(ann: TestClient, seeded: Seeded) -> None:
    ids = ",".join(seeded.runs[:3])
    expected = {
        "/": ["Open Alerts".lower(), EXPERIMENT, REGISTERED],
        "/experiments": [EXPERIMENT, "sweep"],
        f"/experiments/{EXPERIMENT}": ['class="pick-run"', "metrics.auc"],
        f"/runs/{seeded.best_run}": ["Metric history", "reports/summary.json", "loans-2024H1", "Git commit"],
        f"/compare?runs={ids}": ["Parallel coordinates", "parcoords", "learning_rate"],
        "/models": [REGISTERED, "credit"],
        f"/models/{REGISTERED}": ["@champion", "v2", "approved"],
        f"/models/{REGISTERED}/versions/1": ["Lineage", "loans-2024H1", "Model card", "roc_auc", "champion"],
        f"/models/{REGISTERED}/versions/1/validation": ["<html"],
        "/features": ["Feature store"],
        "/deployments": [DEPLOYMENT],
        f"/deployments/{DEPLOYMENT}": ["Traffic policy", "champion", "Latency (ms)"],
        "/monitoring": ["1 firing"],
        "/monitoring/credit": [DRIFT_RULE, "Drift per column over time", "Model quality over time", "income"],
        "/automation": ["Policies", "Jobs"],
        "/audit": ["Audit log", "approval.approved", "hx-get=\"/audit/verify\""],
        "/audit/verify": ["chain verified"],
    }
    for path, needles in expected.items():
        response = ann.get(path)
        assert response.status_code == 200, (path, response.text[:400])
        text = response.text.lower()
        missing = [needle for needle in needles if needle.lower() not in text]
        assert not missing, (path, missing)


def test_a_page_without_a_token_sends_the_browser_to_sign_in_and_static_files_are_public(app: object) -> None:
    anonymous = client_for(app, None)
    found = anonymous.get(f"/experiments/{EXPERIMENT}?order=metrics.auc%20DESC")
    assert found.status_code == 303
    assert found.headers["location"] == "/login?next=" + quote(f"/experiments/{EXPERIMENT}?order=metrics.auc%20DESC")
    assert anonymous.get("/login").status_code == 200
    css = anonymous.get("/static/app.css")
    assert css.status_code == 200 and "immutable" in css.headers["cache-control"]
    htmx = anonymous.get("/static/htmx.min.js")
    assert htmx.status_code == 200 and "htmx" in htmx.text[:200]
    raw = TestClient(app)
    plotly = raw.get("/static/plotly.min.js", headers={"Accept-Encoding": "gzip"})
    assert plotly.headers["content-encoding"] == "gzip" and "max-age=31536000" in plotly.headers["cache-control"]
    assert int(plotly.headers["content-length"]) < 2_000_000  # 4.8 MB of plotly.js, compressed
    assert raw.get("/static/plotly.min.js", headers={"If-None-Match": plotly.headers["etag"]}).status_code == 304


def test_signing_in_sets_an_httponly_same_site_cookie_and_returns_to_the_page(app: object, seeded: Seeded) -> None:
    anonymous = client_for(app, None)
    response = anonymous.post("/login", data={"token": seeded.tokens["val"], "next": "/models"})
    assert response.status_code == 303 and response.headers["location"] == "/models"
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"conveyor_token={seeded.tokens['val']}")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie
    elsewhere = anonymous.post("/login", data={"token": seeded.tokens["val"], "next": "//evil.example/x"})
    assert elsewhere.headers["location"] == "/"
    refused = anonymous.post("/login", data={"token": "cvy_wrong", "next": "/"})
    assert refused.status_code == 401 and "set-cookie" not in refused.headers
    assert 'class="inline-error"' in refused.text
    signed_out = client_for(app, seeded.tokens["val"]).get("/logout")
    assert signed_out.status_code == 303 and 'conveyor_token=""' in signed_out.headers["set-cookie"]


def test_a_malformed_filter_is_explained_in_the_page_not_a_server_error(ann: TestClient) -> None:
    page = ann.get(f"/experiments/{EXPERIMENT}", params={"filter": "metrics.auc > 'high'"})
    assert page.status_code == 200
    assert "metrics.auc is numeric, compared with the string" in html.unescape(page.text)
    fragment = ann.get(f"/experiments/{EXPERIMENT}", params={"filter": "metrics.auc >"}, headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert fragment.text.lstrip().startswith('<section class="panel flush" id="runs">')
    assert "filter: unexpected end of input" in fragment.text


def rows(html: str) -> list[str]:
    return re.findall(r'<a href="/runs/\w+">([^<]+)</a>', html)


def test_the_runs_table_pages_by_50_sorts_on_any_column_and_keeps_the_chosen_columns(ann: TestClient) -> None:
    first = ann.get("/experiments/sweep")
    assert rows(first.text) == [f"run-{i:06d}" for i in range(119, 69, -1)]  # newest first
    third = ann.get("/experiments/sweep", params={"page": "3"})
    assert rows(third.text) == [f"run-{i:06d}" for i in range(19, -1, -1)]
    assert 'class="btn disabled" href="/experiments/sweep?page=4"' in third.text
    by_name = ann.get("/experiments/sweep", params={"order": "attributes.name ASC", "cols": "metrics.auc,params.model"})
    assert rows(by_name.text)[:3] == ["run-000000", "run-000001", "run-000002"]
    headers = re.findall(r'<th class="num key[^"]*" title="([^"]+)"', by_name.text)
    assert headers == ["metrics.auc", "params.model"]
    # every link of the table keeps the sort and the columns
    assert "/experiments/sweep?order=attributes.name+ASC&amp;page=2&amp;cols=metrics.auc%2Cparams.model" in by_name.text
    picked = ann.get("/experiments/sweep", params=[("cols", ""), ("cols", "metrics.ks"), ("picker", "1")],
                     headers={"HX-Request": "true"})
    assert re.findall(r'<th class="num key[^"]*" title="([^"]+)"', picked.text) == ["metrics.ks"]
    assert "<details class=\"picker\" open>" in picked.text
    metric = ann.get("/experiments/sweep", params={"order": "metrics.auc DESC"})
    aucs = [float(v) for v in re.findall(r'<td class="num">(0\.\d+)</td>', metric.text)[::3]]
    assert aucs == sorted(aucs, reverse=True) and len(aucs) == 50


def test_missing_objects_are_a_readable_404_page(ann: TestClient) -> None:
    for path, message in (("/runs/0123abcd", "run '0123abcd' does not exist"),
                          ("/experiments/nope", "experiment 'nope' does not exist"),
                          ("/models/nope", "registered model 'nope' does not exist"),
                          (f"/models/{REGISTERED}/versions/9", "has no version 9"),
                          ("/deployments/nope", "no deployment named 'nope'")):
        response = ann.get(path)
        assert response.status_code == 404, path
        assert response.headers["content-type"].startswith("text/html")
        assert message in html.unescape(response.text) and "<title>Not found" in response.text


def test_only_a_validator_sees_the_decision_buttons_and_others_are_refused(app: object, ann: TestClient,
                                                                           seeded: Seeded) -> None:
    page = ann.get(f"/models/{REGISTERED}/versions/2")
    assert "button class=\"approve\"" not in page.text
    refused = ann.post(f"/models/{REGISTERED}/versions/2/approve", data={"comment": "me"}, headers={"HX-Request": "true"})
    assert refused.status_code == 403
    assert "lacks permission models.approve" in refused.text and 'id="approval"' in refused.text
    assert seeded.workspace.registry.get_model_version(REGISTERED, 2).status.value == "validated"
    validator = client_for(app, seeded.tokens["val"])
    assert "button class=\"approve\"" in validator.get(f"/models/{REGISTERED}/versions/2").text
    empty = validator.post(f"/models/{REGISTERED}/versions/2/reject", data={"reason": " "}, headers={"HX-Request": "true"})
    assert empty.status_code == 422 and "a rejection needs a reason" in empty.text


def test_the_audit_log_pages_newest_first_and_its_chain_verifies(ann: TestClient, seeded: Seeded) -> None:
    registry = seeded.workspace.registry
    for number in range(60):
        registry.update_registered_model("credit", description=f"revision {number}")
    head = seeded.workspace.audit.list_entries(limit=1)[0].seq
    first = ann.get("/audit")
    seqs = [int(s) for s in re.findall(r'<td class="num">(\d+)</td><td class="nowrap muted">', first.text)]
    assert seqs == list(range(head, head - 50, -1))
    older = ann.get("/audit", params={"before": str(seqs[-1])})
    rest = [int(s) for s in re.findall(r'<td class="num">(\d+)</td><td class="nowrap muted">', older.text)]
    assert rest == list(range(head - 50, 0, -1))[:50]
    newer = ann.get("/audit", params={"after": str(rest[0])})
    assert [int(s) for s in re.findall(r'<td class="num">(\d+)</td><td class="nowrap muted">', newer.text)] == seqs
    only = ann.get("/audit", params={"entity": "credit", "action": "model.updated"}, headers={"HX-Request": "true"})
    assert "<html" not in only.text and only.text.count(">model.updated</td>") == 50
    assert "revision 59" in only.text
    assert "chain verified · " in ann.get("/audit/verify").text


def test_artifacts_download_as_attachments_and_preview_their_first_lines(ann: TestClient, seeded: Seeded) -> None:
    run = seeded.best_run
    notes = ann.get(f"/ui/artifacts/{run}/notes.txt")
    assert notes.status_code == 200 and notes.content.startswith(b"Tuned on the 2024H1 loans")
    assert notes.headers["content-disposition"] == 'attachment; filename="notes.txt"'
    assert notes.headers["x-content-type-options"] == "nosniff" and "sandbox" in notes.headers["content-security-policy"]
    image = ann.get(f"/ui/artifacts/{run}/plots/roc.png", params={"inline": "true"})
    assert image.headers["content-type"] == "image/png" and image.headers["content-disposition"].startswith("inline")
    assert image.content[:8] == b"\x89PNG\r\n\x1a\n"
    csv = ann.get(f"/ui/previews/{run}/reports/feature_importance.csv")
    assert "<th>feature</th><th>gain</th>" in csv.text and "<td>income</td><td>0.41</td>" in csv.text
    summary = ann.get(f"/ui/previews/{run}/reports/summary.json")
    assert '&#34;folds&#34;: 5' in summary.text
    table = ann.get(f"/ui/previews/{run}/predictions.parquet")
    assert "<th>score</th>" in table.text and "10 of 20 rows" in table.text
    assert ann.get(f"/ui/artifacts/{run}/no/such/file").status_code == 404


def test_webhook_secrets_urls_and_headers_are_masked() -> None:
    spec = {"notify": [{"type": "log"}, {"type": "webhook", "url": "https://hooks.slack.com/services/T0/B0/XYZsecret",
                                         "secret": "s3cret", "headers": {"Authorization": "Bearer abc"}}]}
    shown = masked(spec)
    assert shown["notify"][1] == {"type": "webhook", "url": "https://hooks.slack.com/…", "secret": "••••••",
                                  "headers": {"Authorization": "••••••"}}
    assert mask_url("http://127.0.0.1:9000") == "http://127.0.0.1:9000"


def test_the_automation_page_never_shows_a_policys_webhook_secret(tmp_path: Path) -> None:
    from automation_support import champion_workspace, policy

    from conveyor.server.app import create_app

    ws = Workspace(load_settings(tmp_path, user="ann", roles={"ann": ["ml-engineer"]}))
    path = champion_workspace(ws)
    ws.automation.apply_policy(policy(path, notify=[{"type": "webhook", "url": "https://hooks.example.com/T0/B0/tok3n",
                                                      "secret": "whsec-42", "headers": {"X-Api-Key": "k-99"}}]))
    page = client_for(create_app(ws), issue_token(ws, "ops", ["ml-engineer"])).get("/automation")
    assert page.status_code == 200 and "cancer-retrain" in page.text and "<strong>schedule</strong> <span class=\"muted\">cron 0 * * * *" in page.text
    assert "https://hooks.example.com/…" in page.text
    for secret in ("whsec-42", "tok3n", "k-99"):
        assert secret not in page.text
    ws.close()


def test_the_features_page_shows_freshness_and_statistics(tmp_path: Path) -> None:
    from features_support import write_parquet

    from conveyor.features import Entity, Feature, FeatureStore, FeatureView, FileSource
    from conveyor.server.app import create_app

    ws = Workspace(load_settings(tmp_path, user="ann", roles={"ann": ["ml-engineer"]}))
    now = pd.Timestamp.now(tz="UTC").tz_localize(None).floor("s")
    write_parquet(tmp_path / "data" / "stats.parquet", pd.DataFrame({
        "customer_id": ["C1", "C2", "C3"], "amount_30d": [10.0, 25.5, None], "grade": ["A", "B", "A"],
        "event_timestamp": [now - pd.Timedelta(days=3), now - pd.Timedelta(days=2), now - pd.Timedelta(days=1)]}))
    store = FeatureStore(workspace=ws)
    customer = Entity("customer", join_keys=["customer_id"])
    features = [Feature("amount_30d", "float64"), Feature("grade", "string")]
    store.apply([FeatureView("customer_stats", entities=[customer], source=FileSource("data/stats.parquet"),
                             timestamp_field="event_timestamp", ttl=timedelta(days=30), features=features),
                 FeatureView("short_lived", entities=[customer], source=FileSource("data/stats.parquet"),
                             timestamp_field="event_timestamp", ttl=timedelta(hours=1), features=features[:1])])
    store.materialize()
    store.close()
    page = client_for(create_app(ws), issue_token(ws, "ann", ["ml-engineer"])).get("/features")
    assert page.status_code == 200
    stale = re.search(r"short_lived.*?</tr>", page.text, re.DOTALL)
    fresh = re.search(r"customer_stats</a>.*?</tr>", page.text, re.DOTALL)
    assert stale and ">stale<" in stale.group(0) and fresh and ">fresh<" in fresh.group(0)
    assert "amount_30d" in page.text and "33.3%" in page.text  # one null in three rows
    assert "A (2)" in page.text  # the top value of grade
    ws.close()
