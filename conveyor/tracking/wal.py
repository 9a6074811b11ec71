"""Durable, fast metric logging: a write-ahead file per process, drained to the store.

``log_metric`` appends one line to this process's segment file with a single
``write(2)`` and returns: from then on the point survives ``kill -9`` (the bytes are in
the operating system's page cache). A background thread moves pending points into the
metadata store every ``tracking.flush_interval_ms`` in one transaction that also
records how far the segment has been drained. A segment left behind by a dead process
(its ``flock`` is free) is replayed from that offset the next time any process opens
the workspace, so no acknowledged point is lost and none is stored twice.
"""

from __future__ import annotations

import fcntl
import functools
import os
import socket
import threading
import uuid
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path

from sqlalchemy import Connection, bindparam, delete, select
from sqlalchemy.sql.expression import Executable

from conveyor.core.db import MetadataStore
from conveyor.core.db.dialects import Dialect
from conveyor.tracking.chunks import CHUNK_COLUMNS, LATEST_COLUMNS, Point, pack
from conveyor.tracking.tables import latest_metrics, metric_chunks, metric_wal_offsets

SUFFIX = ".wal"


def encode(points: Iterable[Point]) -> bytes:
    """Tab-separated lines; keys are validated to contain no tab or newline."""
    return "".join(
        f"{run}\t{exp}\t{key}\t{value!r}\t{step}\t{ts}\n" for run, exp, key, value, step, ts in points
    ).encode()


def decode(data: bytes) -> tuple[list[Point], int]:
    """The complete lines of ``data`` as points, and how many bytes they span."""
    end = data.rfind(b"\n") + 1
    points: list[Point] = []
    for line in data[:end].decode().splitlines():
        run, exp, key, value, step, ts = line.split("\t")
        points.append((run, exp, key, float(value), int(step), int(ts)))
    return points, end


def _latest_upsert(dialect: Dialect) -> Executable:
    upsert = dialect.insert(latest_metrics).values({name: bindparam(name) for name in LATEST_COLUMNS})
    return upsert.on_conflict_do_update(
        index_elements=[latest_metrics.c.run_id, latest_metrics.c.key],
        set_={"value": upsert.excluded.value, "step": upsert.excluded.step, "timestamp": upsert.excluded.timestamp},
        where=(upsert.excluded.step > latest_metrics.c.step)
        | ((upsert.excluded.step == latest_metrics.c.step) & (upsert.excluded.timestamp >= latest_metrics.c.timestamp)),
    )


def _offset_upsert(dialect: Dialect) -> Executable:
    upsert = dialect.insert(metric_wal_offsets).values(segment=bindparam("segment"), offset=bindparam("offset"))
    return upsert.on_conflict_do_update(
        index_elements=[metric_wal_offsets.c.segment], set_={"offset": upsert.excluded.offset}
    )


def store_points(store: MetadataStore, conn: Connection, points: list[Point]) -> None:
    """Append history chunks and move each key's latest value forward (never backward)."""
    chunks, latest = pack(points)
    store.insert_many(conn, metric_chunks, CHUNK_COLUMNS, chunks)
    store.execute_many(conn, "upsert latest_metrics", _latest_upsert, LATEST_COLUMNS, latest)


def _save_offset(store: MetadataStore, conn: Connection, segment: str, offset: int) -> None:
    store.execute_many(conn, "upsert metric_wal_offsets", _offset_upsert, ("segment", "offset"), [(segment, offset)])


def _reset_in_child(ref: weakref.ref[MetricLog]) -> None:
    log = ref()
    if log is not None:
        log._after_fork()


class MetricLog:
    """This process's metric segment and the thread that drains it.

    Args:
        store: the metadata store points are drained into.
        wal_dir: the workspace's folder of segment files.
        flush_interval_s: the longest a point waits before it is in the store.
        on_tick: called from the flusher thread after each flush (heartbeats).
    """

    def __init__(
        self,
        store: MetadataStore,
        wal_dir: Path,
        flush_interval_s: float,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.wal_dir = wal_dir
        self.flush_interval_s = flush_interval_s
        self.on_tick = on_tick
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = False
        self._fd: int | None = None
        self._pending: list[Point] = []
        self._written = 0
        os.register_at_fork(after_in_child=functools.partial(_reset_in_child, weakref.ref(self)))

    def start(self) -> None:
        """Open this process's segment and start draining it (idempotent)."""
        with self._lock:
            if self._fd is None:
                self._open_segment()

    def _open_segment(self) -> None:
        """Create this process's segment, locked before it is visible to recovery."""
        self._closed = False
        self.wal_dir.mkdir(parents=True, exist_ok=True)
        self.segment = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:12]}{SUFFIX}"
        self.path = self.wal_dir / self.segment
        hidden = self.wal_dir / f".{self.segment}.new"
        self._fd = os.open(hidden, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        os.replace(hidden, self.path)
        self._thread = threading.Thread(target=self._run, name="conveyor-metric-flusher", daemon=True)
        self._thread.start()

    def _after_fork(self) -> None:
        # A forked child must not write into, or keep alive, its parent's segment.
        if self._fd is not None:
            os.close(self._fd)
        self._fd = None
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._wake = threading.Event()
        self._pending = []
        self._written = 0

    def append(self, points: list[Point]) -> None:
        """Make ``points`` durable against a process crash, then queue them for the store."""
        data = encode(points)
        with self._lock:
            if self._fd is None:
                self._open_segment()
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view) :]
            self._pending.extend(points)
            self._written += len(data)

    def flush(self, then: Callable[[Connection], None] | None = None) -> None:
        """Move every pending point into the metadata store now; ``then`` runs in the
        same transaction (ending a run commits its last metrics and its status at once)."""
        with self._flush_lock:
            with self._lock:
                batch, self._pending = self._pending, []
                offset = self._written
            if not batch and then is None:
                return
            try:
                with self.store.write() as conn:
                    if batch:
                        store_points(self.store, conn, batch)
                        _save_offset(self.store, conn, self.segment, offset)
                    if then is not None:
                        then(conn)
            except BaseException:
                with self._lock:
                    self._pending[:0] = batch
                raise

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            try:
                self.flush()
                if self.on_tick is not None:
                    self.on_tick()
            except Exception:  # noqa: BLE001  the points stay pending and in the segment
                continue

    def close(self) -> None:
        """Drain everything, then retire the segment file."""
        if self._closed or self._fd is None:
            return
        self.flush()
        self._closed = True
        self._wake.set()
        with self.store.write() as conn:
            conn.execute(delete(metric_wal_offsets).where(metric_wal_offsets.c.segment == self.segment))
        self.path.unlink(missing_ok=True)
        os.close(self._fd)
        self._fd = None


def recover_segments(store: MetadataStore, wal_dir: Path) -> list[str]:
    """Replay the segments of dead processes into the store; returns the runs they touched."""
    touched: set[str] = set()
    if not wal_dir.is_dir():
        return []
    for path in sorted(wal_dir.glob(f"*{SUFFIX}")):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # its process is alive and drains it itself
            touched.update(_replay(store, path, fd))
            path.unlink(missing_ok=True)
            with store.write() as conn:
                conn.execute(delete(metric_wal_offsets).where(metric_wal_offsets.c.segment == path.name))
        finally:
            os.close(fd)
    return sorted(touched)


def _replay(store: MetadataStore, path: Path, fd: int) -> set[str]:
    with store.read() as conn:
        done = conn.execute(
            select(metric_wal_offsets.c.offset).where(metric_wal_offsets.c.segment == path.name)
        ).scalar_one_or_none() or 0
    with open(fd, "rb", closefd=False) as handle:
        handle.seek(done)
        points, used = decode(handle.read())
    if points:
        with store.write() as conn:
            store_points(store, conn, points)
            _save_offset(store, conn, path.name, done + used)
    return {point[0] for point in points}
