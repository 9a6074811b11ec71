"""Run items as Ray tasks, on a local Ray started on demand or on an existing cluster.

Ray is imported only when an executor is opened, so this module imports without it.
The shared object is put into Ray's object store once per ``map`` call and every task
receives its reference; each node fetches it once and tasks read it from shared memory.
At most ``workers`` tasks are in flight, each reserving one CPU.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from conveyor.errors import ValidationError
from conveyor.pipelines.executors.base import Executor, check_workers

T = TypeVar("T")
R = TypeVar("R")


def _call(fn: Callable[[Any, T], R], shared: Any, item: T) -> R:
    """One remote function serves every ``fn``; Ray has already resolved ``shared``."""
    return fn(shared, item)


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as error:
        raise ValidationError(
            "executor 'ray' needs the ray package: pip install 'conveyor-ml[ray]'", field="executor.type"
        ) from error
    return ray


class RayExecutor(Executor):
    """Items run as Ray tasks of one CPU each, ``workers`` at a time.

    Connects to ``address`` ("auto", "ray://host:10001"), or with no address starts a
    local Ray sized to ``workers`` CPUs, unless this process is connected already. Only a
    Ray this executor started is shut down by ``close()``. Worker output stays out of the
    caller's terminal (``log_to_driver=False``); it remains in Ray's session logs.
    """

    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None) -> None:
        check_workers(workers)
        self._ray = _import_ray()
        self._started = not self._ray.is_initialized()
        if self._started:
            self._ray.init(
                address=address,
                num_cpus=workers if address is None else None,
                include_dashboard=False,
                log_to_driver=False,
                ignore_reinit_error=True,
                configure_logging=False,
            )
        self.workers = workers or int(self._ray.cluster_resources().get("CPU", 1))
        self._task = self._ray.remote(num_cpus=1)(_call)

    def map(
        self,
        fn: Callable[[Any, T], R],
        items: Sequence[T],
        shared: Any = None,
        on_result: Callable[[int, R], None] | None = None,
    ) -> list[R]:
        """Results of ``fn(shared, item)`` in item order (see ``Executor.map``)."""
        ray = self._ray
        shared_ref = ray.put(shared)
        waiting = iter(enumerate(items))
        running: dict[Any, int] = {}
        results: list[Any] = [None] * len(items)

        def submit(count: int) -> None:
            for index, item in itertools.islice(waiting, count):
                running[self._task.remote(fn, shared_ref, item)] = index

        submit(self.workers)
        try:
            while running:
                [done], _ = ray.wait(list(running), num_returns=1)
                index = running.pop(done)
                results[index] = self._result(done)
                if on_result is not None:
                    on_result(index, results[index])
                submit(1)
        except BaseException:
            for ref in running:
                ray.cancel(ref)
            raise
        return results

    def close(self) -> None:
        """Shut Ray down if this executor started it; a shared connection stays open."""
        if self._started:
            self._ray.shutdown()
            self._started = False

    def _result(self, ref: Any) -> Any:
        """The task's value; a task's exception is re-raised as the original exception."""
        try:
            return self._ray.get(ref)
        except self._ray.exceptions.RayTaskError as error:
            if isinstance(error.cause, BaseException):
                raise error.cause from error
            raise
