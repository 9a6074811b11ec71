"""Run items in this process, or in a pool of spawned processes on this machine.

With several workers the shared object is pickled once per ``map`` call into a file;
each worker process unpickles it the first time it meets that file and keeps it until
the next call, so a large training frame crosses the process boundary once per worker
instead of once per item.
"""

from __future__ import annotations

import multiprocessing
import pickle
import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, TypeVar

from conveyor.errors import Unavailable
from conveyor.pipelines.executors.base import Executor, check_workers, cpu_count

T = TypeVar("T")
R = TypeVar("R")

_loaded: dict[str, Any] = {}


def _load_shared(path: str | None) -> Any:
    """In a worker: the shared object of the current call, unpickled on first use."""
    if path is None:
        return None
    if path not in _loaded:
        _loaded.clear()
        with open(path, "rb") as file:
            _loaded[path] = pickle.load(file)
    return _loaded[path]


def _call(fn: Callable[[Any, T], R], shared_path: str | None, item: T) -> R:
    """In a worker: run one item against the call's shared object."""
    return fn(_load_shared(shared_path), item)


class LocalExecutor(Executor):
    """One worker runs items in a plain loop; more use a "spawn" process pool.

    Spawned (not forked) processes are safe when the caller has threads running. The pool
    starts on the first parallel ``map`` and serves every later call until ``close()``.
    """

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = check_workers(workers) or cpu_count()
        self._pool: ProcessPoolExecutor | None = None
        self._spill: Path | None = None

    def map(
        self,
        fn: Callable[[Any, T], R],
        items: Sequence[T],
        shared: Any = None,
        on_result: Callable[[int, R], None] | None = None,
    ) -> list[R]:
        """Results of ``fn(shared, item)`` in item order (see ``Executor.map``)."""
        if self.workers == 1 or not items:
            return _map_inline(fn, items, shared, on_result)
        pool = self._open_pool()
        shared_path = self._spill_shared(shared)
        futures: dict[Future[R], int] = {
            pool.submit(_call, fn, shared_path, item): index for index, item in enumerate(items)
        }
        results: list[Any] = [None] * len(items)
        try:
            for future in as_completed(futures):
                index = futures[future]
                results[index] = future.result()
                if on_result is not None:
                    on_result(index, results[index])
        except BaseException as error:
            for future in futures:
                future.cancel()
            if isinstance(error, BrokenProcessPool):
                self._close_pool()
                raise Unavailable(
                    "a local executor worker process died (out of memory, killed, or it re-ran a script that "
                    "starts pipelines: guard such a script with if __name__ == '__main__')", field="executor"
                ) from error
            raise
        finally:
            if shared_path is not None:
                Path(shared_path).unlink(missing_ok=True)
        return results

    def close(self) -> None:
        """Stop the worker processes and delete the spilled shared objects."""
        self._close_pool()
        if self._spill is not None:
            shutil.rmtree(self._spill, ignore_errors=True)
            self._spill = None

    def _open_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            context = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=self.workers, mp_context=context)
        return self._pool

    def _close_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _spill_shared(self, shared: Any) -> str | None:
        """Pickle ``shared`` once to a file named uniquely for this call; None stays None."""
        if shared is None:
            return None
        if self._spill is None:
            self._spill = Path(tempfile.mkdtemp(prefix="conveyor-executor-"))
        path = self._spill / f"{uuid.uuid4().hex}.pickle"
        with path.open("wb") as file:
            pickle.dump(shared, file, protocol=pickle.HIGHEST_PROTOCOL)
        return str(path)


def _map_inline(
    fn: Callable[[Any, T], R],
    items: Sequence[T],
    shared: Any,
    on_result: Callable[[int, R], None] | None,
) -> list[R]:
    results = []
    for index, item in enumerate(items):
        result = fn(shared, item)
        if on_result is not None:
            on_result(index, result)
        results.append(result)
    return results
