"""Data, models and workspaces the registry tests share."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import conveyor
from conveyor.core.config import load_settings
from conveyor.core.workspace import RemoteWorkspace, Workspace
from conveyor.registry import ModelVersion

NUMERIC = ["income", "debt_ratio", "age"]
CATEGORICAL = ["grade"]


def credit_frame(rows: int = 600, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    """Loan applications with a default label that depends on income, debt and grade."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "income": rng.lognormal(10.5 + shift, 0.4, rows),
        "debt_ratio": rng.beta(2, 5, rows),
        "age": rng.integers(21, 70, rows),
        "grade": rng.choice(["A", "B", "C", "D"], rows, p=[0.3, 0.3, 0.25, 0.15]),
        "issued": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 180, rows), unit="D"),
    })
    risk = -2 + 3 * frame["debt_ratio"] - (np.log(frame["income"]) - 10.5) + frame["grade"].map({"A": -1, "B": 0, "C": 0.5, "D": 1})
    frame["default"] = (rng.random(rows) < 1 / (1 + np.exp(-risk))).astype(int)
    return frame


def train(frame: pd.DataFrame, C: float = 1.0) -> Pipeline:
    """A scaled logistic regression over one-hot grades."""
    pipeline = Pipeline([
        ("prep", ColumnTransformer([
            ("num", StandardScaler(), NUMERIC),
            ("cat", OneHotEncoder(handle_unknown="ignore"), CATEGORICAL),
        ])),
        ("model", LogisticRegression(C=C, max_iter=500)),
    ])
    return pipeline.fit(frame[NUMERIC + CATEGORICAL], frame["default"])


def log_version(workspace: Workspace, name: str, frame: pd.DataFrame, C: float = 1.0) -> ModelVersion:
    """Train, log with its training data, and register the next version of ``name``."""
    features = frame[NUMERIC + CATEGORICAL]
    with conveyor.start_run("registry-tests", workspace=workspace) as run:
        logged = run.log_model(train(frame, C), "model", training_data=features, target=frame["default"])
    return workspace.registry.create_model_version(name, logged.uri)


def as_user(workspace: Workspace, user: str, roles: Sequence[str] = ("data-scientist",), **settings: object) -> Workspace:
    """The same workspace (database and artifacts) acting as ``user`` with ``roles``; through
    the same server with that user's token when ``workspace`` is remote."""
    if isinstance(workspace, RemoteWorkspace):
        assert not settings, "a remote workspace takes its settings from the server"
        from server_support import as_remote_user

        return as_remote_user(workspace, user, tuple(roles))
    return Workspace(load_settings(
        workspace.settings.workspace, metadata={"url": workspace.settings.metadata_url},
        user=user, roles={user: list(roles)}, **settings,
    ))
