"""The tracking service of a remote workspace: the same interface, over the server's API.

Metric points are buffered and sent in batches (one request per flush interval or
per ``BATCH`` points), and the client heartbeats its open runs so the server does not
reap them; files stream to and from the server with their sha256 checked.
"""

from __future__ import annotations

import atexit
import hashlib
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from conveyor.core.artifacts import BlobReader, sha256_file
from conveyor.core.config import TrackingSettings
from conveyor.errors import IntegrityError, NotFound
from conveyor.server.client import RemoteService, ServerClient
from conveyor.server.frames import ARROW, read_frame
from conveyor.tracking.api import ENDPOINTS, SHA_HEADER
from conveyor.tracking.artifacts import ArtifactWriting
from conveyor.tracking.schemas import (
    ArtifactInfo,
    Experiment,
    RunInfo,
    RunOrigin,
    RunStatus,
    metric_point,
)
from conveyor.tracking.service import TrackingService

BATCH = 5000
PAGE = 10_000


class RemoteBlobs(BlobReader):
    """The artifact store's blobs, read through the server and verified here."""

    def __init__(self, client: ServerClient) -> None:
        self.client = client

    def __repr__(self) -> str:
        return f"RemoteBlobs({self.client.url!r})"

    def iter_chunks(self, sha256: str) -> Iterator[bytes]:
        """Stream a blob from the server, checking its digest at the end."""
        digest = hashlib.sha256()
        for chunk in self.client.stream("GET", f"/blobs/{sha256}"):
            digest.update(chunk)
            yield chunk
        if digest.hexdigest() != sha256:
            raise IntegrityError(f"artifact blob {sha256} arrived corrupted: its content hashes to {digest.hexdigest()}")


class RemoteTracking(ArtifactWriting, RemoteService):
    """``TrackingService`` over HTTP."""

    service_type = TrackingService
    prefix = ""
    endpoints = ENDPOINTS

    def __init__(self, client: ServerClient, settings: TrackingSettings) -> None:
        RemoteService.__init__(self, client)
        self.settings = settings
        self.artifacts = RemoteBlobs(client)
        self._pending: dict[str, list[tuple[str, Any, int, int | None]]] = {}
        self._count = 0
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()
        self._open: set[str] = set()
        self._known: set[str] = set()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    # runs --------------------------------------------------------------------------

    def find_experiment(self, name_or_id: str) -> Experiment | None:
        """An experiment by name or id, or ``None``."""
        try:
            return self.get_experiment(name_or_id)
        except NotFound:
            return None

    def create_run(self, experiment: str = "Default", name: str | None = None, parent_id: str | None = None,
                   params: Mapping[str, Any] | None = None, tags: Mapping[str, Any] | None = None,
                   origin: RunOrigin | None = None) -> RunInfo:
        """Start a run on the server, recording this process as its origin; it is kept alive from here."""
        info = self.call_route("create_run", experiment, name, parent_id, params, tags, origin or RunOrigin.capture())
        with self._lock:
            self._open.add(info.id)
            self._known.add(info.id)
        self._start()
        return info

    def end_run(self, run_id: str, status: RunStatus = RunStatus.FINISHED, error: str | None = None) -> None:
        """Send the run's pending metrics, then finish it."""
        self.flush()
        self.call_route("end_run", run_id, status, error)
        with self._lock:
            self._open.discard(run_id)

    # metrics -----------------------------------------------------------------------

    def log_metrics(self, run_id: str, values: Mapping[str, Any], step: int = 0, timestamp: int | None = None) -> None:
        """Queue metric values at one step; they reach the server within the flush interval."""
        self.log_metric_points(run_id, [(key, value, step, timestamp) for key, value in values.items()])

    def log_metric_points(self, run_id: str, points: Iterable[tuple[str, Any, int, int | None]]) -> None:
        """Check and queue ``(key, value, step, timestamp_ms or None)`` points (a missing
        timestamp is taken now): a bad key or value, or an unknown run, raises here, as in-process."""
        self._check_run(run_id)
        now = int(time.time() * 1000)
        batch = [(*metric_point(key, value, step), now if ts is None else ts) for key, value, step, ts in points]
        with self._lock:
            self._pending.setdefault(run_id, []).extend(batch)
            self._count += len(batch)
            full = self._count >= BATCH
        self._start()
        if full:
            self._wake.set()

    def _check_run(self, run_id: str) -> None:
        """``NotFound`` unless the run exists (asked once per run)."""
        if run_id not in self._known:
            self.get_run_info(run_id)
            self._known.add(run_id)

    def flush(self) -> None:
        """Send every queued metric point now."""
        with self._send_lock:
            with self._lock:
                pending, self._pending, self._count = self._pending, {}, 0
            for run_id, points in pending.items():
                for start in range(0, len(points), BATCH):
                    self.call_route("log_metric_points", run_id, points[start:start + BATCH])

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="conveyor-remote-metrics", daemon=True)
            self._thread.start()
            atexit.register(self.close)

    def _loop(self) -> None:
        interval = self.settings.flush_interval_ms / 1000
        beat_every = self.settings.heartbeat_interval_s
        last_beat = 0.0

        while not self._stopped.is_set():
            self._wake.wait(interval)
            self._wake.clear()
            try:
                self.flush()
                if time.monotonic() - last_beat >= beat_every:
                    with self._lock:
                        running = sorted(self._open)
                    if running:
                        self.heartbeat(running)
                    last_beat = time.monotonic()
            except Exception:  # noqa: BLE001  retried at the next interval; flush() at end_run raises
                continue

    def close(self) -> None:
        """Finish this process's open runs and send their metrics."""
        for run_id in sorted(self._open):
            self.end_run(run_id)
        self.flush()
        self._stopped.set()
        self._wake.set()

    # searching ---------------------------------------------------------------------

    def search_runs(self, experiments: str | Sequence[str] | None = None, filter: str | None = None,
                    order_by: Sequence[str] | None = None, max_results: int = 1000,
                    include_deleted: bool = False, offset: int = 0) -> pd.DataFrame:
        """Runs matching ``filter``, fetched page by page from the server."""
        names = None if experiments is None else [experiments] if isinstance(experiments, str) else list(experiments)
        pages: list[pd.DataFrame] = []
        remaining = max_results
        while True:
            size = min(remaining, PAGE) if isinstance(remaining, int) and remaining > 0 else remaining
            body = {"experiments": names, "filter": filter, "order_by": list(order_by or []) or None,
                    "max_results": size, "offset": offset, "include_deleted": include_deleted}
            page = read_frame(self.client.request("POST", "/runs/search", json=body, headers={"accept": ARROW}))
            pages.append(page)
            remaining -= len(page)
            offset += len(page)
            if len(page) < size or remaining <= 0:
                break
        frames = [page for page in pages if len(page)] or pages[:1]
        return pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]

    def get_metric_history(self, run_id: str, key: str) -> pd.DataFrame:
        """Every logged value of a metric (queued points are sent first)."""
        self.flush()
        path = f"/runs/{quote(run_id, safe='')}/metrics/{quote(key, safe='')}"
        return read_frame(self.client.request("GET", path, headers={"accept": ARROW}))

    def compare_runs(self, run_ids: Sequence[str]) -> pd.DataFrame:
        """Several runs side by side."""
        return read_frame(self.client.request("POST", "/runs/compare", json={"run_ids": list(run_ids)}))

    def get_run(self, run_id: str) -> Any:
        """A run as stored (queued metrics are sent first)."""
        self.flush()
        return self.call_route("get_run", run_id)

    # artifacts ---------------------------------------------------------------------

    def _upload(self, run_id: str, artifact_path: str, kind: str, content: Any, sha256: str) -> ArtifactInfo:
        path = f"/runs/{quote(run_id, safe='')}/artifacts/{quote(artifact_path, safe='/')}"
        response = self.client.request("PUT", path, params={"kind": kind}, content=content,
                                       headers={SHA_HEADER: sha256, "content-type": "application/octet-stream"})
        return ArtifactInfo.model_validate_json(response.content)

    def log_bytes(self, run_id: str, data: bytes, artifact_path: str, kind: str = "file") -> ArtifactInfo:
        """Upload bytes as the run's artifact."""
        return self._upload(run_id, artifact_path, kind, data, hashlib.sha256(data).hexdigest())

    def log_file(self, run_id: str, local_path: str | Path, artifact_path: str, kind: str = "file") -> ArtifactInfo:
        """Stream a local file to the server as the run's artifact."""
        sha256, _ = sha256_file(local_path)
        with open(local_path, "rb") as handle:
            return self._upload(run_id, artifact_path, kind, handle, sha256)
