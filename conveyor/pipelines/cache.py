"""The step cache: a step whose inputs hash the same as before reuses its stored output.

A key is the sha256 of the step's name, its settings, the keys or data hashes of what
it reads, the seed and the code version of the step (Conveyor's version and the
source of the modules that run it, plus the versions of the estimator's library). The
output is a blob in the artifact store, so a hit costs a lookup and a read.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from sqlalchemy import select

from conveyor.core.artifacts import ArtifactStore
from conveyor.core.db import MetadataStore
from conveyor.core.db.base import now_ms
from conveyor.pipelines.tables import pipeline_step_cache


def digest(value: Any) -> str:
    """The sha256 of a JSON-able value, independent of key order."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def code_version(*modules: ModuleType) -> str:
    """A fingerprint of the source of ``modules``: editing how a step runs invalidates its cache."""
    from conveyor import __version__

    return digest([__version__, *(hashlib.sha256(inspect.getsource(m).encode()).hexdigest() for m in modules)])


@dataclass(frozen=True)
class CachedOutput:
    """A step's stored output: its blob, and the run that made it."""

    run_id: str
    sha256: str
    size: int


class StepCache:
    """Step outputs by input key, in the metadata store, with bytes in the artifact store."""

    def __init__(self, store: MetadataStore, artifacts: ArtifactStore) -> None:
        self.store = store
        self.artifacts = artifacts

    @staticmethod
    def key(step: str, inputs: Mapping[str, Any]) -> str:
        """The cache key of ``step`` given everything its output depends on."""
        return digest({"step": step, **inputs})

    def get(self, key: str) -> CachedOutput | None:
        """The output stored under ``key`` if its blob is still present."""
        with self.store.read() as conn:
            row = conn.execute(
                select(pipeline_step_cache.c.run_id, pipeline_step_cache.c.output_sha256, pipeline_step_cache.c.output_size)
                .where(pipeline_step_cache.c.key == key)
            ).first()
        if row is None or not self.artifacts.exists(row.output_sha256):
            return None
        return CachedOutput(row.run_id, row.output_sha256, row.output_size)

    def put(self, key: str, pipeline: str, step: str, run_id: str, sha256: str, size: int) -> None:
        """Remember ``sha256`` as the output for ``key`` (the newest run wins)."""
        row = {"key": key, "pipeline": pipeline, "step": step, "run_id": run_id, "output_sha256": sha256,
               "output_size": size, "created_at": now_ms()}
        upsert = self.store.dialect.insert(pipeline_step_cache).values(**row)
        with self.store.write() as conn:
            conn.execute(upsert.on_conflict_do_update(index_elements=[pipeline_step_cache.c.key], set_=row))
