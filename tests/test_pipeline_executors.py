"""Executors: item order, shared data sent once, real parallelism, errors, settings.

Worker functions live in ``executor_support`` so spawned processes and Ray workers can
import them; Ray workers find it through PYTHONPATH, set before the module's Ray starts.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import executor_support
import pydantic
import pytest
from executor_support import (
    Payload,
    add_offset,
    fail_on_three,
    load_signature,
    sleep_for,
)

from conveyor.errors import Unavailable, ValidationError
from conveyor.pipelines.executors import (
    Executor,
    ExecutorSettings,
    LocalExecutor,
    RayExecutor,
    open_executor,
)

TESTS_DIR = str(Path(__file__).resolve().parent)


@pytest.fixture(scope="module")
def local_pool() -> Iterator[LocalExecutor]:
    """Two spawned workers, both started and warm, shared by the module's tests."""
    with LocalExecutor(workers=2) as executor:
        executor.map(sleep_for, [0.3, 0.3])
        yield executor


@pytest.fixture(scope="module")
def ray_executor() -> Iterator[RayExecutor]:
    """A local Ray of 2 CPUs, started once for the module and shut down after it."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        pytest.skip("this process is connected to a Ray already")
    with pytest.MonkeyPatch.context() as patch:
        paths = [TESTS_DIR, os.environ.get("PYTHONPATH", "")]
        patch.setenv("PYTHONPATH", os.pathsep.join(path for path in paths if path))
        executor = RayExecutor(workers=2)
    executor.map(sleep_for, [0.3, 0.3])
    yield executor
    executor.close()
    assert not ray.is_initialized()


@pytest.fixture(params=["local-1", "local-2", pytest.param("ray-2", marks=pytest.mark.slow)])
def executor(request: pytest.FixtureRequest) -> Iterator[Executor]:
    """Each executor: in-process, a local pool of 2, Ray with 2 CPUs."""
    if request.param == "local-1":
        with LocalExecutor(workers=1) as inline:
            yield inline
    elif request.param == "local-2":
        yield request.getfixturevalue("local_pool")
    else:
        yield request.getfixturevalue("ray_executor")


@pytest.fixture(params=["local-2", pytest.param("ray-2", marks=pytest.mark.slow)])
def parallel_executor(request: pytest.FixtureRequest) -> Executor:
    """The executors that run items in other processes, two at a time."""
    return request.getfixturevalue("local_pool" if request.param == "local-2" else "ray_executor")


def test_results_follow_item_order_while_on_result_follows_completion(executor: Executor) -> None:
    calls: list[tuple[int, int]] = []
    shared = {"offset": 100, "delays": {0: 0.6}}

    results = executor.map(add_offset, [0, 1, 2, 3], shared, on_result=lambda i, r: calls.append((i, r)))

    assert results == [100, 101, 102, 103]
    assert sorted(calls) == [(0, 100), (1, 101), (2, 102), (3, 103)]
    if executor.workers == 1:
        assert calls == [(0, 100), (1, 101), (2, 102), (3, 103)]
    else:
        assert calls[-1] == (0, 100)


def test_map_over_no_items_returns_nothing(executor: Executor) -> None:
    assert executor.map(add_offset, [], {"offset": 1, "delays": {}}) == []


def test_single_worker_passes_shared_without_pickling() -> None:
    executor_support.PICKLES = 0
    payload = Payload(10)
    with LocalExecutor(workers=1) as executor:
        [(pid, load_id, value)] = executor.map(load_signature, [5], payload)
    assert (pid, load_id, value) == (os.getpid(), None, 15)
    assert executor_support.PICKLES == 0


def test_shared_is_serialised_once_per_call_not_per_item(parallel_executor: Executor) -> None:
    executor_support.PICKLES = 0

    results = parallel_executor.map(load_signature, range(8), Payload(1000))

    assert [value for _, _, value in results] == [1000 + item for item in range(8)]
    assert executor_support.PICKLES == 1


def test_each_pool_worker_unpickles_shared_once_per_call(local_pool: LocalExecutor) -> None:
    first = local_pool.map(load_signature, range(12), Payload(1000))
    second = local_pool.map(load_signature, range(12), Payload(2000))

    for results, base in ((first, 1000), (second, 2000)):
        assert [value for _, _, value in results] == [base + item for item in range(12)]
        copies_by_worker: dict[int, set[str | None]] = {}
        for pid, load_id, _ in results:
            copies_by_worker.setdefault(pid, set()).add(load_id)
        assert os.getpid() not in copies_by_worker
        assert 1 <= len(copies_by_worker) <= local_pool.workers
        assert all(len(copies) == 1 for copies in copies_by_worker.values())
    assert not {load_id for _, load_id, _ in first} & {load_id for _, load_id, _ in second}


def test_two_workers_run_at_once(parallel_executor: Executor) -> None:
    start = time.perf_counter()
    results = parallel_executor.map(sleep_for, [1.0, 1.0])
    elapsed = time.perf_counter() - start

    assert results == [1.0, 1.0]
    assert elapsed < 1.8


def test_an_error_keeps_its_type_and_message(executor: Executor) -> None:
    calls: list[int] = []

    with pytest.raises(ValueError) as caught:
        executor.map(fail_on_three, range(6), 0.0, on_result=lambda i, r: calls.append(i))

    assert type(caught.value) is ValueError
    assert str(caught.value) == "bad item 3"
    assert 3 not in calls
    if executor.workers == 1:
        assert calls == [0, 1, 2]
    assert executor.map(add_offset, [1, 2], {"offset": 0, "delays": {}}) == [1, 2]


def test_an_error_cancels_items_not_started(parallel_executor: Executor) -> None:
    items = [3, *range(4, 24)]
    start = time.perf_counter()

    with pytest.raises(ValueError, match="^bad item 3$"):
        parallel_executor.map(fail_on_three, items, 0.5)
    raised = time.perf_counter() - start
    next_results = parallel_executor.map(add_offset, [7], {"offset": 0, "delays": {}})
    elapsed = time.perf_counter() - start

    assert raised < 1.0, "map waited for the items after the failure"
    assert next_results == [7]
    assert elapsed < 2.5, "the items after the failure ran anyway (20 x 0.5 s on 2 workers)"


def test_settings_default_to_local() -> None:
    settings = ExecutorSettings()
    assert (settings.type, settings.workers, settings.address) == ("local", None, None)


@pytest.mark.parametrize(
    "fields",
    [{"workers": 0}, {"workers": -2}, {"type": "dask"}, {"threads": 4}, {"address": "auto"}],
)
def test_settings_reject_bad_fields(fields: dict[str, object]) -> None:
    with pytest.raises(pydantic.ValidationError):
        ExecutorSettings(**fields)


def test_open_executor_defaults_to_one_local_worker_per_cpu() -> None:
    with open_executor() as executor:
        assert isinstance(executor, LocalExecutor)
        assert (executor.name, executor.workers) == ("local", os.cpu_count() or 1)
    with open_executor(ExecutorSettings(workers=3)) as executor:
        assert isinstance(executor, LocalExecutor)
        assert executor.workers == 3


def test_local_executor_rejects_zero_workers() -> None:
    with pytest.raises(ValidationError) as caught:
        LocalExecutor(workers=0)
    assert caught.value.field == "executor.workers"


def test_ray_executor_without_ray_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)

    with pytest.raises(ValidationError) as caught:
        open_executor(ExecutorSettings(type="ray", workers=2))

    assert caught.value.message == "executor 'ray' needs the ray package: pip install 'conveyor-ml[ray]'"
    assert caught.value.field == "executor.type"


@pytest.mark.slow
def test_open_executor_joins_the_running_ray(ray_executor: RayExecutor) -> None:
    import ray

    with open_executor(ExecutorSettings(type="ray", workers=2)) as executor:
        assert isinstance(executor, RayExecutor)
        assert (executor.name, executor.workers) == ("ray", 2)
        assert executor.map(add_offset, [1, 2], {"offset": 10, "delays": {}}) == [11, 12]
    assert ray.is_initialized(), "closing an executor that joined Ray must leave Ray running"
    with RayExecutor() as sized_by_cluster:
        assert sized_by_cluster.workers == 2


@pytest.mark.slow
def test_ray_runs_no_more_than_workers_items_at_once(ray_executor: RayExecutor) -> None:
    with RayExecutor(workers=1) as one_at_a_time:
        start = time.perf_counter()
        assert one_at_a_time.map(sleep_for, [0.4, 0.4]) == [0.4, 0.4]
    assert time.perf_counter() - start >= 0.8


def test_a_dead_local_worker_is_a_clear_error_and_the_pool_recovers(local_pool) -> None:  # noqa: ANN001
    with pytest.raises(Unavailable, match=r"a local executor worker process died .*if __name__ == '__main__'"):
        local_pool.map(executor_support.exit_abruptly, [1, 2])
    assert local_pool.map(executor_support.add_offset, [1, 2], shared={"offset": 10, "delays": {}}) == [11, 12]
