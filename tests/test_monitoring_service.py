"""Monitoring a served model from its prediction log: drift, late labels, business
metrics, stored series surviving a restart, alerts reaching a webhook, and the CLI."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from monitoring_support import (
    MODEL,
    applicants,
    default_labels,
    give_labels,
    log_predictions,
    trained_workspace,
)
from sklearn.metrics import roc_auc_score

from conveyor.core.workspace import Workspace
from conveyor.errors import NotFound, ValidationError
from conveyor.monitoring.alerts import parse_rule
from conveyor.monitoring.windows import Window, parse_duration, parse_time, windows

DAY = 86_400


def midnight(days_ago: int) -> float:
    return (time.time() // DAY - days_ago) * DAY


@pytest.fixture
def served(workspace: Workspace):  # noqa: ANN201
    """The champion with three days of predictions: two like training, the third shifted."""
    model, _ = trained_workspace(workspace)
    start = midnight(4)
    days = [applicants(400, seed=12), applicants(400, seed=11), applicants(400, seed=13, shift=1.0)]
    ids = [log_predictions(workspace, model, frame, [start + d * DAY + i * 60 for i in range(400)])
           for d, frame in enumerate(days)]
    return workspace, model, start, days, ids


def test_drift_in_the_prediction_log_is_found_in_the_shifted_window_only(served) -> None:  # noqa: ANN001
    ws, _, start, _, _ = served
    runs = ws.monitoring.run(MODEL, window="1d", since=start, until=start + 3 * DAY)
    assert [r.summary["rows"] for r in runs] == [400, 400, 400]
    flagged = [{p.column for p in r.points if p.check == "data_drift" and p.statistic != "drifted" and p.status == "drift"}
               for r in runs]
    assert flagged == [set(), set(), {"income", "grade"}]
    predicted = {p.column for p in runs[2].points if p.check == "prediction_drift" and p.status == "drift"}
    assert "score" in predicted
    assert [r.summary["dataset_drift"] for r in runs] == [False, False, True]


def test_quality_over_time_fills_in_as_late_labels_arrive(served) -> None:  # noqa: ANN001
    ws, model, start, days, ids = served
    truth = [default_labels(frame, seed=20 + d) for d, frame in enumerate(days)]
    give_labels(ws, ids[0], truth[0], start + 3 * DAY)
    ws.monitoring.run(MODEL, window="1d", since=start, until=start + 3 * DAY)
    first = ws.monitoring.history(MODEL, "model_quality.roc_auc")
    assert first["status"].tolist() == ["ok", "insufficient", "insufficient"]
    assert first["value"].iloc[0] == pytest.approx(roc_auc_score(truth[0], model.predict_proba(days[0])[:, 1]))
    assert first["value"].iloc[1:].isna().all()
    half = slice(0, 200)
    give_labels(ws, ids[1][half], truth[1][half], start + 4 * DAY)
    ws.monitoring.run(MODEL, window="1d", since=start, until=start + 3 * DAY)
    second = ws.monitoring.history(MODEL, "model_quality.roc_auc")
    assert second["status"].tolist() == ["ok", "ok", "insufficient"]
    assert second["value"].iloc[1] == pytest.approx(
        roc_auc_score(truth[1][half], model.predict_proba(days[1].iloc[half])[:, 1]))
    labelled = ws.monitoring.history(MODEL, "model_quality.labelled_rows")["value"].tolist()
    assert labelled == [400.0, 200.0, 0.0]


def test_a_business_metric_runs_on_each_window_and_a_broken_one_is_refused_by_name(served) -> None:  # noqa: ANN001
    ws, model, start, days, _ = served
    ws.monitoring.define_metric("approval_rate", MODEL, "SELECT avg((score < 0.3)::INT) FROM predictions")
    ws.monitoring.define_metric("expected_loss", MODEL, "SELECT sum(score * 0.45 * income) FROM predictions")
    with pytest.raises(ValidationError) as raised:
        ws.monitoring.define_metric("bad_loss", MODEL, "SELECT sum(score * lgd) FROM predictions")
    assert raised.value.field == "sql" and "business metric 'bad_loss'" in raised.value.message and "lgd" in raised.value.message
    with pytest.raises(ValidationError, match="one numeric column"):
        ws.monitoring.define_metric("two", MODEL, "SELECT grade, count(*) FROM predictions GROUP BY grade")
    ws.monitoring.run(MODEL, window="1d", since=start, until=start + 3 * DAY)
    rates = ws.monitoring.history(MODEL, "business.approval_rate")["value"].to_numpy()
    scores = [model.predict_proba(frame)[:, 1] for frame in days]
    assert rates == pytest.approx([np.mean(s < 0.3) for s in scores])
    losses = ws.monitoring.history(MODEL, "business.expected_loss")["value"].to_numpy()
    assert losses == pytest.approx([np.sum(s * 0.45 * f["income"]) for s, f in zip(scores, days)], rel=1e-6)
    assert [m.name for m in ws.monitoring.business.list(MODEL)] == ["approval_rate", "expected_loss"]


def test_results_survive_a_restart(served) -> None:  # noqa: ANN001
    ws, _, start, _, _ = served
    ws.monitoring.run(MODEL, window="1d", since=start, until=start + 3 * DAY)
    before = ws.monitoring.history(MODEL)
    ws.metadata.dispose()
    reopened = Workspace(ws.settings)
    after = reopened.monitoring.history(MODEL)
    assert len(before) > 50
    pd.testing.assert_frame_equal(after, before)


class Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802
        Hook.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


def test_a_drift_alert_reaches_a_webhook_once_per_breach(served) -> None:  # noqa: ANN001
    ws, _, start, _, _ = served
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Hook.received = []
    try:
        ws.monitoring.alerts.put_rule(parse_rule({
            "name": "credit-drift", "model": MODEL, "metric": "dataset_drift.share_drifted", "op": ">=",
            "threshold": 0.5, "severity": "critical",
            "channels": [{"type": "webhook", "url": f"http://127.0.0.1:{server.server_port}/hook", "backoff_s": 0.01}],
        }))
        ws.monitoring.run(MODEL, window="1d", since=start, until=start + 2 * DAY)
        assert Hook.received == []
        ws.monitoring.run(MODEL, window="1d", since=start + 2 * DAY, until=start + 3 * DAY)
        ws.monitoring.run(MODEL, window="1d", since=start + 2 * DAY, until=start + 3 * DAY)
        assert [(p["event"], p["rule"], p["value"]) for p in Hook.received] == [("firing", "credit-drift", 0.5)]
        ws.monitoring.run(MODEL, window="1d", since=start + DAY, until=start + 2 * DAY)
        assert [p["event"] for p in Hook.received] == ["firing"]
    finally:
        server.shutdown()


def test_a_version_without_a_reference_is_a_clear_error(workspace: Workspace) -> None:
    from sklearn.linear_model import LinearRegression

    import conveyor

    frame = applicants(50, seed=1)[["income", "age"]]
    with conveyor.start_run(experiment="no-reference", workspace=workspace) as run:
        run.log_model(LinearRegression().fit(frame, frame["age"]), input_example=frame, registered_model_name="plain")
    with pytest.raises(NotFound, match="has no reference profile"):
        workspace.monitoring.run("plain/1")
    workspace.monitoring.set_reference("plain/1", frame)
    runs = workspace.monitoring.run("plain/1", data=frame)
    assert runs[0].summary["rows"] == 50 and runs[0].summary["drifted_columns"] == 0


def test_fixed_windows_align_and_rolling_windows_end_every_step() -> None:
    since, until = parse_time("2026-11-01T06:00:00Z", "since"), parse_time("2026-11-03T00:00:00Z", "until")
    fixed = windows(since, until, 86_400_000)
    assert [str(w) for w in fixed] == ["2026-11-01T06:00:00Z .. 2026-11-02T00:00:00Z",
                                       "2026-11-02T00:00:00Z .. 2026-11-03T00:00:00Z"]
    rolling = windows(since, until, 86_400_000, step=6 * 3_600_000)
    assert rolling[-1] == Window(until - 86_400_000, until) and len(rolling) == 4
    assert all(w.end - w.start == 86_400_000 for w in rolling)
    with pytest.raises(ValidationError, match="not a duration"):
        parse_duration("a day", "window")


def test_the_cli_runs_shows_history_and_writes_a_report(served, run_cli, tmp_path: Path) -> None:  # noqa: ANN001
    ws, _, start, _, _ = served
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start))
    result = run_cli(ws, "monitor", "run", MODEL, "--window", "1d", "--since", since, "--until",
                     time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + 3 * DAY)), "--json")
    assert result.returncode == 0, result.stderr
    assert [w["drifted"] for w in json.loads(result.stdout)] == ["0/4", "0/4", "2/4"]
    history = run_cli(ws, "monitor", "history", MODEL, "--metric", "dataset_drift.share_drifted", "--json")
    assert [p["value"] for p in json.loads(history.stdout)] == [0.0, 0.0, 0.5]
    out = tmp_path / "report.html"
    report = run_cli(ws, "monitor", "report", MODEL, "--out", str(out))
    assert report.returncode == 0 and out.stat().st_size < 5_000_000
    page = out.read_text()
    assert all(name in page for name in ("income", "grade", "debt_ratio", "score"))
    bad = run_cli(ws, "monitor", "metric", "add", "x", "--model", MODEL, "--sql", "SELECT nope FROM predictions")
    assert bad.returncode == 2 and "business metric 'x'" in bad.stderr and "Traceback" not in bad.stderr
    wrong = run_cli(ws, "monitor", "run", MODEL, "--window", "daily")
    assert wrong.returncode == 2 and "not a duration" in wrong.stderr


def test_feature_freshness_is_the_age_of_each_views_newest_online_value(tmp_path: Path) -> None:
    from serving_support import featured_workspace

    from conveyor.features.store import FeatureStore

    ws = featured_workspace(tmp_path / "ws")
    frame = ws.monitoring.history("risk")
    assert frame.empty
    never = ws.monitoring.run("risk", data=applicants(5, seed=1).rename(columns={"income": "amount", "age": "orders"}))
    assert [(p.column, p.status) for p in never[0].points if p.check == "freshness"] == [("customer_stats", "fail")]
    with FeatureStore(workspace=ws) as store:
        store.materialize(end="2100-01-01")
        newest = store.last_materialization("customer_stats").newest_event_us / 1e6
    runs = ws.monitoring.run("risk", data=applicants(5, seed=1).rename(columns={"income": "amount", "age": "orders"}))
    [point] = [p for p in runs[0].points if p.check == "freshness"]
    assert point.column == "customer_stats" and point.status == "info"
    assert point.value == pytest.approx(time.time() - newest, abs=60)
