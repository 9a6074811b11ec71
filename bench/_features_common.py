"""Names, sizes and worker plumbing every process of ``bench/features.py`` shares.

Standard library only: the Conveyor and limit workers (the project's virtualenv) and the
Feast worker (``bench/.venvs/feast``) import this module, so all of them define the same
view, read the same keys and report the same way (JSON-lines protocol of ``_workload.py``:
``{"progress": n}`` lines, then one ``{"result": {...}}``).
"""

from __future__ import annotations

import json
import random
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from _workload import emit

ENTITY = "entity"  # the entity's name
KEY = "entity_id"  # its join key (int64)
TIMESTAMP = "event_timestamp"  # event time of feature rows and of entity rows (µs, UTC)
ROW_ID = "row_id"  # entity frame: 0..n-1 in file order, so reordered results can be aligned
VIEW = "entity_stats"
SERVICE = "bench_v1"
FEATURES = tuple(f"f{i}" for i in range(10))  # float64
TTL_DAYS = 30
TTL_US = TTL_DAYS * 86_400 * 1_000_000
LOOKUP_SEED = 20_240_917
SAMPLE_SIZE = 500  # keys whose online values every tool reports, to be checked


def peak_rss() -> int:
    """Peak resident memory of this process so far, in bytes.

    ``VmHWM`` of ``/proc/self/status`` where there is one: Linux carries ``ru_maxrss`` over
    ``execve`` from the process that started the worker (its RSS at fork/vfork time), so
    ``getrusage(RUSAGE_SELF).ru_maxrss`` of a worker is never below the parent's RSS, and the
    parent holds the generated data. ``ru_maxrss`` elsewhere.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def lookup_keys(entities: int, count: int, batch: int, seed: int = LOOKUP_SEED) -> list[list[int]]:
    """``count`` lists of ``batch`` random entity keys (the same lists in every process)."""
    rng = random.Random(seed * 1_000_003 + batch)
    return [[rng.randrange(entities) for _ in range(batch)] for _ in range(count)]


def percentile(samples: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``samples``, by linear interpolation."""
    ordered = sorted(samples)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def time_calls(call: Callable[[list[int]], Any], batches: list[list[int]], warmup: int = 50) -> dict[str, float]:
    """Latency of ``call(keys)`` per batch of keys after ``warmup`` untimed calls: p50, p99, mean."""
    for keys in batches[:warmup]:
        call(keys)
    samples = []
    clock = time.perf_counter
    for keys in batches:
        start = clock()
        call(keys)
        samples.append(clock() - start)
    return {"p50": percentile(samples, 0.5), "p99": percentile(samples, 0.99), "mean": statistics.fmean(samples)}


def online_figures(read_one: Callable[[list[int]], Any], read_many: Callable[[list[int]], Any],
                   args: dict[str, Any]) -> dict[str, Any]:
    """Scenario 2's figures for one store: 1-key and 100-key lookups of random keys."""
    one = lookup_keys(args["entities"], args["calls"], 1)
    many = lookup_keys(args["entities"], max(args["calls"] // 5, 20), 100)
    return {"one": time_calls(read_one, one), "many": time_calls(read_many, many)}


def median_runs(call: Callable[[], Any], repeats: int) -> tuple[float, list[float], Any]:
    """Median seconds of ``repeats`` timed calls (no warm-up: each is a full batch job),
    the samples, and the last result."""
    samples, last = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        last = call()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples), samples, last


@contextmanager
def redis_cleanup(url: str, pattern: str) -> Iterator[None]:
    """Delete the Redis keys matching ``pattern`` afterwards (and any left from before)."""
    import redis

    client = redis.Redis.from_url(url)

    def clean() -> None:
        batch = list(client.scan_iter(match=pattern, count=10_000))
        while batch:
            client.delete(*batch[:10_000])
            batch = batch[10_000:]

    clean()
    try:
        yield
    finally:
        clean()
        client.close()


def run_worker(commands: dict[str, Callable[[dict[str, Any]], dict[str, Any]]]) -> None:
    """A worker's entry point: run the command named in the JSON argument and emit its result
    with the worker's wall time and peak RSS at the end (unless the command measured its own)."""
    args = json.loads(sys.argv[1])
    started = time.perf_counter()
    result = commands[args["command"]](args)
    emit({"result": {"peak_rss": peak_rss(), **result, "wall": time.perf_counter() - started}})
