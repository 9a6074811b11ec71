"""What the sides of ``bench/automation.py`` share: the outcome of one side, fresh
PostgreSQL schemas, and APScheduler's virtualenv and worker processes."""

from __future__ import annotations

import collections
import contextlib
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from _harness import BENCH_DIR, call_worker, ensure_venv, run_synchronised
from rich.console import Console

POSTGRES_CONNINFO = "host=127.0.0.1 port=5432 user=postgres dbname=test"
POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
APSCHEDULER_VENV = BENCH_DIR / ".venvs" / "apscheduler"
APSCHEDULER_PACKAGES = ("apscheduler>=3.10,<4", "sqlalchemy", "psycopg[binary]")
APSCHEDULER_WORKER = "_automation_apscheduler.py"


@dataclass
class Outcome:
    """One side's run: how long ``slots`` slots took and how often each was executed."""

    system: str
    store: str
    slots: int
    seconds: float = 0.0
    runs: dict[str, int] = field(default_factory=dict)  # slot key -> executions
    notes: list[str] = field(default_factory=list)
    error: str = ""  # the side could not run at all
    failures: list[str] = field(default_factory=list)  # it ran, but left the store wrong
    breakdown: list[tuple[str, float, float]] = field(default_factory=list)  # (phase, ms, calls) per slot
    paced: bool = False  # its time is set by a trigger's interval, not by its own cost

    @property
    def ok(self) -> bool:
        return not self.error

    @property
    def executions(self) -> int:
        return sum(self.runs.values())

    @property
    def duplicates(self) -> int:
        """Executions beyond the first of a slot."""
        return sum(count - 1 for count in self.runs.values() if count > 1)

    @property
    def missed(self) -> int:
        """Slots never executed."""
        return self.slots - len(self.runs)

    @property
    def exactly_once(self) -> bool:
        return self.ok and self.duplicates == 0 and self.missed == 0 and self.executions == self.slots

    @property
    def rate(self) -> float:
        """Slots per second, end to end."""
        return self.slots / self.seconds if self.seconds else 0.0

    def duplicate_report(self, limit: int = 5) -> str:
        """``slot-3 ×2, slot-9 ×2 …`` and the slots missed, for a failure message."""
        extra = collections.Counter({key: count for key, count in self.runs.items() if count > 1})
        parts = [f"{key} ×{count}" for key, count in extra.most_common(limit)]
        if len(extra) > limit:
            parts.append(f"… {len(extra) - limit} more")
        if self.missed:
            parts.append(f"{self.missed} slot(s) never executed")
        return ", ".join(parts)


def postgres_reachable() -> str | None:
    """None when the local PostgreSQL answers, else why not."""
    import psycopg

    try:
        with psycopg.connect(POSTGRES_CONNINFO, connect_timeout=5) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as error:
        return str(error).strip().splitlines()[0]
    return None


@contextlib.contextmanager
def postgres_schema(prefix: str) -> Iterator[tuple[str, str]]:
    """A fresh schema in the ``test`` database, dropped afterwards: yields its SQLAlchemy URL
    and its psycopg conninfo, both with ``search_path`` set to it."""
    import psycopg

    schema = f"bench_{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES_CONNINFO, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield (f"{POSTGRES_URL}?options=-csearch_path%3D{schema}",
                   f"{POSTGRES_CONNINFO} options=-csearch_path={schema}")
        finally:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


# APScheduler --------------------------------------------------------------------------------------


APSCHEDULER_PROBE = ("import apscheduler, sqlalchemy, psycopg; from apscheduler.jobstores.sqlalchemy import "
                     "SQLAlchemyJobStore; assert apscheduler.__version__.startswith('3.'); "
                     "print(apscheduler.__version__)")


def ensure_apscheduler(console: Console, log: Path) -> tuple[Path | None, str]:
    """The python of ``bench/.venvs/apscheduler`` and APScheduler's version: reused when it
    imports APScheduler 3 with SQLAlchemy and psycopg, else created or completed with pip
    (output in ``log``). (None, why) when pip fails."""
    return ensure_venv(APSCHEDULER_VENV, APSCHEDULER_PACKAGES, APSCHEDULER_PROBE, "APScheduler 3", console, log)


def run_apscheduler(python: Path, slots: int, processes: int, folder: Path, interval: float | None = None) -> Outcome:
    """APScheduler 3 on a ``SQLAlchemyJobStore`` in a fresh PostgreSQL schema, run by
    ``processes`` scheduler processes sharing it, every execution counted.

    Without ``interval``: ``slots`` one-off jobs all due at once, added (timed) then run
    (timed until the last execution). With ``interval``: one job firing every ``interval``
    seconds ``slots`` times, from a start a few seconds ahead (timed from the first
    scheduled firing to the last execution: paced by the interval, not a rate)."""
    plural = "es" if processes > 1 else ""
    if interval is None:
        name = f"APScheduler, {processes} process{plural}, {slots:,} date jobs"
    else:
        name = f"APScheduler, {processes} process{plural}, 1 job every {interval * 1000:,.0f} ms"
    outcome = Outcome(name, "PostgreSQL", slots)
    with postgres_schema("aps") as (url, _):
        if interval is None:
            added = call_worker(python, APSCHEDULER_WORKER, {"command": "add", "url": url, "slots": slots})
            timeout = 60 + slots * 0.05
        else:
            start_at = time.time() + 5  # after the workers below are up and resumed
            call_worker(python, APSCHEDULER_WORKER, {"command": "add_interval", "url": url, "slots": slots,
                                                     "interval": interval, "start_at": start_at})
            timeout = 60 + slots * interval * 2
        args = {"command": "run", "url": url, "slots": slots, "timeout": timeout}
        results = run_synchronised(python, APSCHEDULER_WORKER, [args] * processes, folder)
    runs: collections.Counter[str] = collections.Counter()
    for result in results:
        runs.update(result["runs"])
    outcome.runs = dict(runs)
    last = max((r["last_run"] for r in results if r["calls"]), default=0.0)
    if interval is None:
        run_seconds = last - min(r["go"] for r in results) if last else 0.0
        outcome.seconds = added["seconds"] + run_seconds
        outcome.notes.append(f"adding the {slots:,} jobs {added['seconds']:.2f} s + running them {run_seconds:.2f} s")
    else:
        outcome.seconds = last - start_at if last else 0.0
        outcome.paced = True
        outcome.notes.append(f"paced by the {interval * 1000:,.0f} ms interval: {slots:,} firings take at least "
                             f"{(slots - 1) * interval:,.1f} s whatever the scheduler's cost")
    calls = sum(r["calls"] for r in results)
    if calls != outcome.executions:
        outcome.notes.append(f"[yellow]the job function ran {calls:,} times, APScheduler reported "
                             f"{outcome.executions:,} executions[/]")
    for index, result in enumerate(results, 1):
        mine = result["calls"]
        if result["crashed"]:
            outcome.notes.append(f"process {index}: its scheduler thread died after {mine:,} execution(s) "
                                 f"({result['crashed'][0]}); the process lives on, scheduling nothing")
        elif processes > 1:
            outcome.notes.append(f"process {index}: {mine:,} execution(s)")
        if result["outcome"] == "timeout":
            outcome.notes.append(f"process {index}: still waiting after {timeout:.0f} s "
                                 f"({result['left']} job(s) left in the store)")
        if result["warnings"]:
            outcome.notes.append(f"process {index}: {result['warnings']} warning(s) logged, first: "
                                 f"{result['first_warnings'][0]}")
    return outcome
