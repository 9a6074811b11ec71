"""APScheduler 3 worker of ``bench/automation.py``, run by ``bench/.venvs/apscheduler/bin/python``.

``python _automation_apscheduler.py '<json>'``; the JSON holds ``command``, ``url`` (the
SQLAlchemy URL of the shared job store) and ``slots``. Speaks the JSON-lines protocol of
``_harness.py``: ``{"ready": true}``, then waits for ``go`` on stdin (``run`` only), then
prints ``{"result": {...}}``.

- ``add``: a scheduler started paused on the ``SQLAlchemyJobStore`` adds ``slots`` one-off
  ``date`` jobs, ``slot-0`` .. ``slot-N-1``, all due now (``misfire_grace_time=None``: none
  is dropped for being late); the adding is timed.
- ``add_interval``: one ``interval`` job (``slot-interval``) firing every ``interval``
  seconds from ``start_at`` (epoch seconds) for ``slots`` firings, then removed
  (``end_date``); ``coalesce=False`` and ``misfire_grace_time=None``, so a late firing
  still runs once per scheduled time instead of being merged or dropped.
- ``run``: a ``BackgroundScheduler`` on the same store (default executor: a pool of 10
  threads) is started paused; on ``go`` it is resumed and the worker waits until the store
  is empty and every job it submitted has returned (or its scheduler thread died, or the
  timeout). Each job calls ``record(job_id)``; every execution is counted per job and
  scheduled run time (``EVENT_JOB_EXECUTED``). Several such workers share one store:
  APScheduler 3 does not coordinate them.
"""

from __future__ import annotations

import collections
import json
import logging
import sys
import threading
import time
from datetime import UTC, datetime

from apscheduler import __version__ as APSCHEDULER_VERSION
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
)
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import text

_lock = threading.Lock()
_runs: collections.Counter[str] = collections.Counter()
_last_run = [0.0]


def record(job_id: str) -> None:
    """The job: count this execution (the no-op a benchmark of the scheduler needs)."""
    with _lock:
        _runs[job_id] += 1
        _last_run[0] = time.time()


class _Problems(logging.Handler):
    """Keeps APScheduler's warnings and errors (the first few verbatim)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.first: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.first) < 5:
            self.first.append(record.getMessage().splitlines()[0][:300])


def _send(message: dict) -> None:
    print(json.dumps(message), flush=True)


def _scheduler(url: str) -> BackgroundScheduler:
    return BackgroundScheduler(jobstores={"default": SQLAlchemyJobStore(url=url)}, timezone=UTC)


def add(url: str, slots: int) -> dict:
    scheduler = _scheduler(url)
    scheduler.start(paused=True)
    due = datetime.now(UTC)
    start = time.perf_counter()
    for slot in range(slots):
        scheduler.add_job("__main__:record", "date", run_date=due, args=[f"slot-{slot}"], id=f"slot-{slot}",
                          misfire_grace_time=None)
    seconds = time.perf_counter() - start
    # No shutdown(): it would wake the paused loop in the stopped state, which then tries to
    # run the due jobs on the closed executor. The loop's thread is a daemon; exiting ends it.
    return {"seconds": seconds, "version": APSCHEDULER_VERSION}


def add_interval(url: str, slots: int, interval: float, start_at: float) -> dict:
    scheduler = _scheduler(url)
    scheduler.start(paused=True)
    start = datetime.fromtimestamp(start_at, UTC)
    end = datetime.fromtimestamp(start_at + (slots - 0.5) * interval, UTC)
    scheduler.add_job("__main__:record", "interval", seconds=interval, start_date=start, end_date=end,
                      args=["slot-interval"], id="slot-interval", coalesce=False, misfire_grace_time=None)
    return {"version": APSCHEDULER_VERSION}  # no shutdown(): see add()


def run(url: str, slots: int, timeout: float) -> dict:
    problems = _Problems()
    logging.getLogger("apscheduler").addHandler(problems)
    crashed: list[str] = []
    default_hook = threading.excepthook

    def on_thread_error(args: threading.ExceptHookArgs) -> None:
        crashed.append(f"{args.thread.name if args.thread else '?'}: {args.exc_type.__name__}: {args.exc_value}")
        default_hook(args)

    threading.excepthook = on_thread_error
    events: collections.Counter[str] = collections.Counter()
    names = {EVENT_JOB_SUBMITTED: "submitted", EVENT_JOB_EXECUTED: "executed", EVENT_JOB_ERROR: "error",
             EVENT_JOB_MISSED: "missed", EVENT_JOB_MAX_INSTANCES: "max_instances"}

    executed: collections.Counter[str] = collections.Counter()  # "job@scheduled ms" -> executions

    def listen(event) -> None:
        with _lock:
            events[names[event.code]] += 1
            if event.code == EVENT_JOB_EXECUTED:
                executed[f"{event.job_id}@{round(event.scheduled_run_time.timestamp() * 1000)}"] += 1

    scheduler = _scheduler(url)
    scheduler.add_listener(listen, sum(names))
    scheduler.start(paused=True)
    store = scheduler._lookup_jobstore("default")
    _send({"ready": True})
    sys.stdin.readline()
    go = time.time()
    scheduler.resume()
    left, outcome = None, "timeout"
    while time.time() - go < timeout:
        time.sleep(0.05)  # the times reported come from the executions, not from this loop
        with _lock:
            busy = events["submitted"] - events["executed"] - events["error"]
        if busy > 0:
            continue
        with store.engine.connect() as conn:
            left = conn.execute(text(f"SELECT count(*) FROM {store.jobs_t.name}")).scalar()
        if left == 0:
            outcome = "store empty"
            break
        if not scheduler._thread.is_alive():
            outcome = "scheduler thread died"
            break
    alive = scheduler._thread.is_alive()
    scheduler.shutdown(wait=True)  # also when its thread died: stops the executor, waits for its jobs
    with _lock:
        return {"go": go, "last_run": _last_run[0], "runs": dict(executed), "calls": sum(_runs.values()),
                "events": dict(events), "left": left,
                "outcome": outcome, "thread_alive": alive, "crashed": crashed, "warnings": problems.count,
                "first_warnings": problems.first}


def main() -> None:
    args = json.loads(sys.argv[1])
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args["command"] == "add":
        result = add(args["url"], args["slots"])
    elif args["command"] == "add_interval":
        result = add_interval(args["url"], args["slots"], args["interval"], args["start_at"])
    else:
        result = run(args["url"], args["slots"], args["timeout"])
    _send({"result": result})


if __name__ == "__main__":
    main()
