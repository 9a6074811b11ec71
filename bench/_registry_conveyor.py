"""The Conveyor side of ``bench/registry.py``; runs in the project's virtualenv.

Usage: ``python _registry_conveyor.py '{"command": "log", "model": "...", ...}'``.
Commands (every one opens a fresh workspace in its working folder, which the parent removes):

- ``log``: ``run.log_model(..., training_data=, target=, registered_model_name=)`` of the
  same fitted model ``count`` times, one run each, after one untimed warm-up;
- ``serve``: log and register the model once, point ``champion`` at it, then time
  ``load_model("models:/NAME@champion")`` with the model cache emptied before each load
  and, with ``predict``, the warm ``predict_proba`` of one row and of the score batch,
  also alternated call by call with the loaded native model (``predictor.native``) to
  isolate the cost of signature validation, and ``validate_frame`` alone.

JSON-lines protocol of ``_workload.py``.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import joblib
from _registry_workload import (
    ALIAS,
    EXPERIMENT,
    LIGHTGBM_MODEL,
    SKLEARN_MODEL,
    lightgbm_frame,
    median_seconds,
    paired,
    predict_figures,
    read_score,
    read_train,
    run_worker,
    save_probabilities,
)

import conveyor


def log_once(workspace: conveyor.Workspace, model: Any, features: Any, target: Any, name: str) -> conveyor.LoggedModel:
    """One run that logs and registers the model."""
    with conveyor.start_run(EXPERIMENT, workspace=workspace) as run:
        return run.log_model(model, "model", training_data=features, target=target, registered_model_name=name)


def log(args: dict[str, Any]) -> dict[str, Any]:
    """Scenario 1: log + register ``count`` times; median seconds and what was stored."""
    model = joblib.load(args["model"])
    features, target = read_train(args["train"])
    workspace = conveyor.open_workspace(Path.cwd())
    versions: list[int] = []

    def once() -> conveyor.LoggedModel:
        logged = log_once(workspace, model, features, target, SKLEARN_MODEL)
        versions.append(logged.version.version)
        return logged

    timed = median_seconds(once, args["count"])
    manifest = timed["last"].manifest
    stored = sum(item.size for item in manifest.files)
    workspace.close()
    return {"median": timed["median"], "samples": timed["samples"], "versions": versions, "bytes": stored}


def serve(args: dict[str, Any]) -> dict[str, Any]:
    """Scenarios 2 and 3: cold loads by alias, then warm predictions."""
    lightgbm = args["flavor"] == "lightgbm"
    model = joblib.load(args["model"])
    features, target = read_train(args["train"])
    score = read_score(args["score"])
    if lightgbm:
        features, score = lightgbm_frame(features), lightgbm_frame(score)
    name = LIGHTGBM_MODEL if lightgbm else SKLEARN_MODEL
    workspace = conveyor.open_workspace(Path.cwd())
    logged = log_once(workspace, model, features, target, name)
    workspace.registry.set_alias(name, ALIAS, logged.version.version)
    uri = f"models:/{name}@{ALIAS}"

    def cold() -> None:
        shutil.rmtree(workspace.model_cache, ignore_errors=True)

    def load() -> conveyor.Predictor:  # the workspace's registry.trusted_types covers HistGradientBoosting's trees
        return conveyor.load_model(uri, workspace=workspace)

    loads = median_seconds(load, args["count"], before=cold)
    predictor: conveyor.Predictor = loads["last"]
    save_probabilities(predictor.predict_proba(score), args["probabilities"])
    result: dict[str, Any] = {
        "median": loads["median"], "samples": loads["samples"], "version": predictor.version.version,
        "expected_version": logged.version.version, "flavor": predictor.flavor,
    }
    if args["predict"]:
        result["predict"] = predict_figures(predictor.predict_proba, score, args["calls"], args["count"])
        one, native = score.iloc[:1], predictor.native.predict_proba
        result["paired_one"] = paired(predictor.predict_proba, native, one, args["calls"])
        result["paired_batch"] = paired(predictor.predict_proba, native, score, args["count"])
        validate = predictor.signature.validate_frame
        result["validate_one"] = median_seconds(lambda: validate(one), args["calls"])["median"]
        result["validate_batch"] = median_seconds(lambda: validate(score), args["count"])["median"]
    workspace.close()
    return result


COMMANDS = {"log": log, "serve": serve}


if __name__ == "__main__":
    run_worker(COMMANDS)
