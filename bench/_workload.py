"""The data every tool in the tracking benchmark logs, and the worker protocol.

Standard library only: both the Conveyor side (the project's virtualenv) and the
MLflow worker (its own virtualenv) import this module, so both log exactly the
same points, params and search population.

Worker protocol: a worker reads one JSON argument from ``argv[1]`` and writes JSON
lines on stdout: ``{"progress": n}`` while it works, ``{"ready": true}`` when a
synchronised start is wanted (it then waits for a ``go`` line on stdin), and
finally ``{"result": {...}}``.
"""

from __future__ import annotations

import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

EXPERIMENT = "bench"
MODELS = ("lgbm", "rf", "lr", "xgb", "svm")
SEARCH_FILTER = "params.model = 'lgbm' and metrics.auc > 0.5"
SEARCH_ORDER = "metrics.auc DESC"
SEARCH_LIMIT = 100

Point = tuple[str, float, int]


@dataclass(frozen=True)
class LoggingSpec:
    """``runs`` runs, each with ``params`` params and ``metrics`` metrics over ``steps`` steps."""

    runs: int = 20
    params: int = 10
    metrics: int = 5
    steps: int = 100
    seed: int = 7

    @property
    def points(self) -> int:
        """Metric points over all runs."""
        return self.runs * self.metrics * self.steps

    def run_params(self, run: int) -> dict[str, str]:
        """The params of run number ``run``."""
        return {f"param_{i}": f"value-{run}-{i}" for i in range(self.params)}

    def run_points(self, run: int) -> list[Point]:
        """``(key, value, step)`` in training-loop order: every metric at step 0, then step 1..."""
        rng = random.Random(self.seed * 1_000_003 + run)
        return [(f"metric_{m}", rng.random(), step) for step in range(self.steps) for m in range(self.metrics)]

    def to_json(self) -> dict[str, int]:
        """The spec as a JSON-able dict (``LoggingSpec(**d)`` rebuilds it)."""
        return asdict(self)


def search_run(index: int, seed: int = 11) -> tuple[dict[str, str], dict[str, float]]:
    """Params and metrics of run ``index`` of the search population (same for any chunking).

    ``model`` is uniform over five values, so ``params.model = 'lgbm'`` matches ~1/5 of the
    runs; ``auc`` is uniform in [0, 1).
    """
    rng = random.Random(seed * 1_000_003 + index)
    params = {
        "model": MODELS[rng.randrange(len(MODELS))],
        "learning_rate": f"{rng.choice((0.01, 0.03, 0.1, 0.3))}",
        "max_depth": str(rng.randint(2, 12)),
        "seed": str(index),
    }
    return params, {"auc": rng.random(), "loss": rng.random() * 2}


def emit(message: dict[str, Any]) -> None:
    """Write one protocol line to stdout."""
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def wait_for_go() -> None:
    """Announce readiness, then block until the parent writes ``go``."""
    emit({"ready": True})
    sys.stdin.readline()


class ErrorTally:
    """Counts failed calls of a worker and keeps the first message of each kind."""

    def __init__(self) -> None:
        self.count = 0
        self.locked = 0
        self.first: str | None = None

    def add(self, error: BaseException) -> None:
        """Record one failed call."""
        self.count += 1
        text = f"{type(error).__name__}: {error}".splitlines()[0][:200]
        self.locked += "locked" in text.lower()
        self.first = self.first or text

    def to_json(self) -> dict[str, Any]:
        """Counts and first message."""
        return {"errors": self.count, "locked": self.locked, "first_error": self.first}


def timed_result(start: float, points: int, tally: ErrorTally) -> dict[str, Any]:
    """A concurrency worker's result: wall-clock start and end, points attempted, errors."""
    return {"start": start, "end": time.time(), "points": points, **tally.to_json()}
