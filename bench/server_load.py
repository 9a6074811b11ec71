"""The platform server under load: Conveyor's against ``mlflow server``, both on PostgreSQL.

Usage::

    .venv/bin/python bench/server_load.py [--smoke] [--clients 20] [--duration 60] [--workers 2]
                                          [--limit-duration S] [--skip-mlflow] [--no-auth]

``--clients`` client processes (``_server_load_client.py``, ``http.client``, keep-alive) load one
server at a time for ``--duration`` seconds, each looping over one training run: create it
with five params, log 10 batches of 100 metric points, end it, and search the experiment
(``metrics.loss < 0.5``, ordered by ``metrics.loss ASC``, at most 100 runs, answer checked).
Both tools get the same loop through their own REST API with equivalent JSON bodies:

- **Conveyor**: ``conveyor server start --workers N`` (``--auth``: every request carries an
  API token), on a fresh schema of the local PostgreSQL ``test`` database;
- **MLflow** (latest, ``bench/.venvs/mlflow`` with psycopg2): ``mlflow server --workers N``
  on a fresh schema of the same database (no authentication: MLflow's default);
- **the limit**: the same metric points as raw SQL, one ``executemany`` of 100 rows and a
  commit per batch, from as many connections, into a plain table with a primary key.

Printed: requests/s and metric points/s, client-side p50/p95/p99 latency per request kind,
errors, the points each database holds afterwards, the ratios, and where the machine's
cores went (server, PostgreSQL, the clients, anything else). ``--smoke`` (3 clients, 5 s,
one worker, Conveyor and the limit only) is what ``tests/test_bench_server.py`` runs. Exits 1 when
PostgreSQL is unreachable or the Conveyor side fails: any error, any wrong search answer,
or a point acknowledged but not stored.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _automation_common import POSTGRES_CONNINFO, postgres_reachable, postgres_schema
from _harness import Report, run_synchronised, scratch, times
from _pipelines_common import grid
from _server_load_client import BATCH, BATCHES, FILTER, MAX_RESULTS, OPERATIONS, ORDER
from _server_load_servers import (
    LIMIT_TABLE,
    CpuSampler,
    CpuSnapshot,
    create_limit_table,
    ensure_mlflow_server,
    limit_stored,
    mlflow_experiment,
    mlflow_server,
    mlflow_stored,
    prepare_conveyor,
    running,
)
from _serving_common import percentile
from _serving_servers import Server, tail
from rich.console import Console
from tracking import conveyor_revision

import conveyor

WORKER = "_server_load_client.py"
LABELS = {"create": "create run (5 params)", "log": f"log {BATCH} metric points", "end": "end run",
          "search": f"search, {MAX_RESULTS} runs at most", "insert": f"insert {BATCH} rows (limit)"}


@dataclass(frozen=True)
class Config:
    """What to run, from the command line."""

    smoke: bool
    clients: int
    duration: float  # seconds of load per server
    limit_duration: float  # seconds of the raw-SQL limit
    workers: int  # uvicorn workers of each server
    auth: bool  # Conveyor with API tokens (when this Conveyor can issue them)
    mlflow: Path | None  # the MLflow virtualenv's python; None: skipped
    mlflow_version: str  # or why MLflow is skipped
    folder: Path  # scratch folder of this run


@dataclass
class Outcome:
    """One target under load: every client's result, what the database held afterwards, CPU."""

    name: str
    results: list[dict[str, Any]] = field(default_factory=list)
    stored: int | None = None  # metric points in the database afterwards
    runs: int | None = None  # runs in the database afterwards
    cores: CpuSnapshot | None = None  # average cores busy during the load window
    broken: str | None = None  # why there are no figures

    @property
    def seconds(self) -> float:
        """The load window: first client's start to last client's end."""
        return max(r["end"] for r in self.results) - min(r["start"] for r in self.results)

    def latencies(self, operation: str) -> list[float]:
        """Every successful request's latency (seconds) of one kind, all clients together."""
        return [s for r in self.results for s in r["latencies"].get(operation, [])]

    @property
    def requests(self) -> int:
        """Answered (2xx) requests of every kind."""
        return sum(len(samples) for r in self.results for samples in r["latencies"].values())

    @property
    def errors(self) -> int:
        """Failed requests (non-2xx, transport errors, wrong search answers)."""
        return sum(sum(r["errors"].values()) for r in self.results)

    @property
    def points(self) -> int:
        """Metric points the server acknowledged."""
        return sum(r["points"] for r in self.results)

    @property
    def wrong(self) -> int:
        """Search answers that broke their filter, order or limit."""
        return sum(r["wrong"] for r in self.results)

    @property
    def first_wrong(self) -> str | None:
        """The first wrong answer of the first client that had one."""
        return next((r["first_wrong"] for r in self.results if r["first_wrong"]), None)

    @property
    def first_error(self) -> str | None:
        """The first error message of the first client that had one."""
        return next((r["first_error"] for r in self.results if r["first_error"]), None)

    def rate(self, count: float) -> float:
        """``count`` per second of the load window."""
        return count / self.seconds

    @property
    def client_cores(self) -> float:
        """Average cores the client processes used during their loops."""
        return sum(r["cpu"] for r in self.results) / self.seconds


# running the load --------------------------------------------------------------------------------------


def load(cfg: Config, name: str, args: dict[str, Any], duration: float, server: Server | None) -> Outcome:
    """``cfg.clients`` clients of ``args`` released together for ``duration`` seconds, CPU sampled meanwhile."""
    sampler = CpuSampler(server)
    sampler.start()
    try:
        specs = [{**args, "client": index, "duration": duration} for index in range(cfg.clients)]
        results = run_synchronised(sys.executable, WORKER, specs, cfg.folder)
    finally:
        sampler.stop()
    outcome = Outcome(name, results)
    outcome.cores = sampler.cores(min(r["start"] for r in results), max(r["end"] for r in results))
    return outcome


def measure_conveyor(cfg: Config, report: Report) -> Outcome:
    """Conveyor's server on a fresh PostgreSQL schema; its points are counted after it stops."""
    with postgres_schema("server_conveyor") as (url, _):
        side = prepare_conveyor(cfg.folder / "conveyor", url, cfg.auth)
        if cfg.auth and side.token is None:
            report.console.print("[yellow]This Conveyor cannot issue API tokens yet (no workspace.identity): "
                                 "its server runs --no-auth[/]")
        name = f"Conveyor {conveyor.__version__} ({'token auth' if side.token else 'no auth'})"
        with running(side.server(cfg.workers)) as server:
            if server.broken:
                report.fail(f"Conveyor's server did not start: {server.broken}\n{tail(server.log)}")
                return Outcome(name, broken=server.broken)
            outcome = load(cfg, name, {"target": "conveyor", "url": f"http://127.0.0.1:{server.port}",
                                       "token": side.token}, cfg.duration, server)
        outcome.stored, outcome.runs = side.stored()
    if outcome.errors:
        report.fail(f"{name}: {outcome.errors} errors under load; first: {outcome.first_error}")
    if outcome.wrong:
        report.fail(f"{name}: {outcome.wrong} wrong search answers under load; first: {outcome.first_wrong}")
    if outcome.stored != outcome.points:
        report.fail(f"{name}: {outcome.points:,} metric points acknowledged, {outcome.stored:,} stored")
    if not outcome.points:
        report.fail(f"{name}: no metric point was acknowledged in {cfg.duration:.0f} s")
    return outcome


def measure_mlflow(cfg: Config, console: Console) -> Outcome:
    """``mlflow server`` on a fresh PostgreSQL schema; a server that does not start is reported."""
    assert cfg.mlflow is not None
    name = f"MLflow {cfg.mlflow_version} (no auth)"
    folder = cfg.folder / "mlflow"
    folder.mkdir()
    with postgres_schema("server_mlflow") as (url, conninfo):
        with running(mlflow_server(cfg.mlflow, folder, url, cfg.workers)) as server:
            if server.broken:
                console.print(f"[yellow]MLflow's server did not start: {server.broken}[/]\n{tail(server.log)}")
                return Outcome(name, broken=server.broken)
            try:
                outcome = load(cfg, name, {"target": "mlflow", "url": f"http://127.0.0.1:{server.port}",
                                           "experiment_id": mlflow_experiment(server)}, cfg.duration, server)
            except RuntimeError as error:  # a client died: reported, the other targets still run
                console.print(f"[yellow]MLflow's load failed:[/] {error}\n{tail(server.log)}")
                return Outcome(name, broken=str(error).splitlines()[0])
        outcome.stored, outcome.runs = mlflow_stored(conninfo)
    return outcome


def measure_limit(cfg: Config) -> Outcome:
    """The same points as raw SQL from as many connections, into a fresh schema's plain table."""
    with postgres_schema("server_limit") as (_, conninfo):
        create_limit_table(conninfo)
        outcome = load(cfg, f"raw SQL, {cfg.clients} connections (limit)",
                       {"target": "sql", "conninfo": conninfo, "table": LIMIT_TABLE}, cfg.limit_duration, None)
        outcome.stored = limit_stored(conninfo)
    return outcome


# tables ------------------------------------------------------------------------------------------------


def _count(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def throughput_rows(outcomes: list[Outcome]) -> list[list[str]]:
    """One row per target: rates, counts, errors, stored points, ratios to Conveyor."""
    ours = outcomes[0]
    rows = []
    for outcome in outcomes:
        if outcome.broken:
            rows.append([outcome.name, "did not start", "", "", "", "", "", "", outcome.broken[:60]])
            continue
        searches = len(outcome.latencies("search"))
        rows_each = sum(r["search_rows"] for r in outcome.results) / searches if searches else 0
        if outcome is ours or ours.broken:
            versus = ""
        elif "limit" in outcome.name:
            versus = f"Conveyor at {ours.points / ours.seconds / outcome.rate(outcome.points):.1%} of the limit"
        else:
            versus = (f"Conveyor {times(ours.rate(ours.requests) / outcome.rate(outcome.requests))} the requests/s, "
                      f"{times(ours.rate(ours.points) / outcome.rate(outcome.points))} the points/s")
        rows.append([
            outcome.name, f"{outcome.rate(outcome.requests):,.0f}", f"{outcome.rate(outcome.points):,.0f}",
            "" if "limit" in outcome.name else _count(outcome.runs),
            f"{searches:,} ({rows_each:.0f} rows each)" if searches else "",
            f"{outcome.errors:,}", f"{outcome.wrong:,}" if searches else "",
            f"{outcome.points:,} / {_count(outcome.stored)}", versus,
        ])
    return rows


def _spread(outcome: Outcome | None, operation: str) -> str:
    samples = outcome.latencies(operation) if outcome and not outcome.broken else []
    if not samples:
        return ""
    return " / ".join(f"{percentile(samples, q) * 1000:,.1f}" for q in (50, 95, 99))


def latency_rows(conveyor_side: Outcome, mlflow_side: Outcome | None, limit: Outcome) -> list[list[str]]:
    """One row per request kind: p50 / p95 / p99 in ms for each tool, and the p50 ratio."""
    rows = []
    for operation in OPERATIONS:
        ours = conveyor_side.latencies(operation)
        theirs = mlflow_side.latencies(operation) if mlflow_side and not mlflow_side.broken else []
        versus = ""
        if ours and theirs:
            ratio = percentile(theirs, 50) / percentile(ours, 50)
            versus = f"{times(ratio)} faster" if ratio >= 1 else f"{times(1 / ratio)} slower"
        limit_cell = _spread(limit, "insert") if operation == "log" else ""
        rows.append([LABELS[operation], _spread(conveyor_side, operation), _spread(mlflow_side, operation), versus,
                     limit_cell])
    return rows


def cpu_rows(outcomes: list[Outcome]) -> list[list[str]]:
    """Average cores busy during each load window, by who used them."""
    rows = []
    for outcome in outcomes:
        if outcome.broken or outcome.cores is None:
            continue
        cores = outcome.cores
        other = cores.machine - cores.server - cores.postgres - outcome.client_cores
        rows.append([outcome.name, f"{cores.server:.2f}" if "limit" not in outcome.name else "",
                     f"{cores.postgres:.2f}", f"{outcome.client_cores:.2f}", f"{max(other, 0):.2f}",
                     f"{cores.machine:.2f} of {os.cpu_count()}"])
    return rows


def print_tables(cfg: Config, console: Console, outcomes: list[Outcome]) -> None:
    """The three tables, and each target's first error."""
    ours, limit = outcomes[0], outcomes[-1]
    theirs = outcomes[1] if len(outcomes) == 3 else None
    per_run = f"create (5 params), {BATCHES} × log {BATCH} points, end, search"
    grid(console, f"Load: {cfg.clients} clients × {cfg.duration:.0f} s per server ({per_run}), PostgreSQL, "
                  f"{cfg.workers} server workers; limit {cfg.limit_duration:.0f} s",
         ["target", "requests/s", "metric points/s", "runs stored", "searches", "errors", "wrong answers",
          "points acknowledged / stored", "ratio"], throughput_rows(outcomes))
    if not ours.broken:
        grid(console, f"Latency per request, client side, ms (p50 / p95 / p99); search: \"{FILTER}\" "
                      f"order by {ORDER}",
             ["request", "Conveyor", "MLflow" if theirs else "MLflow (skipped)", "Conveyor p50 is", "raw SQL (limit)"],
             latency_rows(ours, theirs, limit))
    grid(console, "Where the cores went: average cores busy during each load window",
         ["target", "server", "PostgreSQL", "clients", "other", "machine"], cpu_rows(outcomes))
    for outcome in outcomes:
        for what, message in (("error", outcome.first_error), ("wrong answer", outcome.first_wrong)):
            if message:
                console.print(f"  [yellow]{outcome.name}, first {what}:[/] {message}")


# main ------------------------------------------------------------------------------------------------------


def parse_config(argv: list[str] | None, console: Console, folder: Path) -> Config:
    """The command line as a ``Config`` (creates or completes MLflow's virtualenv when needed)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="3 clients, 5 s, Conveyor and the limit only")
    parser.add_argument("--clients", type=int, help="client processes (default 20)")
    parser.add_argument("--duration", type=float, help="seconds of load per server (default 60)")
    parser.add_argument("--limit-duration", type=float, help="seconds of the raw-SQL limit (default: --duration)")
    parser.add_argument("--workers", type=int, help="uvicorn workers of each server (default 2; 1 with --smoke)")
    parser.add_argument("--skip-mlflow", action="store_true", help="Conveyor and the limit only")
    parser.add_argument("--no-auth", action="store_true", help="Conveyor's server without API tokens")
    args = parser.parse_args(argv)
    duration = args.duration or (5.0 if args.smoke else 60.0)
    python, version = None, "skipped"
    if not (args.smoke or args.skip_mlflow):
        python, version = ensure_mlflow_server(console, folder / "pip.log")
        if python is None:
            console.print(f"[yellow]{version}: MLflow is left out[/]")
    return Config(
        smoke=args.smoke, clients=args.clients or (3 if args.smoke else 20), duration=duration,
        limit_duration=args.limit_duration or (2.0 if args.smoke else duration),
        workers=args.workers or (1 if args.smoke else 2),
        auth=not args.no_auth, mlflow=python, mlflow_version=version, folder=folder,
    )


def describe(cfg: Config, console: Console) -> None:
    """What is compared, on what, and how busy the machine already is."""
    import psycopg

    with psycopg.connect(POSTGRES_CONNINFO) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    postgres = row[0].split()[0] if row else "?"
    console.print(f"Conveyor {conveyor.__version__} at {conveyor_revision()} vs MLflow {cfg.mlflow_version}; "
                  f"Python {sys.version.split()[0]}, PostgreSQL {postgres}; {os.cpu_count()} cores shared by the "
                  f"servers, PostgreSQL and the {cfg.clients} clients; load average {_load()} at the start")


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def main(argv: list[str] | None = None) -> int:
    """Load each target in turn, print the tables; 1 when the Conveyor side failed."""
    console = Console(width=None if sys.stdout.isatty() else 180)
    problem = postgres_reachable()
    if problem:
        console.print(f"[bold red]PostgreSQL at {POSTGRES_CONNINFO} is unreachable: {problem}[/]")
        return 1
    started = time.perf_counter()
    report = Report(console, judge=False)
    with scratch("server-load-") as folder:
        cfg = parse_config(argv, console, folder)
        describe(cfg, console)
        outcomes = [measure_conveyor(cfg, report)]
        if cfg.mlflow is not None:
            outcomes.append(measure_mlflow(cfg, console))
        outcomes.append(measure_limit(cfg))
    print_tables(cfg, console, outcomes)
    console.print(f"Load average {_load()} at the end. Total time {time.perf_counter() - started:,.0f} s.")
    if report.failures:
        console.print(f"[bold red]{len(report.failures)} Conveyor failure(s)[/]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
