"""A Conveyor process of the concurrency scenario of ``bench/tracking.py``.

Usage: ``python _conveyor_worker.py '{"workspace": "...", "metadata_url": null, "runs": 5, ...}'``.
Opens the shared workspace, says it is ready, waits for ``go``, then logs one
``log_metric`` call per point and reports its wall-clock window and errors
(JSON-lines protocol of ``_workload.py``).
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

import conveyor

from _workload import (
    EXPERIMENT,
    ErrorTally,
    LoggingSpec,
    emit,
    timed_result,
    wait_for_go,
)


def main() -> None:
    """Log this worker's share of points into the shared workspace."""
    args: dict[str, Any] = json.loads(sys.argv[1])
    overrides = {"metadata": {"url": args["metadata_url"]}} if args.get("metadata_url") else {}
    workspace = conveyor.open_workspace(args["workspace"], **overrides)
    workspace.tracking  # noqa: B018  open the store before the clock starts
    spec = LoggingSpec(runs=args["runs"], params=2, metrics=args["metrics"], steps=args["steps"], seed=args["worker"])
    data = [(spec.run_params(run), spec.run_points(run)) for run in range(spec.runs)]
    tally = ErrorTally()
    wait_for_go()
    start = time.time()
    for params, points in data:
        try:
            run = conveyor.start_run(experiment=EXPERIMENT, params=params, workspace=workspace)
        except Exception as error:  # noqa: BLE001  counted, the run's points are lost
            tally.add(error)
            continue
        for key, value, step in points:
            try:
                run.log_metric(key, value, step=step)
            except Exception as error:  # noqa: BLE001  counted
                tally.add(error)
        try:
            run.end()
        except Exception as error:  # noqa: BLE001  counted
            tally.add(error)
    emit({"result": timed_result(start, spec.points, tally)})
    workspace.close()


if __name__ == "__main__":
    main()
