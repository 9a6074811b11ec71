"""A real model server in a subprocess, for the HTTP tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from features_support import T0, write_parquet
from sklearn.linear_model import LogisticRegression

import conveyor
from conveyor.core.config import load_settings
from conveyor.core.workspace import Workspace
from conveyor.features import (
    Entity,
    Feature,
    FeatureService,
    FeatureStore,
    FeatureView,
    FileSource,
)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_server(workspace: Workspace, *models: str, deployments: tuple[str, ...] = (), workers: int = 1,
                   settings: dict[str, str] | None = None, log: bool = True) -> Iterator[httpx.Client]:
    """``conveyor serve`` on a free port until the block ends; yields a client bound to it.

    ``settings`` are extra ``CONVEYOR_*`` variables (e.g. a short poll interval)."""
    port = free_port()
    command = [sys.executable, "-m", "conveyor", "-w", str(workspace.settings.workspace),
               "--metadata-url", workspace.settings.metadata_url, "serve", *models,
               *(arg for name in deployments for arg in ("--deployment", name)),
               "--port", str(port), "--workers", str(workers), "--log" if log else "--no-log"]
    env = {**os.environ, **(settings or {})}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited {process.returncode}: {process.stderr.read().decode()[-2000:]}")
            try:
                if client.get("/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server not ready after 60 s")
            time.sleep(0.2)
        yield client
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=20)


def wait_until_ready(process: subprocess.Popen, client: httpx.Client, timeout_s: float = 60) -> None:
    """Poll ``/readyz`` until it answers 200; RuntimeError (with the server's stderr, when piped)
    if the process exits first or the time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            stderr = process.stderr.read().decode()[-2000:] if process.stderr else ""
            raise RuntimeError(f"server exited {process.returncode}: {stderr}")
        try:
            if client.get("/readyz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server not ready after {timeout_s:.0f} s")
        time.sleep(0.2)


def featured_workspace(root: Path) -> Workspace:
    """A workspace whose 'risk' champion was trained on feature service 'credit_v1'
    (customer_stats: amount, orders, a row every 10 days for customers 0-39)."""
    customer = Entity("customer", join_keys=["customer_id"])
    stats = FeatureView("customer_stats", [customer], FileSource("data/stats.parquet"), "event_timestamp",
                        [Feature("amount", "float64"), Feature("orders", "int64")])
    root.mkdir(parents=True)
    workspace = Workspace(load_settings(root))
    rng = np.random.default_rng(7)
    write_parquet(root / "data" / "stats.parquet", pd.DataFrame({
        "customer_id": np.repeat(np.arange(40), 6),
        "event_timestamp": (T0 + pd.to_timedelta(np.tile(np.arange(6) * 10, 40), unit="D")).astype("datetime64[us]"),
        "amount": rng.gamma(2.0, 50.0, 240),
        "orders": rng.integers(0, 20, 240),
    }))
    entities = pd.DataFrame({"customer_id": rng.integers(0, 40, 400)})
    entities["event_timestamp"] = (T0 + pd.to_timedelta(rng.integers(0, 60 * 24, 400), unit="h")).astype("datetime64[us]")
    with FeatureStore(workspace=workspace) as store:
        store.apply([customer, stats, FeatureService("credit_v1", [stats])])
        training = store.get_historical_features(entities, "credit_v1").to_df()
    features = training[["amount", "orders"]]
    label = (features["amount"] / 100 + features["orders"] / 10 + rng.normal(0, 0.5, len(features)) > 2).astype(int)
    with conveyor.start_run("featured", workspace=workspace) as run:
        logged = run.log_model(LogisticRegression().fit(features, label), "model", training_data=features, target=label)
    workspace.registry.create_model_version("risk", logged.uri, feature_service="credit_v1")
    workspace.registry.set_alias("risk", "champion", 1)
    return workspace
