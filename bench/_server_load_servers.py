"""The servers of ``bench/server_load.py`` and what is measured around them.

Each server runs on a fresh schema of the local PostgreSQL ``test`` database (the schemas
of ``bench/automation.py``), as a process group of its own with the same number of
uvicorn workers: ``conveyor server start`` and ``mlflow server`` (MLflow's virtualenv,
with psycopg2). The servers are ``_serving_servers.Server``s, so starting, probing and
stopping are those of the serving benchmark. Before a server starts, its schema is
migrated and the benchmark experiment created, untimed. Afterwards the metric points
each database holds are counted: Conveyor's after its write-ahead segments are replayed
(a stopped server's last points may be only there), MLflow's in its ``metrics`` table.

CPU time is read from ``/proc`` (psutil is not a dependency): the server's process
tree, PostgreSQL's processes (backends that exited are in the postmaster's reaped-children
time) and the whole machine, so a table can say where the two cores went.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from _harness import MLFLOW_VENV, ensure_venv
from _monitoring_run import _descendants
from _server_load_client import EXPERIMENT
from _serving_common import child_env, free_port
from _serving_servers import READY_SECONDS, Server, Variant, wait_ready
from rich.console import Console

MLFLOW_PACKAGES = ("mlflow", "psycopg2-binary")
MLFLOW_PROBE = "import mlflow, psycopg2; print(mlflow.__version__)"
BENCH_USER_ROLES = ["data-scientist"]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def ensure_mlflow_server(console: Console, log: Path) -> tuple[Path | None, str]:
    """The python of ``bench/.venvs/mlflow`` (the tracking benchmark's) with the latest MLflow
    and psycopg2, and MLflow's version; (None, why) when pip fails."""
    return ensure_venv(MLFLOW_VENV, list(MLFLOW_PACKAGES), MLFLOW_PROBE, "MLflow with psycopg2", console, log)


# server processes ------------------------------------------------------------------------------------


def _not_started_by_variant(*_: Any) -> tuple[list[str], dict[str, str]]:
    raise NotImplementedError("the load benchmark starts its servers itself (launch)")


def _variant(key: str, label: str, tool: str, ready: str) -> Variant:
    """A ``Variant`` naming a server and its readiness route; the load clients build their
    own requests, so its request fields are unused here."""
    return Variant(key, label, tool, ready, path=lambda _: "", body=lambda _: b"", command=_not_started_by_variant)


def launch(variant: Variant, argv: list[str], env: dict[str, str], port: int, folder: Path) -> Server:
    """Start ``argv`` in its own process group (output in ``folder``) and wait until
    ``variant.ready`` answers 200; ``broken`` says why when it does not."""
    log = folder / f"server-{variant.key}.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=child_env(**env), cwd=folder,
                                   start_new_session=True)
    server = Server(variant, "", port, process, log)
    wait_ready(server, time.monotonic() + READY_SECONDS)
    return server


@contextlib.contextmanager
def running(server: Server) -> Iterator[Server]:
    """Stop the server (its whole process group) when the block ends."""
    try:
        yield server
    finally:
        server.stop()


# Conveyor --------------------------------------------------------------------------------------------


def issue_token(workspace: Any) -> str | None:
    """An API token of the workspace's default user, created with role ``data-scientist``;
    None when this Conveyor has no identity service yet (the server then runs ``--no-auth``)."""
    if not hasattr(type(workspace), "identity"):
        return None
    identity = workspace.identity
    user = workspace.default_actor.name
    if identity.find_user(user) is None:
        identity.create_user(user, roles=BENCH_USER_ROLES)
    token, _ = identity.create_token(user, name="server-load")
    return token


@dataclass
class ConveyorSide:
    """A prepared Conveyor workspace on PostgreSQL: its folder, metadata URL and token."""

    folder: Path
    url: str
    token: str | None

    def server(self, workers: int) -> Server:
        """``conveyor server start`` on a free port with ``workers`` processes (auth on when there is a token)."""
        port = free_port()
        argv = [sys.executable, "-m", "conveyor", "-w", str(self.folder), "server", "start", "--port", str(port),
                "--workers", str(workers), "--auth" if self.token else "--no-auth"]
        variant = _variant("conveyor", "Conveyor server", "conveyor", "/healthz")
        return launch(variant, argv, {"CONVEYOR_METADATA__URL": self.url}, port, self.folder)

    def stored(self) -> tuple[int, int]:
        """(metric points, runs) in the database, after replaying the stopped server's segments."""
        from conveyor.core.config import load_settings
        from conveyor.core.workspace import Workspace

        workspace = Workspace(load_settings(self.folder, metadata={"url": self.url}))  # a fresh one: recovers
        try:
            return workspace.tracking.count_metric_points(), workspace.tracking.count_runs()
        finally:
            workspace.close()


def prepare_conveyor(folder: Path, url: str, auth: bool) -> ConveyorSide:
    """Migrate the schema at ``url``, create the experiment and, with ``auth``, a token (untimed)."""
    import conveyor

    folder.mkdir(parents=True, exist_ok=True)
    workspace = conveyor.open_workspace(folder, metadata={"url": url})
    try:
        workspace.tracking.ensure_experiment(EXPERIMENT)
        token = issue_token(workspace) if auth else None
    finally:
        workspace.close()
    return ConveyorSide(folder, url, token)


# MLflow ----------------------------------------------------------------------------------------------


def mlflow_server(python: Path, folder: Path, url: str, workers: int) -> Server:
    """``mlflow server`` on the PostgreSQL schema of the SQLAlchemy ``url`` (psycopg2 driver),
    artifacts in ``folder``, telemetry off (``child_env``)."""
    port = free_port()
    backend = url.replace("postgresql+psycopg://", "postgresql+psycopg2://", 1)
    binaries = python.parent  # it starts uvicorn by name
    argv = [str(binaries / "mlflow"), "server", "--backend-store-uri", backend, "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--artifacts-destination", str(folder / "mlartifacts"),
            "--uvicorn-opts", "--no-access-log"]  # as Conveyor's server: no line per request
    # No job runner: its huey consumers (about 8 processes importing MLflow) run GenAI jobs, not tracking.
    env = {"PATH": f"{binaries}{os.pathsep}{os.environ['PATH']}", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    return launch(_variant("mlflow", "MLflow server", "mlflow", "/health"), argv, env, port, folder)


def mlflow_experiment(server: Server) -> str:
    """The id of the benchmark experiment, created through the REST API."""
    answer = httpx.post(f"http://127.0.0.1:{server.port}/api/2.0/mlflow/experiments/create",
                        json={"name": EXPERIMENT}, timeout=30)
    answer.raise_for_status()
    return answer.json()["experiment_id"]


def mlflow_stored(conninfo: str) -> tuple[int, int]:
    """(metric points, runs) in MLflow's tables of the schema ``conninfo`` selects."""
    import psycopg

    with psycopg.connect(conninfo) as conn:
        points = conn.execute("SELECT count(*) FROM metrics").fetchone()
        runs = conn.execute("SELECT count(*) FROM runs").fetchone()
    assert points is not None and runs is not None
    return points[0], runs[0]


# the limit's table -----------------------------------------------------------------------------------


LIMIT_TABLE = "metric_points"


def create_limit_table(conninfo: str) -> None:
    """A plain table of points keyed by (run, key, step): what any point store writes at least."""
    import psycopg

    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE {LIMIT_TABLE} (run_id text NOT NULL, key text NOT NULL, "
                     "value double precision NOT NULL, step bigint NOT NULL, ts bigint NOT NULL, "
                     "PRIMARY KEY (run_id, key, step))")


def limit_stored(conninfo: str) -> int:
    """Rows of the limit's table."""
    import psycopg

    with psycopg.connect(conninfo) as conn:
        row = conn.execute(f"SELECT count(*) FROM {LIMIT_TABLE}").fetchone()
    assert row is not None
    return row[0]


# CPU accounting --------------------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name ([] if the process is gone)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return text[text.rindex(")") + 2:].split()


def _cpu_of(pids: list[int], reaped: bool = False) -> float:
    """CPU seconds of ``pids`` (utime + stime; with ``reaped`` their waited-for children's too)."""
    total = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:
            total += int(fields[11]) + int(fields[12]) + (int(fields[13]) + int(fields[14]) if reaped else 0)
    return total / CLOCK_TICKS


def _postgres_pids() -> tuple[list[int], list[int]]:
    """(the postmasters, every other PostgreSQL process) on this machine."""
    masters, others = [], []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() != "postgres":
                continue
        except OSError:
            continue
        fields = _stat_fields(int(entry.name))
        if fields:
            (others if _is_postgres(int(fields[1])) else masters).append(int(entry.name))
    return masters, others


def _is_postgres(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() == "postgres"
    except OSError:
        return False


def _machine_busy() -> float:
    """CPU seconds all cores have spent busy since boot (``/proc/stat``: all but idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) / CLOCK_TICKS


@dataclass(frozen=True)
class CpuSnapshot:
    """Cumulative CPU seconds of the machine, a server's process tree and PostgreSQL."""

    machine: float
    server: float
    postgres: float

    @classmethod
    def take(cls, server: Server | None) -> CpuSnapshot:
        """Read them now (``server`` None: the limit, no server)."""
        masters, others = _postgres_pids()
        tree = _descendants(server.process.pid) if server is not None else []
        return cls(_machine_busy(), _cpu_of(tree), _cpu_of(masters, reaped=True) + _cpu_of(others))

    def since(self, before: CpuSnapshot) -> CpuSnapshot:
        """The CPU seconds spent between ``before`` and this snapshot."""
        return CpuSnapshot(self.machine - before.machine, self.server - before.server, self.postgres - before.postgres)


class CpuSampler(threading.Thread):
    """``CpuSnapshot``s every ``interval`` seconds while the load runs, so the CPU of the load
    window alone (not the clients' start-up) can be told afterwards."""

    def __init__(self, server: Server | None, interval: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.server, self.interval = server, interval
        self.samples: list[tuple[float, CpuSnapshot]] = []
        self.done = threading.Event()

    def run(self) -> None:
        while True:
            self.samples.append((time.time(), CpuSnapshot.take(self.server)))
            if self.done.wait(self.interval):
                self.samples.append((time.time(), CpuSnapshot.take(self.server)))
                return

    def stop(self) -> None:
        """Take a last sample and end."""
        self.done.set()
        self.join()

    def cores(self, start: float, end: float) -> CpuSnapshot | None:
        """Average cores busy between the first sample at or after ``start`` and the last one
        at or before ``end`` (None if the window held fewer than two samples)."""
        inside = [(at, snap) for at, snap in self.samples if start <= at <= end]
        if len(inside) < 2:
            return None
        (first_at, first), (last_at, last) = inside[0], inside[-1]
        spent, seconds = last.since(first), last_at - first_at
        return CpuSnapshot(spent.machine / seconds, spent.server / seconds, spent.postgres / seconds)
