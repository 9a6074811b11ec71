"""Plumbing of ``bench/tracking.py``: tables, progress, scratch folders, worker processes, MLflow.

Workers speak the JSON-lines protocol described in ``_workload.py``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

BENCH_DIR = Path(__file__).resolve().parent
MLFLOW_VENV = BENCH_DIR / ".venvs" / "mlflow"
WORK_DIR = BENCH_DIR / ".work"


@dataclass
class Report:
    """Prints tables and remembers targets and failures of the Conveyor side."""

    console: Console
    judge: bool = True  # False (smoke sizes): targets are shown as not judged
    failures: list[str] = field(default_factory=list)
    targets: list[tuple[str, bool]] = field(default_factory=list)

    def table(self, title: str, rows: list[tuple[str, str, str]]) -> None:
        """One Rich table with columns tool / figure / ratio."""
        table = Table(title=title, title_justify="left", show_lines=False)
        for name, justify in (("tool", "left"), ("figure", "right"), ("ratio", "left")):
            table.add_column(name, justify=justify)  # type: ignore[arg-type]
        for row in rows:
            table.add_row(*row)
        self.console.print(table)

    def target(self, name: str, ok: bool) -> str:
        """Record a target and return its mark for a table cell."""
        if not self.judge:
            return "(not judged at smoke sizes)"
        self.targets.append((name, ok))
        return "[green]✓[/]" if ok else "[red]✗ MISSED[/]"

    def fail(self, message: str) -> None:
        """Record a failure of the Conveyor side (the exit status becomes 1)."""
        self.failures.append(message)
        self.console.print(f"[bold red]FAIL[/] {message}")


# formatting --------------------------------------------------------------------------


def per_second(count: int, seconds: float) -> str:
    """``12,345 points/s (0.81 s)``."""
    return f"{count / seconds:,.0f} points/s ({seconds:.2f} s)"


def millis(seconds: float) -> str:
    """``12.3 ms`` (``0.042 ms`` below one millisecond)."""
    return f"{seconds * 1000:,.1f} ms" if seconds >= 0.001 else f"{seconds * 1000:.3f} ms"


def times(value: float) -> str:
    """``123×`` or ``0.42×``."""
    return f"{value:,.0f}×" if value >= 10 else f"{value:.2f}×"


@contextlib.contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A fresh folder under ``bench/.work``, removed afterwards."""
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=WORK_DIR))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def count_sqlite_rows(db: Path, table: str) -> int:
    """Rows of ``table`` in the SQLite file ``db``."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


@contextlib.contextmanager
def track(console: Console, label: str, total: int) -> Iterator[Callable[[int], None]]:
    """Progress of a long loop: a Rich bar on a terminal; otherwise a line per quarter
    once the loop has run for 5 s. Yields ``update(done)``."""
    if console.is_terminal:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task(label, total=total)
            yield lambda done: progress.update(task, completed=done)
        return
    start, shown = time.perf_counter(), [0]

    def update(done: int) -> None:
        if done * 4 // total > shown[0]:
            shown[0] = done * 4 // total
            if time.perf_counter() - start >= 5:
                console.print(f"  {label}: {done:,}/{total:,} ({time.perf_counter() - start:,.0f} s)")

    yield update


def median_time(call: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median seconds of ``repeats`` calls after one warm-up, and the last result."""
    result = call()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), result


# workers (JSON lines, see _workload.py) -----------------------------------------------


def _read_until(proc: subprocess.Popen[str], key: str, on_progress: Callable[[int], None] | None) -> Any:
    assert proc.stdout is not None
    for line in proc.stdout:
        if not line.startswith("{"):
            continue
        message = json.loads(line)
        if "progress" in message and on_progress is not None:
            on_progress(message["progress"])
        if key in message:
            return message[key]
    raise RuntimeError(f"worker {proc.args!r} exited before sending {key!r}")


def _stderr_tail(path: Path) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-15:])


def start_worker(python: Path | str, script: str, args: dict[str, Any], log: Path) -> subprocess.Popen[str]:
    """Start ``python bench/<script> '<json>'`` with stderr going to ``log``."""
    with open(log, "w") as stderr:
        return subprocess.Popen(
            [str(python), str(BENCH_DIR / script), json.dumps(args)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=log.parent,
        )


def call_worker(
    python: Path | str, script: str, args: dict[str, Any], on_progress: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """Run a worker to completion and return its result."""
    with scratch("worker-") as folder:
        log = folder / "stderr.log"
        proc = start_worker(python, script, args, log)
        try:
            result = _read_until(proc, "result", on_progress)
        except RuntimeError as error:
            proc.wait()
            raise RuntimeError(f"{error}\n{_stderr_tail(log)}") from None
        proc.wait()
        return result


class Mlflow:
    """Runs ``_mlflow_worker.py`` commands in the MLflow virtualenv.

    Fresh databases are copies of one database MLflow created and migrated once, so no
    worker spends its time (untimed anyway) in MLflow's schema migrations.
    """

    def __init__(self, python: Path, console: Console) -> None:
        self.python = python
        self.console = console
        self.template: Path | None = None
        self.version = subprocess.run([python, "-c", "import mlflow; print(mlflow.__version__)"],
                                      capture_output=True, text=True, check=True).stdout.strip()

    def fresh_db(self, folder: Path) -> Path:
        """A new, empty MLflow SQLite database in ``folder`` (with the benchmark experiment)."""
        if self.template is None:
            WORK_DIR.mkdir(parents=True, exist_ok=True)
            self.template = Path(tempfile.mkdtemp(prefix="mlflow-template-", dir=WORK_DIR)) / "mlflow.db"
            self.call({"command": "init", "db": str(self.template)})
        shutil.copyfile(self.template, folder / "mlflow.db")
        return folder / "mlflow.db"

    def call(self, args: dict[str, Any], total: int = 0, label: str = "") -> dict[str, Any]:
        """Run a worker command, with progress when ``total`` is given."""
        if not total:
            return call_worker(self.python, "_mlflow_worker.py", args)
        with track(self.console, label, total) as update:
            return call_worker(self.python, "_mlflow_worker.py", args, update)

    def close(self) -> None:
        """Remove the template database."""
        if self.template is not None:
            shutil.rmtree(self.template.parent, ignore_errors=True)


def ensure_mlflow(console: Console, create: bool) -> Path | None:
    """The MLflow virtualenv's python, created with the latest ``mlflow`` if missing and ``create``."""
    python = MLFLOW_VENV / "bin" / "python"
    ok = python.exists() and subprocess.run([python, "-c", "import mlflow"], capture_output=True).returncode == 0
    if ok or not create:
        return python if ok else None
    console.print(f"Creating {MLFLOW_VENV} and installing mlflow (first use only)...")
    base = shutil.which("python3") or sys.executable
    subprocess.run([base, "-m", "venv", "--clear", str(MLFLOW_VENV)], check=True)
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip", "mlflow"], check=True)
    return python


def run_synchronised(python: Path | str, script: str, args: list[dict[str, Any]], folder: Path) -> list[dict[str, Any]]:
    """Start one worker per ``args``, release them together, return their results."""
    procs = [start_worker(python, script, a, folder / f"worker-{i}.log") for i, a in enumerate(args)]
    try:
        for proc in procs:
            _read_until(proc, "ready", None)
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.close()
        results = [_read_until(proc, "result", None) for proc in procs]
    except RuntimeError as error:
        for proc in procs:  # the others may be waiting for "go": stop them
            if proc.poll() is None:
                proc.kill()
        tails = "\n".join(_stderr_tail(folder / f"worker-{i}.log") for i in range(len(procs)))
        raise RuntimeError(f"{error}\n{tails}") from None
    finally:
        for proc in procs:
            proc.wait()
    return results


def ensure_venv(venv: Path, packages: list[str], probe: str, label: str, console: Console,
                log: Path) -> tuple[Path | None, str]:
    """The python of ``venv`` and what ``probe`` prints (the rival's version): reused when the
    probe runs, else the venv is created or completed with pip (output in ``log``).
    (None, why) when pip fails."""
    python = venv / "bin" / "python"

    def version() -> str | None:
        if not python.exists():
            return None
        done = subprocess.run([str(python), "-c", probe], check=False, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else None

    found = version()
    if found:
        return python, found
    console.print(f"Installing {label} into {venv} (first use only; pip output in {log})...")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as out:
        if not python.exists():
            subprocess.run([shutil.which("python3") or sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--upgrade", "pip", *packages],
                       stdout=out, stderr=subprocess.STDOUT, check=False)
    found = version()
    if not found:
        return None, f"pip could not install a working {label} into {venv} (see {log})"
    return python, found
