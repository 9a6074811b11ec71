"""Clocks of ``bench/pipelines.py``: wall time, CPU time of this process and all its
descendants (to show how many cores were busy), and the moments tuning trials finish.

CPU time: ``resource.getrusage`` counts a child only once it has been waited for, and
Ray's worker processes are children of its ``raylet``, which is killed, not waited for,
when Ray shuts down: measured here, ``RUSAGE_CHILDREN`` saw 1.8 of the 8 CPU-seconds four
Ray tasks burned. So on Linux a thread samples ``/proc/<pid>/stat`` of every descendant
every ``INTERVAL`` seconds and keeps each process's last reading (a process that exits
between samples loses at most its last ``INTERVAL`` of CPU); elsewhere ``getrusage`` of
this process plus its waited-for children is the fallback.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

INTERVAL = 0.2
PROC = Path("/proc")
TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat(pid: str) -> tuple[int, str, float] | None:
    """(parent pid, start time, utime + stime seconds) of one process, None if it is gone."""
    try:
        text = (PROC / pid / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
    return int(fields[1]), fields[19], (int(fields[11]) + int(fields[12])) / TICKS


def _tree_cpu(root: int) -> dict[tuple[int, str], float]:
    """CPU seconds of ``root`` and every descendant, keyed by (pid, start time)."""
    stats = {}
    for entry in os.scandir(PROC):
        if entry.name.isdigit():
            stat = _stat(entry.name)
            if stat is not None:
                stats[int(entry.name)] = stat
    children: dict[int, list[int]] = {}
    for pid, (parent, _, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    found, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            found[(pid, stats[pid][1])] = stats[pid][2]
            todo.extend(children.get(pid, []))
    return found


def _rusage() -> float:
    own, waited = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + waited.ru_utime + waited.ru_stime


class CpuMeter:
    """CPU seconds used by this process tree between ``start()`` and ``stop()``."""

    method = "/proc sampling of the process tree" if PROC.joinpath("self", "stat").exists() else "getrusage"

    def __init__(self) -> None:
        self._base: dict[tuple[int, str], float] = {}
        self._last: dict[tuple[int, str], float] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._rusage = 0.0

    def start(self) -> CpuMeter:
        if self.method == "getrusage":
            self._rusage = _rusage()
            return self
        self._base = _tree_cpu(os.getpid())
        self._last = dict(self._base)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(INTERVAL):
            self._last.update(_tree_cpu(os.getpid()))

    def stop(self) -> float:
        """CPU seconds since ``start()``."""
        if self.method == "getrusage":
            return _rusage() - self._rusage
        self._stop.set()
        assert self._thread is not None
        self._thread.join()
        self._last.update(_tree_cpu(os.getpid()))
        return sum(value - self._base.get(key, 0.0) for key, value in self._last.items())


@dataclass
class Measured:
    """One timed call: wall seconds, CPU seconds of the process tree, and its result."""

    wall: float
    cpu: float
    result: Any = None
    trial_seconds: list[float] = field(default_factory=list)  # filled in by the tuning scenario

    @property
    def cores(self) -> float:
        """Cores busy on average: CPU seconds over wall seconds."""
        return self.cpu / self.wall if self.wall > 0 else 0.0


def measure(call: Callable[..., Any], *args: Any, **kwargs: Any) -> Measured:
    """Run ``call(*args, **kwargs)`` once, timing its wall and CPU seconds."""
    meter = CpuMeter().start()
    started = time.perf_counter()
    try:
        result = call(*args, **kwargs)
    finally:
        wall = time.perf_counter() - started
        cpu = meter.stop()
    return Measured(wall, cpu, result)


@dataclass
class StepClock:
    """A pipeline ``Progress`` that notes, in seconds since ``started``, when each step began
    and when each of its items (tuning trials, segment models) finished. Called as an
    Optuna callback, it notes a finished trial of the plain study as a ``tune`` item."""

    started: float = field(default_factory=time.perf_counter)
    begun: dict[str, float] = field(default_factory=dict)
    items: dict[str, list[float]] = field(default_factory=dict)

    def _now(self) -> float:
        return time.perf_counter() - self.started

    def step_started(self, step: str, total: int | None = None) -> None:
        self.begun.setdefault(step, self._now())

    def step_finished(self, report: Any) -> None:
        pass

    def advanced(self, step: str, done: int, detail: str) -> None:
        self.items.setdefault(step, []).append(self._now())

    def __call__(self, study: Any, trial: Any) -> None:
        self.advanced("tune", len(self.items.get("tune", [])) + 1, "")

    def at(self, count: int, step: str = "tune") -> float | None:
        """Seconds from the start until ``count`` items of ``step`` had finished."""
        done = self.items.get(step, [])
        return done[count - 1] if len(done) >= count else None
