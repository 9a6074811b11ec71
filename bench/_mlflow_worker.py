"""The MLflow side of ``bench/tracking.py``; runs in the ``bench/.venvs/mlflow`` virtualenv.

Usage: ``python _mlflow_worker.py '{"command": "log", "db": "/tmp/x/mlflow.db", ...}'``.
Speaks the JSON-lines protocol of ``_workload.py``. Store creation (MLflow's schema
migrations) and the experiment are set up before any timer starts.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param

from _workload import (
    EXPERIMENT,
    SEARCH_FILTER,
    SEARCH_LIMIT,
    SEARCH_ORDER,
    ErrorTally,
    LoggingSpec,
    emit,
    search_run,
    timed_result,
    wait_for_go,
)


def open_store(db: str) -> str:
    """Point MLflow at the SQLite file ``db`` and return the benchmark experiment's id."""
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    client = MlflowClient()
    found = client.get_experiment_by_name(EXPERIMENT)
    if found is not None:
        return found.experiment_id
    return client.create_experiment(EXPERIMENT, artifact_location=str(Path(db).parent / "mlflow-artifacts"))


def log_points(args: dict[str, Any]) -> dict[str, Any]:
    """Scenario 1: one ``mlflow.log_metric`` call per point (sync, async or buffered async)."""
    spec = LoggingSpec(**args["spec"])
    experiment_id = open_store(args["db"])
    synchronous = args["mode"] == "sync"
    if args["mode"] == "async-buffered":
        os.environ["MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS"] = "1"
    data = [(spec.run_params(run), spec.run_points(run)) for run in range(spec.runs)]
    start = time.perf_counter()
    for run, (params, points) in enumerate(data):
        with mlflow.start_run(experiment_id=experiment_id):
            mlflow.log_params(params, synchronous=synchronous)
            for key, value, step in points:
                mlflow.log_metric(key, value, step=step, synchronous=synchronous)
            if not synchronous:
                mlflow.flush_async_logging()  # end_run alone does not wait for the queue
        emit({"progress": run + 1})
    return {"seconds": time.perf_counter() - start}


def log_batches(args: dict[str, Any]) -> dict[str, Any]:
    """Scenario 2: one ``MlflowClient.log_batch`` per run with every point and param."""
    spec = LoggingSpec(**args["spec"])
    experiment_id = open_store(args["db"])
    client = MlflowClient()
    data = [(spec.run_params(run), spec.run_points(run)) for run in range(spec.runs)]
    start = time.perf_counter()
    for run, (params, points) in enumerate(data):
        run_id = client.create_run(experiment_id).info.run_id
        now = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(key, value, now, step) for key, value, step in points],
            params=[Param(key, value) for key, value in params.items()],
        )
        client.set_terminated(run_id)
        emit({"progress": run + 1})
    return {"seconds": time.perf_counter() - start}


def populate(args: dict[str, Any]) -> None:
    """Add search runs ``start`` .. ``stop - 1`` with the client's ``log_batch``."""
    experiment_id = open_store(args["db"])
    client = MlflowClient()
    for index in range(args["start"], args["stop"]):
        params, metrics = search_run(index)
        run_id = client.create_run(experiment_id).info.run_id
        now = int(time.time() * 1000)
        client.log_batch(
            run_id,
            metrics=[Metric(key, value, now, 0) for key, value in metrics.items()],
            params=[Param(key, value) for key, value in params.items()],
        )
        client.set_terminated(run_id)
        if (index + 1) % 100 == 0:
            emit({"progress": index + 1 - args["start"]})


def search(args: dict[str, Any]) -> dict[str, Any]:
    """Grow the population to run ``stop`` (see ``populate``), then time
    ``mlflow.search_runs``: one warm-up, then ``repeats`` timed calls."""
    populate(args)

    def once() -> Any:
        return mlflow.search_runs(
            experiment_names=[EXPERIMENT], filter_string=SEARCH_FILTER, order_by=[SEARCH_ORDER],
            max_results=SEARCH_LIMIT,
        )

    frame = once()
    times = []
    for _ in range(args["repeats"]):
        start = time.perf_counter()
        frame = once()
        times.append(time.perf_counter() - start)
    seeds = list(frame["params.seed"]) if len(frame) else []
    return {"median": statistics.median(times), "rows": len(frame), "seeds": seeds}


def concurrent(args: dict[str, Any]) -> dict[str, Any]:
    """Scenario 5 worker: log ``runs x metrics x steps`` points after a synchronised start."""
    spec = LoggingSpec(runs=args["runs"], params=2, metrics=args["metrics"], steps=args["steps"], seed=args["worker"])
    tally = ErrorTally()
    experiment_id = open_store(args["db"])
    data = [(spec.run_params(run), spec.run_points(run)) for run in range(spec.runs)]
    wait_for_go()
    start = time.time()
    for params, points in data:
        try:
            mlflow.start_run(experiment_id=experiment_id)
            mlflow.log_params(params)
        except Exception as error:  # noqa: BLE001  counted, the run's points are lost
            tally.add(error)
            with contextlib.suppress(Exception):
                mlflow.end_run()
            continue
        for key, value, step in points:
            try:
                mlflow.log_metric(key, value, step=step)
            except Exception as error:  # noqa: BLE001  counted
                tally.add(error)
        try:
            mlflow.end_run()
        except Exception as error:  # noqa: BLE001  counted
            tally.add(error)
    return timed_result(start, spec.points, tally)


def init(args: dict[str, Any]) -> dict[str, Any]:
    """Create the store and the experiment (before concurrent workers start)."""
    return {"experiment_id": open_store(args["db"]), "version": mlflow.__version__}


COMMANDS = {
    "log": log_points, "batch": log_batches, "search": search,
    "concurrent": concurrent, "init": init,
}


def main() -> None:
    """Run the command named in the JSON argument and emit its result."""
    args = json.loads(sys.argv[1])
    emit({"result": COMMANDS[args["command"]](args)})


if __name__ == "__main__":
    main()
