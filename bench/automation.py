"""The automation scheduler's own cost, exactly once included, against APScheduler and the
physical limit, side by side.

Usage::

    .venv/bin/python bench/automation.py [--smoke] [--slots N] [--skip-apscheduler]

What each side does (N slots, default 1,000; ``--smoke``: 30, no APScheduler):

- Conveyor (``_automation_conveyor.py``): a policy with an hourly cron schedule; two
  agents on two threads of this process, each with its own workspace and ``ManualClock``,
  tick every simulated hour together: N slots become N jobs (created once by whichever
  agent wins the policy's row lock, ON CONFLICT DO NOTHING on the slot), each claimed by
  one agent (compare-and-set under a lease) and run by the thread runner with an injected
  no-op retrain handler that counts its executions; the end of each job is recorded.
  On PostgreSQL (a fresh schema of the ``test`` database on 127.0.0.1:5432) and on the
  workspace's embedded SQLite. Timed from the first owed slot to the last one drained.
- APScheduler 3 (``_automation_apscheduler.py``, in ``bench/.venvs/apscheduler``, created
  with pip on first use): it has no simulated clock, so the N firings are N one-off
  ``date`` jobs, all due at once, added to a ``SQLAlchemyJobStore`` on the same PostgreSQL
  (timed), then run by two ``BackgroundScheduler`` processes sharing that store, released
  together (timed until the last execution). APScheduler 3 does not coordinate schedulers
  sharing a store ("Job stores must never be shared between schedulers", its user guide),
  so duplicate executions are expected and are counted, not treated as a failure of the run. The same with one scheduler process shows its cost
  without the race. And the cron case as users write it: one ``interval`` job firing every
  20 ms, N times, in two scheduler processes sharing the store; executions are counted
  per scheduled firing (that row's time is set by the interval, so it has no rate).
- The limit (``_automation_limit.py``): the bare SQL of an exactly-once scheduler per slot —
  an INSERT ... ON CONFLICT DO NOTHING RETURNING, an UPDATE ... WHERE status = 'pending'
  claim, an UPDATE finish — from two threads that both try every slot, on PostgreSQL
  through psycopg and on SQLite through sqlite3.

Exits 1 when Conveyor or the limit executed a slot twice or never, left a job in another
state than succeeded, or could not run (PostgreSQL unreachable included).
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _automation_common import (
    POSTGRES_CONNINFO,
    Outcome,
    ensure_apscheduler,
    postgres_reachable,
    postgres_schema,
    run_apscheduler,
)
from _automation_conveyor import run_conveyor
from _automation_limit import limit_postgres, limit_sqlite
from _harness import WORK_DIR, scratch
from rich.console import Console
from rich.table import Table
from tracking import conveyor_revision

import conveyor

INTERVAL = 0.02  # seconds between the firings of APScheduler's interval job
LIMIT_RUNS = 3  # the limit is cheap: its median of 3 is quoted
LIMIT = "bare SQL, 2 threads (limit)"


@dataclass(frozen=True)
class Config:
    """What to run, from the command line."""

    smoke: bool
    slots: int
    apscheduler: bool
    folder: Path


def parse_config(argv: list[str] | None, folder: Path) -> Config:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="30 slots, no APScheduler (CI)")
    parser.add_argument("--slots", type=int, help="schedule slots per side (default 1,000; 30 with --smoke)")
    parser.add_argument("--skip-apscheduler", action="store_true", help="Conveyor and the limit only")
    args = parser.parse_args(argv)
    slots = args.slots or (30 if args.smoke else 1000)
    if slots < 1:
        parser.error("--slots must be at least 1")
    return Config(smoke=args.smoke, slots=slots, apscheduler=not (args.smoke or args.skip_apscheduler), folder=folder)


# the table ------------------------------------------------------------------------------------


def versus(outcome: Outcome, conveyor_run: Outcome | None) -> str:
    """How Conveyor's rate compares with this row's (same store)."""
    if outcome is conveyor_run:
        return "(reference)"
    if outcome.paced:
        return "— (paced by its interval, not a rate)"
    if conveyor_run is None or not conveyor_run.ok or not outcome.ok or not outcome.rate or not conveyor_run.rate:
        return "—"
    factor = outcome.rate / conveyor_run.rate
    if "limit" in outcome.system:
        return f"Conveyor at {1 / factor:.1%} of the limit ({factor:,.1f}× slower)"
    if factor >= 1:
        return f"Conveyor {factor:,.1f}× slower"
    return f"Conveyor {1 / factor:,.1f}× faster"


def flagged(value: int, wrong: bool, tolerated: bool) -> str:
    """A count, red when it is wrong (yellow where being wrong is the point shown: APScheduler)."""
    if not wrong:
        return f"{value:,}"
    return f"[yellow]{value:,}[/]" if tolerated else f"[red]{value:,}[/]"


def table(cfg: Config, outcomes: list[Outcome], console: Console) -> None:
    reference = {o.store: o for o in outcomes if o.system.startswith("Conveyor")}
    grid = Table(title=f"Scheduling {cfg.slots:,} slots, each running a no-op job, end to end (exactly once "
                       "expected of Conveyor and the limit)", title_justify="left")
    for name in ("system", "store", "slots", "seconds", "slots/s", "ms per slot", "executions", "duplicates",
                 "missed", "ratio vs Conveyor"):
        grid.add_column(name, justify="left" if name in ("system", "store", "ratio vs Conveyor") else "right")
    for outcome in outcomes:
        tolerated = outcome.system.startswith("APScheduler")
        if not outcome.ok:
            grid.add_row(outcome.system, outcome.store, f"{outcome.slots:,}", "—", "—", "—", "—", "—", "—",
                         f"[red]failed: {outcome.error[:120]}[/]")
            continue
        paced = outcome.paced
        grid.add_row(outcome.system, outcome.store, f"{outcome.slots:,}", f"{outcome.seconds:,.2f}",
                     "(paced)" if paced else f"{outcome.rate:,.0f}",
                     "(paced)" if paced else f"{outcome.seconds / outcome.slots * 1000:,.2f}",
                     flagged(outcome.executions, outcome.executions != outcome.slots, tolerated),
                     flagged(outcome.duplicates, outcome.duplicates > 0, tolerated),
                     flagged(outcome.missed, outcome.missed > 0, tolerated),
                     versus(outcome, reference.get(outcome.store)))
    console.print(grid)
    breakdown(outcomes, console)
    for outcome in outcomes:
        for note in outcome.notes + outcome.failures:
            console.print(f"  {outcome.system} ({outcome.store}): {note}", soft_wrap=True)


def breakdown(outcomes: list[Outcome], console: Console) -> None:
    """Where each Conveyor agent's time goes per slot, one column pair per store."""
    measured = [o for o in outcomes if o.ok and o.breakdown]
    if not measured:
        return
    grid = Table(title="Where Conveyor's time goes: wall ms per slot per agent (mean of the 2 agents), each phase "
                       "without the phases nested in it", title_justify="left")
    grid.add_column("phase")
    for outcome in measured:
        grid.add_column(f"{outcome.store} ms", justify="right")
        grid.add_column("calls", justify="right")
    for index, (phase, _, _) in enumerate(measured[0].breakdown):
        cells = []
        for outcome in measured:
            _, millis, calls = outcome.breakdown[index]
            cells += [f"{millis:,.2f}", f"{calls:,.2f}"]
        grid.add_row(phase, *cells)
    grid.add_row("[bold]total (= ms per slot)[/]",
                 *[cell for o in measured for cell in (f"[bold]{o.seconds / o.slots * 1000:,.2f}[/]", "")])
    console.print(grid)


# running -------------------------------------------------------------------------------------


def describe(cfg: Config, console: Console, apscheduler: str) -> str | None:
    """Print what is compared; returns why PostgreSQL cannot be used, if it cannot."""
    problem = postgres_reachable()
    if problem is None:
        import psycopg

        with psycopg.connect(POSTGRES_CONNINFO) as conn:
            server = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        postgres = f"PostgreSQL {server.split()[0]}"
    else:
        postgres = f"[red]PostgreSQL unreachable ({problem})[/]"
    console.print(f"Conveyor {conveyor.__version__} at {conveyor_revision()} vs {apscheduler}; Python "
                  f"{sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, {postgres}; {os.cpu_count()} cores, "
                  f"load average {os.getloadavg()[0]:.2f} at the start", soft_wrap=True)
    console.print(f"{cfg.slots:,} slots per side{' (smoke)' if cfg.smoke else ''}. Conveyor: 2 agents on 2 threads, "
                  "ManualClock, tick + drain per hourly slot, injected no-op retrain handler. APScheduler 3: "
                  f"{cfg.slots:,} one-off date jobs added to a SQLAlchemyJobStore, then run by scheduler processes "
                  f"sharing it, and one interval job firing every {INTERVAL * 1000:.0f} ms {cfg.slots:,} times in 2 "
                  "processes (APScheduler 3 does not coordinate schedulers: duplicates are expected). "
                  "Limit: INSERT ... ON CONFLICT "
                  "DO NOTHING RETURNING + UPDATE claim + UPDATE finish per slot, 2 threads trying every slot.",
                  soft_wrap=True)
    return problem


def step(console: Console, label: str, run):
    """Run one side, saying how long it took."""
    console.print(f"  [dim]{label}...[/]")
    started = time.perf_counter()
    outcome = run()
    console.print(f"  [dim]  done in {time.perf_counter() - started:,.1f} s[/]")
    return outcome


def run_all(cfg: Config, console: Console, python: Path | None, postgres_problem: str | None) -> list[Outcome]:
    outcomes: list[Outcome] = []
    slots = cfg.slots

    def guarded(system: str, store: str, run) -> Outcome:
        try:
            return step(console, f"{system} on {store}", run)
        except Exception as error:  # noqa: BLE001 - shown in the table
            return Outcome(system, store, slots, error=f"{type(error).__name__}: {str(error).strip()[:500]}")

    if postgres_problem is None:
        def limit() -> Outcome:
            with postgres_schema("limit") as (_, conninfo):
                return limit_postgres(conninfo, slots)

        def ours() -> Outcome:
            with postgres_schema("conveyor") as (url, _):
                return run_conveyor("PostgreSQL", url, cfg.folder, slots)

        outcomes.append(guarded("Conveyor, 2 agents", "PostgreSQL", ours))
        if python is not None:
            for processes, interval in ((2, None), (1, None), (2, INTERVAL)):
                def theirs(processes: int = processes, interval: float | None = interval) -> Outcome:
                    return run_apscheduler(python, slots, processes, cfg.folder, interval)

                outcomes.append(guarded(f"APScheduler, {processes} process(es)", "PostgreSQL", theirs))
        outcomes.append(guarded(LIMIT, "PostgreSQL", lambda: median_of(LIMIT_RUNS, limit)))
    outcomes.append(guarded("Conveyor, 2 agents", "SQLite", lambda: run_conveyor("SQLite", None, cfg.folder, slots)))

    def sqlite_limit() -> Outcome:
        path = cfg.folder / f"limit-{uuid.uuid4().hex[:8]}.db"
        return limit_sqlite(path, slots)

    outcomes.append(guarded(LIMIT, "SQLite", lambda: median_of(LIMIT_RUNS, sqlite_limit)))
    return outcomes


def median_of(runs: int, run) -> Outcome:
    """The run of median time among ``runs`` fresh ones (a failed one is returned at once)."""
    outcomes = []
    for _ in range(runs):
        outcomes.append(run())
        if not outcomes[-1].ok or not outcomes[-1].exactly_once or outcomes[-1].failures:
            return outcomes[-1]
    chosen = sorted(outcomes, key=lambda o: o.seconds)[len(outcomes) // 2]
    if runs > 1:
        chosen.notes.append(f"median of {runs} runs, each on a fresh table: "
                            f"{', '.join(f'{o.seconds:.3f}' for o in outcomes)} s")
    return chosen


def main(argv: list[str] | None = None) -> int:
    """Run every side and print the table; 1 when Conveyor or the limit was not exactly once."""
    console = Console(width=None if sys.stdout.isatty() else 200)
    started = time.perf_counter()
    with scratch("automation-") as folder:
        cfg = parse_config(argv, folder)
        python, apscheduler = None, "APScheduler skipped" + (" (--smoke)" if cfg.smoke else " (--skip-apscheduler)")
        if cfg.apscheduler:
            python, found = ensure_apscheduler(console, WORK_DIR / "apscheduler-pip.log")
            apscheduler = f"APScheduler {found}" if python else f"[yellow]{found}; APScheduler is left out[/]"
        problem = describe(cfg, console, apscheduler)
        outcomes = run_all(cfg, console, python, problem)
    table(cfg, outcomes, console)
    failures = [] if problem is None else [f"PostgreSQL unreachable: {problem}"]
    for outcome in outcomes:
        if outcome.system.startswith("APScheduler"):
            continue
        where = f"{outcome.system} on {outcome.store}"
        if not outcome.ok:
            failures.append(f"{where} failed: {outcome.error}")
        elif not outcome.exactly_once:
            failures.append(f"{where}: {outcome.executions:,} executions of {outcome.slots:,} slots "
                            f"({outcome.duplicates:,} duplicate(s), {outcome.missed:,} missed: "
                            f"{outcome.duplicate_report()})")
        failures += [f"{where}: {failure}" for failure in outcome.failures]
    console.rule("summary")
    for outcome in outcomes:
        if outcome.ok and outcome.paced:
            console.print(f"{outcome.system} on {outcome.store}: {outcome.executions:,} executions of "
                          f"{outcome.slots:,} firings ({outcome.duplicates:,} duplicates, {outcome.missed:,} missed)",
                          soft_wrap=True)
        elif outcome.ok:
            console.print(f"{outcome.system} on {outcome.store}: {outcome.rate:,.0f} slots/s, "
                          f"{outcome.seconds / outcome.slots * 1000:,.2f} ms per slot, {outcome.executions:,} "
                          f"executions of {outcome.slots:,} slots ({outcome.duplicates:,} duplicates, "
                          f"{outcome.missed:,} missed)", soft_wrap=True)
    for failure in failures:
        console.print(f"[bold red]FAIL[/] {failure}", soft_wrap=True)
    console.print(f"Total time {time.perf_counter() - started:,.0f} s; load average {os.getloadavg()[0]:.2f} at the end.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
