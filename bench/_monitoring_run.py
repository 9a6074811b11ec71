"""Processes of ``bench/monitoring.py``: Evidently's virtualenv and the drift workers
(``_monitoring_worker.py``), run one at a time and watched.

A worker's peak RSS is its own ``VmHWM``. With Ray the work is spread over other
processes (the Ray head's and its workers, all started by the worker), so while such a
worker runs, the proportional set size (PSS: shared pages split between their users) of
its whole process tree is sampled too, and its peak is reported beside the worker's own.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _harness import BENCH_DIR, ensure_venv, start_worker
from rich.console import Console

EVIDENTLY_VENV = BENCH_DIR / ".venvs" / "evidently"
# Evidently 0.7 does not import with pandas 3.
EVIDENTLY_PACKAGES = ("evidently", "pandas<3", "pyarrow")
WORKER = "_monitoring_worker.py"
TIMEOUT = 3 * 3600  # seconds before a worker is killed (Evidently at 1M rows takes minutes)


EVIDENTLY_PROBE = ("import evidently, pandas, pyarrow, scipy; assert int(pandas.__version__.split('.')[0]) < 3; "
                   "print(evidently.__version__)")


def ensure_evidently(console: Console, log: Path) -> tuple[Path | None, str]:
    """The python of ``bench/.venvs/evidently`` and Evidently's version: reused when it
    imports Evidently with pandas < 3, else created or completed with pip (output in ``log``).
    (None, why) when pip fails."""
    return ensure_venv(EVIDENTLY_VENV, EVIDENTLY_PACKAGES, EVIDENTLY_PROBE, "Evidently", console, log)


@dataclass
class Outcome:
    """What one worker gave: its result (None if it failed) or the reason it failed."""

    tool: str
    result: dict[str, Any] | None = None
    error: str = ""
    tree_peak: int | None = None  # sampled peak PSS of the worker and its descendants (Ray runs)
    processes: int = 1  # most processes seen in its tree at once
    wall: float = 0.0  # seconds from start to exit
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.result is not None

    @property
    def seconds(self) -> float:
        """Median of the timed runs."""
        assert self.result is not None
        samples = sorted(self.result["seconds"])
        middle = len(samples) // 2
        return samples[middle] if len(samples) % 2 else (samples[middle - 1] + samples[middle]) / 2

    @property
    def columns(self) -> dict[str, dict[str, Any]]:
        assert self.result is not None
        return self.result["columns"]

    @property
    def flagged(self) -> set[str]:
        return {name for name, verdict in self.columns.items() if verdict["drifted"]}


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it, from ``/proc/*/stat``."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat[stat.rindex(")") + 2:].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def _pss(pid: int) -> int:
    """Proportional set size of ``pid`` in bytes (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as rollup:
            for line in rollup:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class _TreeSampler(threading.Thread):
    """Peak summed PSS of a process and its descendants, sampled every ``interval`` s
    (from ``/proc``: psutil is not a dependency of the project)."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak, self.processes = 0, 1
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.interval):
            tree = _descendants(self.pid)
            self.peak = max(self.peak, sum(_pss(pid) for pid in tree))
            self.processes = max(self.processes, len(tree))


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def run_worker(python: Path | str, tool: str, args: dict[str, Any], folder: Path, *, sample_tree: bool = False) -> Outcome:
    """Run one worker to completion (killed after ``TIMEOUT`` s); its outcome."""
    log = folder / f"{tool}-{args.get('executor') or 'local'}-{time.monotonic_ns()}.log"
    start = time.perf_counter()
    proc = start_worker(python, WORKER, {"tool": tool, **args}, log)
    sampler = _TreeSampler(proc.pid) if sample_tree else None
    if sampler:
        sampler.start()
    timer = threading.Timer(TIMEOUT, proc.kill)
    timer.start()
    outcome = Outcome(tool)
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            if line.startswith("{") and '"result"' in line:
                outcome.result = json.loads(line)["result"]
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.wait()
        timer.cancel()
        if sampler:
            sampler.done.set()
            sampler.join()
            outcome.tree_peak, outcome.processes = sampler.peak or None, sampler.processes
    outcome.wall = time.perf_counter() - start
    if outcome.result is None:
        how = "killed (timeout or out of memory)" if proc.returncode and proc.returncode < 0 else f"exited {proc.returncode}"
        outcome.error = f"{tool} worker {how} without a result:\n{_tail(log)}"
    return outcome
