"""The physical limits of ``bench/registry.py``: the libraries alone, no registry.

Usage: ``python _registry_limit.py '{"command": "log", "model": "...", ...}'`` in the
project's virtualenv. Commands:

- ``log``: ``skops.io.dump`` (the format both Conveyor and MLflow write) and
  ``joblib.dump`` (pickle) of the fitted model to a new local file, ``count`` times each;
- ``serve``: ``skops.io.load`` and ``joblib.load`` of those files (``sklearn``), or
  ``lightgbm.Booster(model_file=...)`` of the booster's text file (``lightgbm``); with
  ``predict``, the model's own ``predict_proba`` on one row and on the score batch.

JSON-lines protocol of ``_workload.py``.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import joblib
from _registry_workload import (
    lightgbm_frame,
    median_seconds,
    predict_figures,
    read_score,
    run_worker,
    save_probabilities,
)


def log(args: dict[str, Any]) -> dict[str, Any]:
    """Scenario 1's limits: each dump to a new file, median seconds."""
    import skops.io as sio

    model = joblib.load(args["model"])
    counter = itertools.count()
    skops = median_seconds(lambda: sio.dump(model, Path.cwd() / f"model-{next(counter)}.skops"), args["count"])
    pickle = median_seconds(lambda: joblib.dump(model, Path.cwd() / f"model-{next(counter)}.joblib"), args["count"])
    return {
        "skops": skops["median"], "joblib": pickle["median"],
        "skops_bytes": (Path.cwd() / "model-0.skops").stat().st_size,
    }


def serve(args: dict[str, Any]) -> dict[str, Any]:
    """Scenarios 2 and 3's limits: raw loads, then the native model's predictions."""
    model = joblib.load(args["model"])
    score = read_score(args["score"])
    result: dict[str, Any] = {}
    if args["flavor"] == "lightgbm":
        import lightgbm as lgb

        score = lightgbm_frame(score)
        path = str(Path.cwd() / "model.txt")
        model.booster_.save_model(path)
        result["booster"] = median_seconds(lambda: lgb.Booster(model_file=path), args["count"])["median"]
    else:
        import skops.io as sio

        sio.dump(model, Path.cwd() / "model.skops")
        joblib.dump(model, Path.cwd() / "model.joblib")
        trusted = args["trusted_types"]
        result["skops"] = median_seconds(lambda: sio.load(Path.cwd() / "model.skops", trusted=trusted), args["count"])["median"]
        result["joblib"] = median_seconds(lambda: joblib.load(Path.cwd() / "model.joblib"), args["count"])["median"]
    save_probabilities(model.predict_proba(score), args["probabilities"])
    if args["predict"]:
        result["predict"] = predict_figures(model.predict_proba, score, args["calls"], args["count"])
    return result


COMMANDS = {"log": log, "serve": serve}


if __name__ == "__main__":
    run_worker(COMMANDS)
