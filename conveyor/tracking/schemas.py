"""The tracking contract: what callers send and get back."""

from __future__ import annotations

import enum
import numbers
import re

from pydantic import BaseModel, ConfigDict

from conveyor.errors import ValidationError

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_\-. /:]{1,250}$")
KNOWN_KEYS: set[str] = set()  # keys already checked in this process


class RunStatus(str, enum.Enum):
    """Where a run is in its life."""

    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"


class Experiment(BaseModel):
    """A named group of runs."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    description: str | None = None
    created_at: int
    deleted: bool = False


class RunInfo(BaseModel):
    """A run's record without its params, metrics and tags."""

    model_config = ConfigDict(frozen=True)

    id: str
    experiment_id: str
    name: str
    status: RunStatus
    start_time: int
    end_time: int | None = None
    heartbeat_at: int
    parent_id: str | None = None
    user: str | None = None
    host: str | None = None
    pid: int | None = None
    command: str | None = None
    git_commit: str | None = None
    git_branch: str | None = None
    git_dirty: bool | None = None
    python_version: str | None = None
    seed: int | None = None
    error: str | None = None
    deleted: bool = False


class RunOrigin(BaseModel):
    """Where a run is executed: captured by the process that runs the code, so a run
    logged through the server records the client's code and environment, not the server's."""

    user: str
    host: str
    pid: int
    command: str
    python_version: str
    git_commit: str | None = None
    git_branch: str | None = None
    git_dirty: bool = False
    git_diff: str = ""
    seed: int | None = None
    environment: str = ""

    @classmethod
    def capture(cls) -> RunOrigin:
        """The origin of a run started by this process now."""
        import os

        from conveyor.tracking import context

        git, proc = context.git_state(), context.process_context()
        return cls(
            user=proc.user, host=proc.host, pid=os.getpid(), command=proc.command,
            python_version=proc.python_version, git_commit=git.commit, git_branch=git.branch,
            git_dirty=git.dirty, git_diff=git.diff, seed=context.current_seed(), environment=context.environment_text(),
        )


class RunData(BaseModel):
    """A run with its params, latest metrics, tags, artifacts and input datasets."""

    info: RunInfo
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    artifacts: list[ArtifactInfo]
    inputs: list[DatasetInput]


class ArtifactInfo(BaseModel):
    """One file stored for a run."""

    path: str
    sha256: str
    size: int
    kind: str


class DatasetInput(BaseModel):
    """A dataset a run consumed, and in which role."""

    id: str
    name: str
    digest: str
    source: str
    data_schema: str
    rows: int | None
    context: str


RunData.model_rebuild()


def check_key(key: object, what: str) -> str:
    """A param, metric or tag key, or a ``ValidationError`` naming it."""
    if key in KNOWN_KEYS:
        return key  # type: ignore[return-value]
    if not isinstance(key, str) or not KEY_PATTERN.match(key):
        raise ValidationError(
            f"{what} key {key!r} is invalid: use 1-250 letters, digits, spaces and _ - . / :",
            field=f"{what}.{key}",
        )
    KNOWN_KEYS.add(key)
    return key


def metric_point(key: object, value: object, step: object) -> tuple[str, float, int]:
    """A checked ``(key, value, step)``; plain floats, ints and known keys skip the checks
    (this runs per logged point). ``ValidationError`` names the metric."""
    return (
        key if key in KNOWN_KEYS else check_key(key, "metric"),  # type: ignore[return-value]
        value if type(value) is float else _metric_value(key, value),  # type: ignore[return-value]
        step if type(step) is int else _metric_step(key, step),  # type: ignore[return-value]
    )


def _metric_value(key: object, value: object) -> float:
    if not isinstance(value, numbers.Real):
        raise ValidationError(f"metric '{key}' must be a number, got {value!r}", field=f"metrics.{key}")
    return float(value)


def _metric_step(key: object, step: object) -> int:
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        raise ValidationError(f"metric '{key}' step must be an integer, got {step!r}", field=f"metrics.{key}.step")
    return int(step)
