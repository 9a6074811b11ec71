"""The MLflow side of ``bench/registry.py``; runs in the ``bench/.venvs/mlflow`` virtualenv.

Usage: ``python _registry_mlflow.py '{"command": "log", "db": ".../mlflow.db", ...}'``.
MLflow uses its SQLite backend store (tracking and registry in ``db``) and local
artifacts in the worker's folder; the experiment exists before any timer starts.
Commands mirror ``_registry_conveyor.py``:

- ``log``: ``mlflow.sklearn.log_model(..., registered_model_name=, input_example=)`` (the
  signature inferred from the example, pip requirements inferred, MLflow's defaults)
  ``count`` times, one run each, after one untimed warm-up; with ``"requirements":
  "given"`` the pip requirements are passed instead of inferred;
- ``serve``: log and register once (untimed; requirements given), set the ``champion`` alias, then time
  ``mlflow.pyfunc.load_model("models:/NAME@champion")`` (MLflow copies the artifacts to
  a new temporary folder on every load, so every load is cold) and, with ``predict``,
  the warm pyfunc ``predict`` (``pyfunc_predict_fn="predict_proba"``) of one row and of
  the score batch.

JSON-lines protocol of ``_workload.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import joblib
import mlflow
from _registry_workload import (
    ALIAS,
    EXAMPLE_ROWS,
    EXPERIMENT,
    LIGHTGBM_MODEL,
    SKLEARN_MODEL,
    lightgbm_frame,
    median_seconds,
    predict_figures,
    read_score,
    read_train,
    run_worker,
    save_probabilities,
)
from mlflow import MlflowClient

# MLflow 3 refuses to deserialise any model, skops files included, without this opt-in;
# Conveyor's counterpart is passing the model's untrusted skops types to load_model.
os.environ["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "true"


def open_store(db: str) -> str:
    """Point tracking and registry at the SQLite file ``db``; the benchmark experiment's id."""
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    mlflow.set_registry_uri(f"sqlite:///{db}")
    found = MlflowClient().get_experiment_by_name(EXPERIMENT)
    if found is not None:
        return found.experiment_id
    return MlflowClient().create_experiment(EXPERIMENT, artifact_location=(Path.cwd() / "mlflow-artifacts").as_uri())


def log_once(args: dict[str, Any], experiment_id: str, model: Any, example: Any, name: str) -> Any:
    """One run that logs and registers the model; returns MLflow's ``ModelInfo``.

    ``args["requirements"]``: ``"inferred"`` (MLflow's default: it imports the model in a
    subprocess to see which packages it needs) or ``"given"`` (the flavor's default pins).
    """
    lightgbm = args.get("flavor") == "lightgbm"
    flavor = mlflow.lightgbm if lightgbm else mlflow.sklearn
    options: dict[str, Any] = {"name": "model", "registered_model_name": name, "input_example": example}
    if args["requirements"] == "given":
        options["pip_requirements"] = [f"mlflow=={mlflow.__version__}", *flavor.get_default_pip_requirements(include_skops=True)]
    if not lightgbm:  # (mlflow.sklearn is a lazy module: no identity test)
        options.update(pyfunc_predict_fn="predict_proba", skops_trusted_types=args["trusted_types"])
    with mlflow.start_run(experiment_id=experiment_id):
        return flavor.log_model(model, **options)


def log(args: dict[str, Any]) -> dict[str, Any]:
    """Scenario 1: log + register ``count`` times; median seconds."""
    model = joblib.load(args["model"])
    features, _ = read_train(args["train"])
    example = features.head(EXAMPLE_ROWS)
    experiment_id = open_store(args["db"])
    versions: list[int] = []

    def once() -> Any:
        info = log_once(args, experiment_id, model, example, SKLEARN_MODEL)
        versions.append(int(info.registered_model_version))
        return info

    timed = median_seconds(once, args["count"])
    return {"median": timed["median"], "samples": timed["samples"], "versions": versions}


def serve(args: dict[str, Any]) -> dict[str, Any]:
    """Scenarios 2 and 3: cold loads by alias, then warm predictions."""
    lightgbm = args["flavor"] == "lightgbm"
    model = joblib.load(args["model"])
    features, _ = read_train(args["train"])
    score = read_score(args["score"])
    if lightgbm:
        features, score = lightgbm_frame(features), lightgbm_frame(score)
    name = LIGHTGBM_MODEL if lightgbm else SKLEARN_MODEL
    experiment_id = open_store(args["db"])
    info = log_once({**args, "requirements": "given"}, experiment_id, model, features.head(EXAMPLE_ROWS), name)
    version = int(info.registered_model_version)
    MlflowClient().set_registered_model_alias(name, ALIAS, version)
    uri = f"models:/{name}@{ALIAS}"
    loads = median_seconds(lambda: mlflow.pyfunc.load_model(uri), args["count"])
    loaded = loads["last"]
    probabilities = loaded.get_raw_model().predict_proba(score) if lightgbm else loaded.predict(score)
    save_probabilities(probabilities, args["probabilities"])
    result: dict[str, Any] = {
        "median": loads["median"], "samples": loads["samples"], "expected_version": version,
    }
    if args["predict"]:
        result["predict"] = predict_figures(loaded.predict, score, args["calls"], args["count"])
    return result


COMMANDS = {"log": log, "serve": serve}


if __name__ == "__main__":
    run_worker(COMMANDS, version_of_mlflow=mlflow.__version__)
