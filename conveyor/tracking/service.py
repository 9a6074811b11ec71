"""Experiment tracking: the one service the SDK, CLI and server call.

Runs, params and tags are written through at once; metrics go through the
process's write-ahead ``MetricLog`` (see ``wal.py``) so logging never blocks a
training loop on the database and nothing acknowledged is lost.
"""

from __future__ import annotations

import atexit
import os
import socket
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from conveyor.core.artifacts import ArtifactStore
from conveyor.core.config import TrackingSettings
from conveyor.core.db import MetadataStore
from conveyor.core.db.base import now_ms
from conveyor.errors import Conflict, NotFound, ValidationError
from conveyor.governance.identity import ActingActor, Actor
from conveyor.governance.permissions import Action, requires
from conveyor.tracking import tables
from conveyor.tracking.artifacts import ArtifactLog, artifact_row
from conveyor.tracking.liveness import is_dead
from conveyor.tracking.queries import RunQueries
from conveyor.tracking.schemas import (
    Experiment,
    RunInfo,
    RunOrigin,
    RunStatus,
    check_key,
    metric_point,
)
from conveyor.tracking.tables import experiments, runs
from conveyor.tracking.wal import MetricLog, Point, recover_segments

DEFAULT_EXPERIMENT = "Default"
MAX_PARAM_LENGTH = 6000

# Runs this process has started and not ended, whatever service instance started them:
# liveness checks must never reap them.
_ACTIVE_RUNS: set[str] = set()


def _new_id() -> str:
    return uuid.uuid4().hex


def _text(kind: str, key: str, value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > MAX_PARAM_LENGTH:
        raise ValidationError(
            f"{kind} '{key}' is {len(text)} characters long, more than {MAX_PARAM_LENGTH}", field=f"{kind}s.{key}"
        )
    return text


class TrackingService(RunQueries, ArtifactLog):
    """Experiments and runs of one workspace.

    Args:
        store: the metadata store.
        artifacts: the artifact store.
        settings: flush interval and liveness settings.
        wal_dir: the folder of this workspace's metric write-ahead segments.
        actor: who acts (the request's user instead, inside ``acting_as``).
    """

    actor = ActingActor()

    def __init__(
        self, store: MetadataStore, artifacts: ArtifactStore, settings: TrackingSettings, wal_dir: Path, actor: Actor
    ) -> None:
        self.actor = actor
        self.store = store
        self.artifacts = artifacts
        self.settings = settings
        self.wal_dir = wal_dir
        self.metric_log = MetricLog(store, wal_dir, settings.flush_interval_ms / 1000, self._heartbeat)
        self._experiment_of: dict[str, str] = {}
        self._experiment_ids: dict[str, str] = {}
        self._environment_blobs: dict[str, tuple[str, int]] = {}
        self._active: set[str] = set()
        self._last_heartbeat = 0.0
        self._exit_hook_installed = False
        recover_segments(store, wal_dir)
        self.reap_dead_runs()

    # experiments -----------------------------------------------------------------

    @requires(Action.EXPERIMENTS_WRITE)
    def create_experiment(self, name: str, description: str | None = None) -> Experiment:
        """Create an experiment; ``Conflict`` if the name is taken."""
        if not name or not name.strip():
            raise ValidationError("experiment name must not be empty", field="experiment")
        row = {"id": _new_id(), "name": name, "description": description, "created_at": now_ms(), "deleted": False}
        with self.store.write() as conn:
            inserted = conn.execute(
                self.store.dialect.insert(experiments)
                .values(**row)
                .on_conflict_do_nothing()
                .returning(experiments.c.id)
            ).first()
        if not inserted:
            raise Conflict(f"experiment '{name}' already exists", field="experiment")
        return Experiment(**row)

    @requires(Action.EXPERIMENTS_READ)
    def find_experiment(self, name_or_id: str) -> Experiment | None:
        """The experiment with this name (or id), or ``None``."""
        with self.store.read() as conn:
            row = conn.execute(
                select(experiments).where((experiments.c.name == name_or_id) | (experiments.c.id == name_or_id))
            ).first()
        return Experiment(**row._mapping) if row else None

    @requires(Action.EXPERIMENTS_READ)
    def get_experiment(self, name_or_id: str) -> Experiment:
        """The experiment with this name (or id); ``NotFound`` otherwise."""
        found = self.find_experiment(name_or_id)
        if found is None:
            raise NotFound(f"experiment '{name_or_id}' does not exist", field="experiment")
        return found

    @requires(Action.EXPERIMENTS_WRITE)
    def ensure_experiment(self, name: str) -> Experiment:
        """The experiment with this name, created if missing (safe under concurrency)."""
        found = self.find_experiment(name)
        if found is not None:
            return found
        try:
            return self.create_experiment(name)
        except Conflict:
            return self.get_experiment(name)

    @requires(Action.EXPERIMENTS_READ)
    def list_experiments(self) -> list[Experiment]:
        """Every experiment that is not deleted, oldest first."""
        with self.store.read() as conn:
            rows = conn.execute(
                select(experiments).where(experiments.c.deleted.is_(False)).order_by(experiments.c.created_at)
            ).all()
        return [Experiment(**row._mapping) for row in rows]

    # run lifecycle ---------------------------------------------------------------

    @requires(Action.EXPERIMENTS_WRITE)
    def create_run(
        self,
        experiment: str = DEFAULT_EXPERIMENT,
        name: str | None = None,
        parent_id: str | None = None,
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
        origin: RunOrigin | None = None,
    ) -> RunInfo:
        """Start a run, recording its code version, environment, command line and seed.

        ``origin`` is where the run executes (a remote client sends its own); without it,
        this process is the origin and keeps the run alive (heartbeats, ends it at exit).
        """
        experiment_id = self._experiment_id(experiment)
        if parent_id is not None:
            self.get_run_info(parent_id)
        local = origin is None
        origin = origin or RunOrigin.capture()
        now = now_ms()
        run_id = _new_id()
        row = {
            "id": run_id, "experiment_id": experiment_id, "name": name or f"run-{run_id[:8]}",
            "status": RunStatus.RUNNING.value, "start_time": now, "end_time": None, "heartbeat_at": now,
            "parent_id": parent_id, "user": origin.user, "host": origin.host, "pid": origin.pid,
            "command": origin.command, "git_commit": origin.git_commit, "git_branch": origin.git_branch,
            "git_dirty": origin.git_dirty if origin.git_commit else None, "python_version": origin.python_version,
            "seed": origin.seed, "error": None, "deleted": False,
        }
        param_rows = self._key_values("param", run_id, experiment_id, params)
        tag_rows = self._key_values("tag", run_id, experiment_id, tags)
        captured = self._captured_files(run_id, origin)
        with self.store.write() as conn:
            conn.execute(runs.insert(), row)
            for table, rows in ((tables.params, param_rows), (tables.tags, tag_rows), (tables.artifacts, captured)):
                if rows:
                    conn.execute(table.insert(), rows)
        self._experiment_of[run_id] = experiment_id
        if local:
            self._active.add(run_id)
            _ACTIVE_RUNS.add(run_id)
            self._install_exit_hook()
        self.metric_log.start()
        return RunInfo(**row)

    def _experiment_id(self, name: str) -> str:
        found = self._experiment_ids.get(name)
        if found is None:
            found = self._experiment_ids[name] = self.ensure_experiment(name).id
        return found

    def _captured_files(self, run_id: str, origin: RunOrigin) -> list[dict[str, Any]]:
        """Artifact rows for the environment and, if the tree is dirty, the diff."""
        environment = self._environment_blobs.get(origin.environment)
        if environment is None:
            environment = self._environment_blobs[origin.environment] = self.artifacts.put_bytes(origin.environment.encode())
        files = [("_conveyor/environment.txt", *environment, "environment")]
        if origin.git_dirty and origin.git_diff:
            files.append(("_conveyor/git.diff", *self.artifacts.put_bytes(origin.git_diff.encode()), "git-diff"))
        return [artifact_row(run_id, path, sha, size, kind) for path, sha, size, kind in files]

    @requires(Action.EXPERIMENTS_WRITE)
    def end_run(self, run_id: str, status: RunStatus = RunStatus.FINISHED, error: str | None = None) -> None:
        """Finish a run: its metrics are stored before its status changes."""
        finish = (
            update(runs)
            .where(runs.c.id == run_id, runs.c.status == RunStatus.RUNNING.value)
            .values(status=RunStatus(status).value, end_time=now_ms(), error=error)
        )
        self.metric_log.flush(then=lambda conn: conn.execute(finish))
        self._active.discard(run_id)
        _ACTIVE_RUNS.discard(run_id)

    @requires(Action.EXPERIMENTS_WRITE)
    def delete_run(self, run_id: str) -> None:
        """Hide a run from listings and search (its records stay)."""
        self.get_run_info(run_id)
        with self.store.write() as conn:
            conn.execute(update(runs).where(runs.c.id == run_id).values(deleted=True))

    def _install_exit_hook(self) -> None:
        if not self._exit_hook_installed:
            atexit.register(self.close)
            self._exit_hook_installed = True

    def close(self) -> None:
        """Finish this process's open runs and drain its metric log (runs at exit)."""
        for run_id in list(self._active):
            self.end_run(run_id, RunStatus.FINISHED)
        self.metric_log.close()

    def _heartbeat(self) -> None:
        if not self._active or time.monotonic() - self._last_heartbeat < self.settings.heartbeat_interval_s:
            return
        with self.store.write() as conn:
            conn.execute(update(runs).where(runs.c.id.in_(list(self._active))).values(heartbeat_at=now_ms()))
        self._last_heartbeat = time.monotonic()

    @requires(Action.EXPERIMENTS_WRITE)
    def heartbeat(self, run_ids: Sequence[str]) -> None:
        """Mark running runs as alive: how a remote client keeps its runs from being reaped."""
        if run_ids:
            with self.store.write() as conn:
                conn.execute(update(runs).where(runs.c.id.in_(list(run_ids)), runs.c.status == RunStatus.RUNNING.value)
                             .values(heartbeat_at=now_ms()))

    def reap_dead_runs(self) -> list[str]:
        """Mark killed every running run whose process is gone; returns their ids."""
        with self.store.read() as conn:
            running = conn.execute(
                select(runs.c.id, runs.c.host, runs.c.pid, runs.c.heartbeat_at).where(
                    runs.c.status == RunStatus.RUNNING.value
                )
            ).all()
        host, pid, now = socket.gethostname(), os.getpid(), now_ms()
        timeout_ms = self.settings.heartbeat_timeout_s * 1000
        dead = [r for r in running if r.id not in _ACTIVE_RUNS and is_dead(r, host, pid, now, timeout_ms)]
        if dead:
            with self.store.write() as conn:
                for row in dead:
                    conn.execute(
                        update(runs)
                        .where(runs.c.id == row.id, runs.c.status == RunStatus.RUNNING.value)
                        .values(status=RunStatus.KILLED.value, end_time=row.heartbeat_at,
                                error="the process stopped without ending the run")
                    )
        return [row.id for row in dead]

    # params, tags, metrics ---------------------------------------------------------

    def _key_values(self, kind: str, run_id: str, experiment_id: str, values: Mapping[str, Any] | None) -> list[dict[str, str]]:
        return [
            {"run_id": run_id, "experiment_id": experiment_id, "key": check_key(key, kind), "value": _text(kind, key, value)}
            for key, value in (values or {}).items()
        ]

    @requires(Action.EXPERIMENTS_READ)
    def experiment_of(self, run_id: str) -> str:
        """The experiment id of a run (cached)."""
        return self._run_experiment(run_id)

    def _run_experiment(self, run_id: str) -> str:
        found = self._experiment_of.get(run_id)
        if found is None:
            found = self.get_run_info(run_id).experiment_id
            self._experiment_of[run_id] = found
        return found

    @requires(Action.EXPERIMENTS_WRITE)
    def log_params(self, run_id: str, values: Mapping[str, Any]) -> None:
        """Record params; a param is immutable: a different value for a logged key is a ``Conflict``."""
        rows = self._key_values("param", run_id, self._run_experiment(run_id), values)
        if not rows:
            return
        try:
            with self.store.write() as conn:
                conn.execute(tables.params.insert(), rows)
        except Conflict:
            self._check_params_unchanged(run_id, rows)

    def _check_params_unchanged(self, run_id: str, rows: list[dict[str, str]]) -> None:
        """Re-logging a param with its value is fine; a new value is a ``Conflict``."""
        with self.store.write() as conn:
            conn.execute(self.store.dialect.insert(tables.params).on_conflict_do_nothing(), rows)
            stored = dict(
                conn.execute(
                    select(tables.params.c.key, tables.params.c.value).where(
                        tables.params.c.run_id == run_id, tables.params.c.key.in_([r["key"] for r in rows])
                    )
                ).all()
            )
        for row in rows:
            if stored.get(row["key"]) != row["value"]:
                raise Conflict(
                    f"param '{row['key']}' of run {run_id} is already {stored.get(row['key'])!r}; "
                    f"params cannot change (got {row['value']!r})",
                    field=f"params.{row['key']}",
                )

    @requires(Action.EXPERIMENTS_WRITE)
    def set_tags(self, run_id: str, values: Mapping[str, Any]) -> None:
        """Set tags, replacing earlier values."""
        rows = self._key_values("tag", run_id, self._run_experiment(run_id), values)
        if not rows:
            return
        upsert = self.store.dialect.insert(tables.tags)
        keys = [tables.tags.c.run_id, tables.tags.c.key]
        with self.store.write() as conn:
            conn.execute(
                upsert.on_conflict_do_update(index_elements=keys, set_={"value": upsert.excluded.value}),
                rows,
            )

    @requires(Action.EXPERIMENTS_WRITE)
    def log_metrics(
        self, run_id: str, values: Mapping[str, Any], step: int = 0, timestamp: int | None = None
    ) -> None:
        """Log metric values at one step; durable against a crash when this returns."""
        self._append_points(run_id, [(key, value, step, timestamp) for key, value in values.items()])

    @requires(Action.EXPERIMENTS_WRITE)
    def log_metric_points(self, run_id: str, points: Iterable[tuple[str, float, int, int | None]]) -> None:
        """Log many ``(key, value, step, timestamp_ms or None)`` points in one write."""
        self._append_points(run_id, points)

    def _append_points(self, run_id: str, points: Iterable[tuple[str, Any, int, int | None]]) -> None:
        experiment_id = self._run_experiment(run_id)
        now = now_ms()
        # Plain floats, ints and known keys skip the checking calls: this runs per point.
        batch: list[Point] = [
            (run_id, experiment_id, *metric_point(key, value, step), now if ts is None else ts)
            for key, value, step, ts in points
        ]
        if batch:
            self.metric_log.append(batch)

    def flush(self) -> None:
        """Make every logged metric visible in the metadata store now."""
        self.metric_log.flush()

    # reads used by the mixins -------------------------------------------------------

    @requires(Action.EXPERIMENTS_READ)
    def get_run_info(self, run_id: str) -> RunInfo:
        """A run's record; ``NotFound`` if there is none."""
        with self.store.read() as conn:
            row = conn.execute(select(runs).where(runs.c.id == run_id)).first()
        if row is None:
            raise NotFound(f"run '{run_id}' does not exist", field="run_id")
        return RunInfo(**row._mapping)

    @requires(Action.EXPERIMENTS_READ)
    def count_metric_points(self) -> int:
        """How many metric points the store holds (flushed ones)."""
        with self.store.read() as conn:
            return conn.execute(select(func.coalesce(func.sum(tables.metric_chunks.c.count), 0))).scalar_one()

    @requires(Action.EXPERIMENTS_READ)
    def count_runs(self) -> int:
        """How many runs the workspace holds (deleted ones too)."""
        with self.store.read() as conn:
            return conn.execute(select(func.count()).select_from(runs)).scalar_one()

