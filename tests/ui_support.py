"""A workspace seeded for the web UI tests, and the platform server running on it.

The seed holds what the journeys walk through: an experiment of tuned credit models
with metric histories and artifacts, a registered high-risk model whose version 1 is
the approved champion and version 2 awaits a validator, a monitored model whose last
window drifted (so its drift alert fires), a deployment serving it, and users with
API tokens: ``ann`` (data scientist, who built everything) and ``val`` (validator).
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from monitoring_support import MODEL as MONITORED_MODEL
from monitoring_support import (
    applicants,
    default_labels,
    give_labels,
    log_predictions,
    trained_workspace,
)
from registry_support import CATEGORICAL, NUMERIC, credit_frame, train

import conveyor
from conveyor.core.config import load_settings
from conveyor.core.db.base import now_ms
from conveyor.core.workspace import Workspace
from conveyor.governance import Actor, acting_as
from conveyor.tracking import tables

EXPERIMENT = "credit-scoring"
REGISTERED = "credit-risk"
DEPLOYMENT = "credit-prod"
DRIFT_RULE = "credit-input-drift"
USERS = {"ann": ["data-scientist"], "val": ["validator"]}
DAY = 86_400
MODELS = {"lgbm": 0.06, "xgboost": 0.045, "logreg": 0.0}
BULK_MODELS = ("lgbm", "xgboost", "logreg", "rf")


@dataclass
class Seeded:
    """The seeded workspace and what the tests look for in it."""

    workspace: Workspace
    best_run: str
    best_auc: float
    runs: list[str] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)


def as_user(workspace: Workspace, user: str) -> Workspace:
    """The same stores acting as ``user`` with the roles ``USERS`` gives."""
    return Workspace(workspace.settings.model_copy(update={"user": user, "roles": {user: USERS[user]}}))


def _auc(model: str, learning_rate: float, depth: int, rng: np.random.Generator) -> float:
    """A plausible validation AUC: boosted trees beat the linear baseline, moderate rates do best."""
    tuned = 0.035 * np.exp(-((np.log10(learning_rate) + 1.3) ** 2) / 0.3) + 0.004 * min(depth, 8)
    return float(min(0.93, 0.80 + MODELS[model] + (tuned if model != "logreg" else 0.0) + rng.normal(0, 0.004)))


def _log_tuning_runs(ws: Workspace, count: int = 36) -> list[tuple[str, float]]:
    """Runs of a small hyper-parameter search, each with loss and AUC histories; returns (run id, auc)."""
    rng = np.random.default_rng(7)
    found = []
    for index in range(count):
        model = list(MODELS)[index % 3]
        learning_rate = float(np.round(10 ** rng.uniform(-2.3, -0.6), 4))
        depth = int(rng.integers(3, 11))
        params = {"model": model, "learning_rate": learning_rate, "max_depth": depth if model != "logreg" else 0,
                  "n_estimators": int(rng.choice([200, 400, 800])) if model != "logreg" else 1}
        final = _auc(model, learning_rate, depth, rng)
        with conveyor.start_run(EXPERIMENT, name=f"{model}-{index:02d}", params=params,
                                tags={"team": "credit", "stage": "tuning"}, workspace=ws) as run:
            steps = 40
            for step in range(steps):
                progress = 1 - np.exp(-(step + 1) / (6 + 40 * (0.1 - min(learning_rate, 0.1))))
                run.log_metrics({"train_logloss": 0.69 - (0.69 - (1.02 - final)) * progress + rng.normal(0, 0.004),
                                 "val_auc": 0.5 + (final - 0.5) * progress + rng.normal(0, 0.002)}, step=step)
            run.log_metrics({"auc": final, "ks": final * 0.62 + rng.normal(0, 0.01), "fit_seconds": 3 + 40 * rng.random()},
                            step=steps)
        found.append((run.id, final))
    return found


def _attach_artifacts(ws: Workspace, run_id: str) -> None:
    """What a thorough run leaves behind: a summary, a table, notes, a figure, predictions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tracking = ws.tracking
    tracking.log_bytes(run_id, json.dumps({"auc": 0.91, "folds": 5, "features": NUMERIC + CATEGORICAL}, indent=1).encode(),
                       "reports/summary.json")
    importance = "feature,gain\nincome,0.41\ndebt_ratio,0.33\ngrade,0.18\nage,0.08\n"
    tracking.log_bytes(run_id, importance.encode(), "reports/feature_importance.csv")
    tracking.log_bytes(run_id, b"Tuned on the 2024H1 loans; early stopping on the validation fold.\n", "notes.txt")
    figure, axes = plt.subplots(figsize=(4, 3))
    fpr = np.linspace(0, 1, 50)
    axes.plot(fpr, fpr ** 0.25, color="#2563eb")
    axes.plot([0, 1], [0, 1], ":", color="#9ca3af")
    axes.set_xlabel("false positive rate")
    axes.set_ylabel("true positive rate")
    axes.set_title("ROC (validation)")
    tracking.log_figure(run_id, figure, "plots/roc.png")
    plt.close(figure)
    tracking.log_table(run_id, pd.DataFrame({"id": range(20), "score": np.linspace(0.02, 0.97, 20)}), "predictions")


def _register(ws: Workspace, validator: Workspace, runs: list[tuple[str, float]]) -> str:
    """Version 1 (approved champion) from a good run, version 2 (awaiting approval) from the best run."""
    ws.registry.create_registered_model(
        REGISTERED, risk_tier="high", owner_team="credit", description="Probability that a loan applicant defaults.",
        intended_use="Rank applications for manual review; never the sole reason to decline.",
        limitations="Trained on 2024H1 loans; not validated for small-business credit.")
    ranked = sorted(runs, key=lambda item: item[1])
    for number, (run_id, C) in enumerate(((ranked[-6][0], 0.3), (ranked[-1][0], 1.0)), start=1):
        train_frame, holdout = credit_frame(seed=number), credit_frame(seed=10 + number)
        run = conveyor.Run(ws.tracking, ws.tracking.get_run_info(run_id), ws)
        run.log_dataset(train_frame, name="loans-2024H1", context="train", source="warehouse.loans_2024h1")
        logged = run.log_model(train(train_frame, C), f"model-v{number}", training_data=train_frame[NUMERIC + CATEGORICAL],
                               target=train_frame["default"])
        version = ws.registry.create_model_version(REGISTERED, logged.uri, description=f"C={C}")
        ws.registry.validate_version(REGISTERED, version.version, holdout)
        ws.registry.request_approval(REGISTERED, version.version, "validation passed, ready for review")
        if number == 1:
            validator.registry.approve(REGISTERED, 1, "report checked")
            ws.registry.set_alias(REGISTERED, "champion", 1)
    return ranked[-1][0]


def _monitor(ws: Workspace) -> None:
    """Three days of served predictions (the last shifted), labels for two, and a drift alert that fires."""
    from conveyor.monitoring.alerts import parse_rule
    from conveyor.serving.deployments import DeploymentSpec

    model, _ = trained_workspace(ws, rows=2000)
    with acting_as(Actor(name="ops", roles=frozenset({"ml-engineer"}))):  # deploying is not a data scientist's
        ws.deployments.create(DEPLOYMENT, DeploymentSpec(model=MONITORED_MODEL))
    start = (time.time() // DAY - 3) * DAY
    days = [applicants(300, seed=12), applicants(300, seed=11), applicants(300, seed=13, shift=1.0)]
    ids = [log_predictions(ws, model, frame, [start + d * DAY + i * 90 for i in range(300)]) for d, frame in enumerate(days)]
    for d in (0, 1):
        give_labels(ws, ids[d], default_labels(days[d], seed=20 + d), start + 3 * DAY)
    ws.monitoring.alerts.put_rule(parse_rule({
        "name": DRIFT_RULE, "model": MONITORED_MODEL, "metric": "dataset_drift.share_drifted", "op": ">=",
        "threshold": 0.5, "severity": "critical", "channels": [{"type": "log"}]}))
    ws.monitoring.run(MONITORED_MODEL, window="1d", since=start, until=start + 3 * DAY)


def has_identity(ws: Workspace) -> bool:
    """Whether ``Workspace`` builds the identity service (users and API tokens) itself."""
    return hasattr(type(ws), "identity")


def identity(ws: Workspace) -> object:
    """The workspace's identity service (attached here while ``Workspace`` does not build it yet)."""
    if not has_identity(ws) and not hasattr(ws, "identity"):
        from conveyor.governance.users import IdentityService

        ws.identity = IdentityService(ws.metadata, lambda: ws.actor)  # type: ignore[attr-defined]
    return ws.identity  # type: ignore[attr-defined]


ADMIN = Actor(name="setup", roles=frozenset({"platform-admin"}))


def issue_token(ws: Workspace, user: str, roles: list[str]) -> str:
    """Create ``user`` with ``roles`` (as a platform admin) and return a new API token of theirs."""
    service = identity(ws)
    with acting_as(ADMIN):
        service.create_user(user, roles=roles)  # type: ignore[attr-defined]
        token, _ = service.create_token(user)  # type: ignore[attr-defined]
    return token


def server_app(ws: Workspace, user: str, roles: list[str]) -> tuple[object, dict[str, str]]:
    """The platform server on ``ws`` (authentication on) and the headers of a browser signed in
    as ``user`` with a real API token in the ``conveyor_token`` cookie."""
    from conveyor.server.app import create_app

    token = issue_token(ws, user, roles)
    return create_app(ws), {"Accept": "text/html", "Cookie": f"conveyor_token={token}"}


def seed(root: Path) -> Seeded:
    """Build the seeded workspace in ``root`` (a fresh folder)."""
    settings = load_settings(root, user="ann", roles={"ann": USERS["ann"]})
    ws = Workspace(settings)
    validator = as_user(ws, "val")
    runs = _log_tuning_runs(ws)
    ws.tracking.flush()
    best = _register(ws, validator, runs)
    _attach_artifacts(ws, best)
    with conveyor.start_run("churn", name="baseline", params={"model": "logreg"}, workspace=ws) as run:
        run.log_metric("auc", 0.71)
    _monitor(ws)
    ws.tracking.flush()
    validator.close()
    best_auc = dict(runs)[best]
    tokens = {user: issue_token(ws, user, roles) for user, roles in USERS.items()}
    return Seeded(ws, best, best_auc, [run_id for run_id, _ in runs], tokens)


def bulk_runs(ws: Workspace, experiment: str, count: int) -> None:
    """``count`` finished runs with three params and three latest metrics each, inserted in one transaction."""
    experiment_id = ws.tracking.create_experiment(experiment).id
    start = now_ms() - count * 1000
    ids = [uuid.uuid4().hex for _ in range(count)]
    run_rows = [(run_id, experiment_id, f"run-{i:06d}", "FINISHED", start + i * 1000, start + i * 1000 + 500,
                 start + i * 1000 + 500, "bench", False) for i, run_id in enumerate(ids)]
    params = [(run_id, key, value, experiment_id) for i, run_id in enumerate(ids)
              for key, value in (("model", BULK_MODELS[i % 4]), ("learning_rate", str(round(0.001 * (1 + i % 97), 4))),
                                 ("max_depth", str(3 + i % 8)))]
    metrics = [(run_id, key, value, 0, start + i * 1000, experiment_id) for i, run_id in enumerate(ids)
               for key, value in (("auc", 0.6 + (i * 7919 % 3000) / 10_000), ("logloss", 0.2 + (i % 500) / 1000),
                                  ("ks", 0.3 + (i % 211) / 1000))]
    store = ws.metadata
    with store.write() as conn:
        store.insert_many(conn, tables.runs, ("id", "experiment_id", "name", "status", "start_time", "end_time",
                                              "heartbeat_at", "user", "deleted"), run_rows)
        store.insert_many(conn, tables.params, ("run_id", "key", "value", "experiment_id"), params)
        store.insert_many(conn, tables.latest_metrics, ("run_id", "key", "value", "step", "timestamp", "experiment_id"),
                          metrics)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serving(app: object) -> Iterator[str]:
    """Run ``app`` with uvicorn in a background thread; yields its base URL."""
    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the UI server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height of a PNG."""
    with io.BytesIO(data) as handle:
        handle.seek(16)
        return int.from_bytes(handle.read(4), "big"), int.from_bytes(handle.read(4), "big")
