"""Executors: where a pipeline's independent work runs (this process, local processes, Ray).

``open_executor(settings)`` is the one place that turns settings into an executor.
"""

from __future__ import annotations

from conveyor.pipelines.executors.base import Executor, ExecutorSettings
from conveyor.pipelines.executors.local import LocalExecutor
from conveyor.pipelines.executors.ray import RayExecutor


def open_executor(settings: ExecutorSettings | None = None) -> Executor:
    """The executor ``settings`` select (default: local, one worker per CPU)."""
    settings = settings or ExecutorSettings()
    if settings.type == "ray":
        return RayExecutor(settings.workers, settings.address)
    return LocalExecutor(settings.workers)


__all__ = ["Executor", "ExecutorSettings", "LocalExecutor", "RayExecutor", "open_executor"]
