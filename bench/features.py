"""Conveyor's feature store against Feast and the libraries alone, side by side, in one run.

Usage::

    .venv/bin/python bench/features.py [--smoke] [--skip-feast] [--large] [--repeats N]

The data is generated once per run with numpy from a fixed seed (``_features_data.py``)
and written as Parquet in a scratch folder under ``bench/.work``: 100,000 entities,
5,000,000 feature rows (``entity_id``, ``event_timestamp`` in µs, ``f0``..``f9`` float64)
over the 90 days ending today at UTC midnight, and an entity frame of 200,000 rows (~5%
unknown keys, some rows before any data of their entity, some past the 30-day TTL).
Scenarios:

1. point-in-time training set: Conveyor ``get_historical_features(...).to_df()``, Feast
   with its default ``file`` (Dask) offline store and with its ``duckdb`` offline store,
   and the limit, a hand-written DuckDB ``ASOF LEFT JOIN``. Wall time (median of
   ``--repeats``) and peak RSS of each worker; every result is checked row for row against
   the limit's (Feast's rows are aligned by ``row_id`` first: its order is not promised);
2. online lookup of random keys after materialising, in process: 1 key (p50, p99) and 100
   keys (p50), Conveyor and Feast on SQLite and on Redis (127.0.0.1:6379, keys under a
   unique prefix, deleted afterwards), against raw primary-key reads (sqlite3, HGET/HMGET);
   the values of 500 sample keys are checked against each entity's latest row;
3. materialisation of all the data into each online store: time and peak RSS, against
   DuckDB ``arg_max`` per key loaded with ``executemany`` / ``HSET`` (the limit).

``--large``: 50,000,000 feature rows and 2,000,000 entity rows, Conveyor and the limits
only; Conveyor's peak RSS must stay under 4 GiB (exit 1 otherwise). ``--smoke``: tiny
sizes, Feast's default stores only and only if its virtualenv is ready (CI).

Peak RSS is the worker's own high-water mark (``VmHWM``, see ``_features_common.peak_rss``):
on Linux ``getrusage(RUSAGE_SELF).ru_maxrss`` inherits the parent's RSS across ``exec``,
so every worker would show at least this process's peak (the generated data).

Feast runs in ``bench/.venvs/feast`` (created on first use with ``feast[duckdb,redis]``),
through ``_features_feast.py``; Conveyor and the limits run in this virtualenv
(``_features_conveyor.py``, ``_features_limit.py``), each worker in its own process; the
checks are in ``_features_checks.py``. Exits 1 when Conveyor's rows or online values are
wrong (or, with ``--large``, its memory is over); Feast's errors and dropped rows are
reported, not fatal.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
import conveyor  # noqa: E402

from _features_common import TTL_US  # noqa: E402
from _features_data import DAY_US, Dataset, generate  # noqa: E402
from _harness import BENCH_DIR, WORK_DIR, Report, call_worker, scratch, times  # noqa: E402
from _features_checks import check_historical, check_sample, first_rows  # noqa: E402
from tracking import conveyor_revision  # noqa: E402

FEAST_VENV = BENCH_DIR / ".venvs" / "feast"
FEAST_REQUIREMENT = "feast[duckdb,redis]"
REDIS_URL = "redis://127.0.0.1:6379/0"
GIB = 1024**3
LARGE_RSS_TARGET = 4 * GIB


@dataclass(frozen=True)
class Config:
    """What to run, from the command line."""

    smoke: bool
    large: bool
    entities: int
    rows: int  # feature rows
    entity_rows: int  # rows of the entity frame
    repeats: int  # timed training-set builds per tool
    calls: int  # timed 1-key lookups per store (100-key lookups: a fifth of it)
    feast: Path | None  # Feast's python; None: skip Feast
    feast_version: str
    redis: bool  # Redis reachable at 127.0.0.1:6379


# formatting ------------------------------------------------------------------------------


def seconds(value: float) -> str:
    """``1.23 s``."""
    return f"{value:,.2f} s"


def micros(value: float) -> str:
    """``123 µs``."""
    return f"{value * 1e6:,.0f} µs"


def gib(value: float) -> str:
    """``1.23 GiB``."""
    return f"{value / GIB:.2f} GiB"


def versus(ours: float, theirs: float, what: str = "faster") -> str:
    """``Conveyor 3.2× faster`` / ``1.4× slower`` (``ours``, ``theirs``: times or bytes)."""
    worse = {"faster": "slower", "less memory": "more memory"}[what]
    return f"Conveyor {times(theirs / ours)} {what}" if ours <= theirs else f"Conveyor {times(ours / theirs)} {worse}"


def of_limit(value: float, limit: float) -> str:
    """``1.25× the limit``."""
    return f"{times(value / limit)} the limit"


def table(console: Console, title: str, columns: list[str], rows: list[list[str]], figures: int) -> None:
    """A Rich table: the tool, ``figures`` right-aligned columns of figures, then notes."""
    grid = Table(title=title, title_justify="left")
    for i, name in enumerate(columns):
        grid.add_column(name, justify="right" if 0 < i <= figures else "left")
    for row in rows:
        grid.add_row(*row)
    console.print(grid)


# workers ---------------------------------------------------------------------------------------


def run(console: Console, label: str, python: Path | str, script: str, args: dict[str, Any]) -> dict[str, Any]:
    """One worker to completion, with a line saying how long it took."""
    result = call_worker(python, script, args)
    note = f"error: {result['error']}" if "error" in result else f"{result['wall']:,.1f} s in the worker"
    console.print(f"  [dim]{label}: {note}[/]")
    return result


def workers(cfg: Config) -> list[tuple[str, str, Path | str, str, dict[str, Any]]]:
    """(key, label, python, script, extra args) of each contender of scenario 1."""
    found: list[tuple[str, str, Path | str, str, dict[str, Any]]] = [
        ("limit", "limit (DuckDB ASOF LEFT JOIN)", sys.executable, "_features_limit.py", {}),
        ("conveyor", "Conveyor", sys.executable, "_features_conveyor.py", {}),
    ]
    if cfg.feast:
        found.append(("feast_file", "Feast file (Dask)", cfg.feast, "_features_feast.py", {"offline": "file"}))
        if not cfg.smoke:  # --smoke: Feast's default stores only, to stay well under a minute
            found.append(("feast_duckdb", "Feast duckdb", cfg.feast, "_features_feast.py", {"offline": "duckdb"}))
    return found


# scenario 1 -------------------------------------------------------------------------------------


def scenario_historical(cfg: Config, data: Dataset, folder: Path, report: Report, console: Console) -> None:
    """Scenario 1: every contender builds the training set; the checks; the table."""
    results: dict[str, dict[str, Any]] = {}
    for key, label, python, script, extra in workers(cfg):
        out = folder / f"historical-{key}.parquet"
        args = {"command": "historical", "folder": str(folder), "features": str(data.features),
                "entity_rows": str(data.entity_rows), "repeats": cfg.repeats, "out": str(out),
                "temp_dir": str(folder / "duckdb-tmp"), **extra}
        results[key] = run(console, f"{label}: training set × {cfg.repeats}", python, script, args)
        results[key]["out"] = out
    firsts = first_rows(data.features)
    checks = {key: check_historical(result["out"], results["limit"]["out"], data.entity_rows, firsts)
              for key, result in results.items() if key != "limit" and "error" not in result}
    ours, limit = results["conveyor"], results["limit"]
    mine = checks["conveyor"]
    if not mine.all_right:
        report.fail(f"training set: Conveyor's rows differ from the limit's: {mine.describe()}")
    rows = [[
        "Conveyor FeatureStore.get_historical_features(...).to_df()", seconds(ours["median"]), gib(ours["peak_rss"]),
        f"{of_limit(ours['median'], limit['median'])}, {of_limit(ours['peak_rss'], limit['peak_rss'])} in memory",
        mine.describe(),
    ]]
    if cfg.large:
        ok = ours["peak_rss"] < LARGE_RSS_TARGET
        rows[0][2] += " " + report.target("Conveyor peak RSS < 4 GiB at 50M rows", ok)
        if not ok:
            report.fail(f"training set at {data.rows:,} rows: Conveyor's peak RSS is {gib(ours['peak_rss'])}, "
                        f"over {gib(LARGE_RSS_TARGET)} (features.offline.memory_limit is DuckDB's cap)")
    for key, name in (("feast_file", "Feast get_historical_features(...).to_df(), file offline store (Dask)"),
                      ("feast_duckdb", "Feast get_historical_features(...).to_df(), duckdb offline store")):
        if key not in results:
            continue
        theirs = results[key]
        if "error" in theirs:
            rows.append([name, "—", "—", "", f"[red]failed:[/] {theirs['error']}"])
            continue
        rows.append([name, seconds(theirs["median"]), gib(theirs["peak_rss"]),
                     f"{versus(ours['median'], theirs['median'])}, "
                     f"{versus(ours['peak_rss'], theirs['peak_rss'], 'less memory')}", checks[key].describe()])
    rows.append(["DuckDB ASOF LEFT JOIN by hand, TTL condition, row order kept (limit)", seconds(limit["median"]),
                 gib(limit["peak_rss"]), "", f"{limit['rows']:,} rows (the reference)"])
    table(console, f"1. point-in-time training set: {data.entity_frame_rows:,} entity rows × {data.rows:,} feature "
          f"rows ({data.entities:,} entities, 10 float64 features, TTL 30 days); wall time (median of {cfg.repeats}) "
          "and peak RSS of the worker", ["tool", "time", "peak RSS", "ratio", "rows vs the limit"], rows, 2)


# scenarios 2 and 3 --------------------------------------------------------------------------------


def online_results(cfg: Config, data: Dataset, folder: Path, backend: str, console: Console) -> dict[str, dict[str, Any]]:
    """Each tool's ``online`` command on one backend; keyed by tool."""
    args = {"command": "online", "backend": backend, "folder": str(folder / backend), "features": str(data.features),
            "entities": data.entities, "calls": cfg.calls, "sample_seed": 5, "redis_url": REDIS_URL,
            "start_us": data.start_us - DAY_US, "end_us": data.end_us}
    (folder / backend).mkdir(exist_ok=True)
    label = f"{backend}: materialise, {cfg.calls:,} + {max(cfg.calls // 5, 20):,} lookups"
    results = {"conveyor": run(console, f"Conveyor {label}", sys.executable, "_features_conveyor.py", args)}
    if cfg.feast and (backend == "sqlite" or not cfg.smoke):
        results["feast"] = run(console, f"Feast {label}", cfg.feast, "_features_feast.py", args)
    results["limit"] = run(console, f"limit {label}", sys.executable, "_features_limit.py", args)
    now_us = time.time_ns() // 1000
    for tool, result in results.items():
        if tool != "limit" and "sample" in result:
            result["check"] = check_sample(result["sample"], results["limit"]["sample"], now_us - TTL_US)
    return results


def scenario_online(cfg: Config, data: Dataset, folder: Path, report: Report, console: Console) -> None:
    """Scenarios 2 and 3 on SQLite, then Redis."""
    lookups: list[list[str]] = []
    loads: list[list[str]] = []
    for backend in ("sqlite", "redis") if cfg.redis else ("sqlite",):
        results = online_results(cfg, data, folder, backend, console)
        ours, limit = results["conveyor"], results["limit"]
        store = "SQLite" if backend == "sqlite" else "Redis"
        if ours["check"].wrong:
            report.fail(f"online {store}: {ours['check'].wrong} of the sample keys got wrong values "
                        f"(first: {ours['check'].first_wrong})")
        raw = "sqlite3 SELECT by INTEGER PRIMARY KEY" if backend == "sqlite" else "redis-py HGET / HMGET of one hash"
        named = [("conveyor", f"Conveyor get_online_features().to_dict(), {store}"),
                 ("feast", f"Feast get_online_features().to_dict(), {store}"), ("limit", f"{raw} (limit)")]
        for tool, name in named:
            if tool not in results:
                continue
            result = results[tool]
            if "error" in result:
                lookups.append([name, "—", "—", "—", "", f"[red]failed:[/] {result['error']}"])
                loads.append([name, "—", "—", "", f"[red]failed:[/] {result['error']}"])
                continue
            if tool == "conveyor":
                ratio = (f"{of_limit(ours['one']['p50'], limit['one']['p50'])} (1 key), "
                         f"{of_limit(ours['many']['p50'], limit['many']['p50'])} (100 keys)")
                load_ratio = of_limit(ours["materialize"], limit["materialize"])
            elif tool == "feast":
                ratio = (f"{versus(ours['one']['p50'], result['one']['p50'])} (1 key), "
                         f"{versus(ours['many']['p50'], result['many']['p50'])} (100 keys)")
                load_ratio = (f"{versus(ours['materialize'], result['materialize'])}, "
                              f"{versus(ours['materialize_rss'], result['materialize_rss'], 'less memory')}")
            else:
                ratio = load_ratio = ""
            check = result["check"].describe() if "check" in result else "the reference"
            lookups.append([name, micros(result["one"]["p50"]), micros(result["one"]["p99"]),
                            micros(result["many"]["p50"]), ratio, check])
            before = f" ({gib(result['rss_before'])} before)" if "rss_before" in result else ""
            written = f"{result['rows_written']:,} rows written" if "rows_written" in result else ""
            loads.append([name.replace("get_online_features().to_dict()", "materialize(start, end)").replace(
                raw, "DuckDB arg_max per key + " + ("executemany" if backend == "sqlite" else "HSET")),
                seconds(result["materialize"]), gib(result["materialize_rss"]) + before, load_ratio, written])
    table(console, f"2. online lookup in process after materialising, random keys of {data.entities:,} entities: "
          f"latency of 1 key (p50, p99 of {cfg.calls:,} calls) and of 100 keys (p50 of {max(cfg.calls // 5, 20):,})",
          ["tool", "1 key p50", "1 key p99", "100 keys p50", "ratio (p50)", "500 sample keys vs the latest rows"],
          lookups, 3)
    table(console, f"3. materialisation of {data.rows:,} feature rows ({data.entities:,} entities) into the online "
          "store: wall time and peak RSS", ["tool", "time", "peak RSS", "ratio", ""], loads, 2)


# main ---------------------------------------------------------------------------------------------


def feast_version(python: Path) -> str | None:
    """``0.67.0 (DuckDB 2.0.0)`` if Feast and what its stores need import in that python."""
    probe = "import feast, duckdb, ibis, redis; print(feast.__version__, f'(DuckDB {duckdb.__version__})')"
    if not python.exists():
        return None
    done = subprocess.run([python, "-c", probe], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def ensure_feast(console: Console, create: bool) -> tuple[Path | None, str]:
    """Feast's python and version, its virtualenv created with ``feast[duckdb,redis]`` if missing
    and ``create``."""
    python = FEAST_VENV / "bin" / "python"
    version = feast_version(python)
    if version or not create:
        return (python, version) if version else (None, "skipped")
    console.print(f"Creating {FEAST_VENV} and installing {FEAST_REQUIREMENT} (first use only)...")
    base = shutil.which("python3") or sys.executable
    subprocess.run([base, "-m", "venv", "--clear", str(FEAST_VENV)], check=True)
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip", FEAST_REQUIREMENT], check=True)
    version = feast_version(python)
    if version is None:
        raise SystemExit(f"{FEAST_VENV}: feast does not import after installing {FEAST_REQUIREMENT}")
    return python, version


def redis_ready() -> bool:
    """Whether Redis answers at 127.0.0.1:6379."""
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping())
    except Exception:  # noqa: BLE001  no server, no client
        return False


def parse_config(argv: list[str] | None, console: Console) -> Config:
    """The command line as a ``Config`` (creates Feast's virtualenv when needed)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; Feast only if its venv is ready")
    parser.add_argument("--skip-feast", action="store_true", help="Conveyor and the limits only")
    parser.add_argument("--large", action="store_true", help="50M feature rows, 2M entity rows; no Feast")
    parser.add_argument("--repeats", type=int, default=None, help="timed training-set builds per tool (default 3)")
    args = parser.parse_args(argv)
    skip = args.skip_feast or args.large
    python, version = (None, "skipped") if skip else ensure_feast(console, create=not args.smoke)
    if not skip and python is None:
        console.print(f"[yellow]--smoke: skipping Feast ({FEAST_VENV} is not ready)[/]")
    if args.smoke:
        sizes = (2_000, 50_000, 5_000)
    elif args.large:
        sizes = (100_000, 50_000_000, 2_000_000)
    else:
        sizes = (100_000, 5_000_000, 200_000)
    redis = redis_ready()
    if not redis:
        console.print("[yellow]No Redis at 127.0.0.1:6379: the Redis rows are skipped[/]")
    return Config(smoke=args.smoke, large=args.large, entities=sizes[0], rows=sizes[1], entity_rows=sizes[2],
                  repeats=args.repeats or (2 if args.smoke else 3), calls=300 if args.smoke else 5_000,
                  feast=python, feast_version=version, redis=redis)


def describe(cfg: Config, console: Console) -> None:
    """Print what is compared."""
    import duckdb
    import pandas

    console.print(f"Conveyor {conveyor.__version__} at {conveyor_revision()} vs Feast {cfg.feast_version}; Python "
                  f"{sys.version.split()[0]}, DuckDB {duckdb.__version__}, pandas {pandas.__version__}; {load()}; "
                  f"work folder {WORK_DIR}")


def load() -> str:
    """``2 CPUs, load average 0.12`` (other work on the machine skews every figure)."""
    return f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"


def main(argv: list[str] | None = None) -> int:
    """Run every scenario and print the tables; 1 when the Conveyor side failed."""
    console = Console(width=None if sys.stdout.isatty() else 200)
    cfg = parse_config(argv, console)
    describe(cfg, console)
    report = Report(console, judge=cfg.large)
    started = time.perf_counter()
    with scratch("features-") as folder:
        start = time.perf_counter()
        data = generate(folder, cfg.entities, cfg.rows, cfg.entity_rows)
        console.print(f"Generated {data.rows:,} feature rows and {data.entity_frame_rows:,} entity rows in "
                      f"{time.perf_counter() - start:,.1f} s ({data.features.stat().st_size / 1e6:,.0f} MB of Parquet)")
        scenario_historical(cfg, data, folder, report, console)
        scenario_online(cfg, data, folder, report, console)
    console.print(f"Total time {time.perf_counter() - started:,.0f} s; {load()}.")
    if report.failures:
        console.print(f"[bold red]{len(report.failures)} Conveyor failure(s)[/]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
