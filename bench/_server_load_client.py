"""One load-generating client of ``bench/server_load.py``: a process of its own.

Usage: ``python _server_load_client.py '{"target": "conveyor", "url": "http://127.0.0.1:8080", ...}'``.
Speaks the JSON-lines protocol of ``_workload.py``: it connects, says it is ready, waits
for ``go``, loops until ``duration`` seconds have passed and sends its result: every
request's latency by operation, errors, acknowledged metric points, its own CPU time.

Targets (one loop shape, each tool's own REST API, JSON bodies both ways):

- ``conveyor``: ``/api/v1`` of ``conveyor server start`` (``Authorization: Bearer`` when a token is given);
- ``mlflow``: ``/api/2.0/mlflow`` of ``mlflow server``;
- ``sql``: the physical limit: the loop's metric inserts alone, one ``executemany`` of a
  batch per transaction into a plain table, through psycopg.

An iteration of the HTTP targets is one training run: ``create`` it with its params,
``log`` ``BATCHES`` batches of ``BATCH`` points, ``end`` it, then ``search`` the
experiment's runs with ``FILTER`` ordered by ``ORDER``, ``MAX_RESULTS`` at most. A search
answer is checked (at most ``MAX_RESULTS`` rows, each matching the filter, in order). A
non-2xx answer or a transport error is an error; a 2xx search answer that fails the
check is a wrong answer, counted apart. The loop checks
the deadline before every request, so a client stops within one request of it.

Runs in the project's virtualenv for every target (standard library; psycopg for
``sql``): the load generator is the same program whichever tool it loads.
"""

from __future__ import annotations

import functools
import getpass
import http.client
import itertools
import json
import math
import os
import platform
import random
import socket
import sys
import time
import urllib.parse
import uuid
from collections.abc import Callable
from typing import Any

from _workload import emit, wait_for_go

EXPERIMENT = "bench-server"
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy")
STEPS_PER_BATCH = 25
BATCH = len(METRICS) * STEPS_PER_BATCH  # points per log request: 100
BATCHES = 10  # log requests per run: 1,000 points
FILTER = "metrics.loss < 0.5"
ORDER = "metrics.loss ASC"
MAX_RESULTS = 100
TIMEOUT = 60.0  # seconds before a request counts as failed
OPERATIONS = ("create", "log", "end", "search")

Point = tuple[str, float, int, int]


class WrongAnswer(Exception):
    """A search answered 2xx with rows that break its filter, order or limit."""


# the workload: the same runs for every target --------------------------------------------------------


def run_params(client: int, run: int) -> dict[str, str]:
    """The five params of run ``run`` of client ``client``."""
    rng = random.Random(client * 1_000_003 + run)
    return {"model": rng.choice(("lgbm", "rf", "lr", "xgb")), "learning_rate": str(rng.choice((0.01, 0.03, 0.1))),
            "max_depth": str(rng.randint(2, 12)), "client": str(client), "run": str(run)}


def run_batches(client: int, run: int) -> list[list[Point]]:
    """``BATCHES`` batches of ``BATCH`` points ``(key, value, step, timestamp_ms)`` of one run:
    losses fall towards a final value uniform in [0, 1), so about half the runs match ``FILTER``."""
    rng = random.Random(~(client * 1_000_003 + run))
    final, steps = rng.random(), BATCHES * STEPS_PER_BATCH
    now = int(time.time() * 1000)
    batches = []
    for first in range(0, steps, STEPS_PER_BATCH):
        points: list[Point] = []
        for step in range(first, first + STEPS_PER_BATCH):
            loss = final + 1.5 * (1 - step / (steps - 1)) * (1 + 0.05 * math.sin(step))
            values = (loss, 1 - loss / 2.5, loss * 1.1 + 0.01, 1 - loss / 2.2)
            points += [(key, value, step, now + step) for key, value in zip(METRICS, values, strict=True)]
        batches.append(points)
    return batches


def check_losses(losses: list[float]) -> int:
    """The number of rows of a search answer; ``WrongAnswer`` unless they obey filter, order and limit."""
    if len(losses) > MAX_RESULTS:
        raise WrongAnswer(f"search returned {len(losses)} rows, more than max_results={MAX_RESULTS}")
    if any(not loss < 0.5 for loss in losses):
        raise WrongAnswer(f"search returned a run with loss >= 0.5: {max(losses)}")
    for place, (before, after) in enumerate(itertools.pairwise(losses)):
        if after < before:
            raise WrongAnswer(f"search rows are not ordered by {ORDER}: row {place} has loss {before:.6f}, "
                              f"row {place + 1} {after:.6f}")
    return len(losses)


# the tools' APIs ---------------------------------------------------------------------------------------


class HttpApi:
    """A keep-alive connection to one server; ``post`` raises on a non-2xx answer.

    ``http.client`` rather than httpx: on the shared 2-core machine the client's CPU is taken
    from the servers, and a keep-alive POST costs 0.16 ms of CPU with ``http.client`` against
    0.83 ms with httpx (measured against a server in another process)."""

    def __init__(self, url: str, prefix: str, headers: dict[str, str]) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.prefix = prefix
        self.headers = {"content-type": "application/json", **headers}
        self.connection = http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)

    def request(self, method: str, path: str, body: bytes | None = None) -> bytes:
        """One request on the kept-alive connection (opened anew after a failure); the answer's body."""
        try:
            self.connection.request(method, path, body, self.headers)
            response = self.connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.connection.close()
            raise
        if response.status >= 300:
            raise RuntimeError(f"HTTP {response.status} from {method} {path}: {data[:200].decode(errors='replace')}")
        return data

    def post(self, path: str, body: Any) -> Any:
        """POST a JSON body to ``prefix + path``, return the decoded answer."""
        return json.loads(self.request("POST", self.prefix + path, json.dumps(body).encode()))

    def probe(self, path: str) -> None:
        """One GET before the clock starts, so the timed requests find the connection open."""
        self.request("GET", path)


def _origin() -> dict[str, Any]:
    """Where the runs execute, as Conveyor's SDK reports it (user, host, process), without git state."""
    return {"user": getpass.getuser(), "host": socket.gethostname(), "pid": os.getpid(),
            "command": " ".join(sys.argv[:1]), "python_version": platform.python_version()}


class ConveyorApi(HttpApi):
    """Conveyor's ``/api/v1``."""

    def __init__(self, url: str, token: str | None) -> None:
        super().__init__(url, "/api/v1", {"authorization": f"Bearer {token}"} if token else {})
        self.origin = _origin()
        self.probe("/healthz")

    def create(self, name: str, params: dict[str, str]) -> str:
        """A new run with its params; its id."""
        body = {"experiment": EXPERIMENT, "name": name, "params": params, "origin": self.origin}
        return self.post("/runs", body)["id"]

    def log(self, run_id: str, points: list[Point]) -> None:
        """One batch of metric points."""
        self.post(f"/runs/{run_id}/metrics", {"points": points})

    def end(self, run_id: str) -> None:
        """Finish the run."""
        self.post(f"/runs/{run_id}/end", {"status": "FINISHED"})

    def search(self) -> int:
        """The filtered, ordered search; the number of rows it returned (checked)."""
        body = {"experiments": [EXPERIMENT], "filter": FILTER, "order_by": [ORDER], "max_results": MAX_RESULTS}
        frame = self.post("/runs/search", body)  # {"columns": [...], "data": [[...], ...]}
        column = frame["columns"].index("metrics.loss") if frame["data"] else 0
        return check_losses([row[column] for row in frame["data"]])


class MlflowApi(HttpApi):
    """MLflow's ``/api/2.0/mlflow``; the params go with the first batch (``runs/create`` takes none)."""

    def __init__(self, url: str, experiment_id: str) -> None:
        super().__init__(url, "/api/2.0/mlflow", {})
        self.experiment_id = experiment_id
        self.tags = [{"key": "mlflow.user", "value": getpass.getuser()},
                     {"key": "mlflow.source.name", "value": " ".join(sys.argv[:1])},
                     {"key": "mlflow.source.type", "value": "LOCAL"}]
        self.params: dict[str, list[dict[str, str]]] = {}
        self.probe("/health")

    def create(self, name: str, params: dict[str, str]) -> str:
        """A new run; its params are sent with its first batch."""
        body = {"experiment_id": self.experiment_id, "run_name": name, "start_time": int(time.time() * 1000),
                "tags": self.tags}
        run_id = self.post("/runs/create", body)["run"]["info"]["run_id"]
        self.params[run_id] = [{"key": key, "value": value} for key, value in params.items()]
        return run_id

    def log(self, run_id: str, points: list[Point]) -> None:
        """One ``log-batch`` of metric points (plus the run's params the first time)."""
        metrics = [{"key": key, "value": value, "step": step, "timestamp": ts} for key, value, step, ts in points]
        self.post("/runs/log-batch", {"run_id": run_id, "metrics": metrics, "params": self.params.pop(run_id, [])})

    def end(self, run_id: str) -> None:
        """Finish the run."""
        self.post("/runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": int(time.time() * 1000)})

    def search(self) -> int:
        """The filtered, ordered search; the number of runs it returned (checked)."""
        body = {"experiment_ids": [self.experiment_id], "filter": FILTER, "order_by": [ORDER],
                "max_results": MAX_RESULTS}
        runs = self.post("/runs/search", body).get("runs", [])  # MLflow omits empty lists
        return check_losses([next(m["value"] for m in run["data"]["metrics"] if m["key"] == "loss") for run in runs])


# recording ------------------------------------------------------------------------------------------


class Recorder:
    """Latencies (seconds) and errors by operation, until the deadline."""

    def __init__(self, duration: float) -> None:
        self.latencies: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}
        self.first_error: str | None = None
        self.wrong = 0
        self.first_wrong: str | None = None
        self.points = 0
        self.search_rows = 0
        self.start = time.time()
        self.cpu = time.process_time()
        self.deadline = time.perf_counter() + duration

    @property
    def running(self) -> bool:
        """False once the deadline has passed."""
        return time.perf_counter() < self.deadline

    def call(self, operation: str, request: Callable[[], Any]) -> tuple[bool, Any]:
        """Time one request: (True, its result), or (False, None) after recording its error or
        wrong answer."""
        started = time.perf_counter()
        try:
            result = request()
        except WrongAnswer as error:  # answered, so timed, but counted as wrong
            self.latencies.setdefault(operation, []).append(time.perf_counter() - started)
            self.wrong += 1
            self.first_wrong = self.first_wrong or f"{operation}: {error}"
            return False, None
        except Exception as error:  # noqa: BLE001  every failure is counted, the loop goes on
            self.errors[operation] = self.errors.get(operation, 0) + 1
            self.first_error = self.first_error or f"{operation}: {type(error).__name__}: {error}".splitlines()[0][:300]
            return False, None
        self.latencies.setdefault(operation, []).append(time.perf_counter() - started)
        return True, result

    def result(self) -> dict[str, Any]:
        """What the parent aggregates (latencies rounded to the microsecond)."""
        return {"start": self.start, "end": time.time(), "cpu": time.process_time() - self.cpu, "points": self.points,
                "search_rows": self.search_rows, "first_error": self.first_error, "errors": self.errors,
                "wrong": self.wrong, "first_wrong": self.first_wrong,
                "latencies": {op: [round(s, 6) for s in samples] for op, samples in self.latencies.items()}}


def http_loop(api: ConveyorApi | MlflowApi, client: int, recorder: Recorder) -> None:
    """Runs until the deadline: create, log the batches, end, search."""
    run = 0
    while recorder.running:
        batches = run_batches(client, run)
        ok, run_id = recorder.call("create", functools.partial(api.create, f"client{client}-run{run}",
                                                               run_params(client, run)))
        run += 1
        if not ok:
            continue
        for points in batches:
            if not recorder.running:
                return
            ok, _ = recorder.call("log", functools.partial(api.log, run_id, points))
            recorder.points += len(points) if ok else 0
        if not recorder.running:
            return
        recorder.call("end", functools.partial(api.end, run_id))
        if not recorder.running:
            return
        ok, rows = recorder.call("search", api.search)
        recorder.search_rows += rows if ok else 0


def sql_loop(conninfo: str, table: str, client: int, duration: float) -> Recorder:
    """The limit: each batch of the same runs as one ``executemany`` and a commit, until the deadline."""
    import psycopg

    insert = f"INSERT INTO {table} (run_id, key, value, step, ts) VALUES (%s, %s, %s, %s, %s)"
    with psycopg.connect(conninfo) as conn:
        conn.execute("SELECT 1")
        conn.commit()
        wait_for_go()
        recorder, run = Recorder(duration), 0
        while recorder.running:
            run_id = uuid.uuid4().hex
            for points in run_batches(client, run):
                if not recorder.running:
                    break
                rows = [(run_id, *point) for point in points]

                def write(rows: list[tuple[Any, ...]] = rows) -> None:
                    with conn.cursor() as cursor:
                        cursor.executemany(insert, rows)
                    conn.commit()

                ok, _ = recorder.call("insert", write)
                recorder.points += len(rows) if ok else 0
                if not ok:
                    conn.rollback()
            run += 1
    return recorder


def main() -> None:
    """Connect, wait for ``go``, load the target until the deadline, send the result."""
    args: dict[str, Any] = json.loads(sys.argv[1])
    if args["target"] == "sql":
        recorder = sql_loop(args["conninfo"], args["table"], args["client"], args["duration"])
    else:
        api: ConveyorApi | MlflowApi = (ConveyorApi(args["url"], args.get("token")) if args["target"] == "conveyor"
                                        else MlflowApi(args["url"], args["experiment_id"]))
        wait_for_go()
        recorder = Recorder(args["duration"])
        http_loop(api, args["client"], recorder)
    emit({"result": recorder.result()})


if __name__ == "__main__":
    main()
