"""Conveyor's data drift detection against Evidently and the physical limit, side by side.

Usage::

    .venv/bin/python bench/monitoring.py [--smoke] [--skip-evidently] [--sizes 100k,1m,10m]
                                         [--repeats N]

The data (``_monitoring_data.py``), generated from a fixed seed: 20 numeric columns
(normal, lognormal, exponential, uniform, Student t, gamma, beta, Poisson counts, a
bimodal mixture...) and 5 categorical string columns (3 to 40 levels, Zipf-like
frequencies) per side. Drift is injected in the current side of 5 numeric columns (mean
shifted by ±0.5 std, std × 1.5, values × 1.4, range × 0.6) and 1 categorical column (25% of
its rows moved off the most frequent level); the other 19 columns are drawn from the same
distributions on both sides. Both sides are written to Parquet in ``bench/.work/monitoring/``
(in chunks of 1M rows, so any size is generated in bounded memory) and reused while current.

Every tool runs in a worker process of its own (``_monitoring_worker.py``), for its own
peak RSS (``VmHWM``), and is timed on the drift computation only:

- Conveyor: ``conveyor.drift(reference, current)`` in this virtualenv;
- Evidently: the latest release in ``bench/.venvs/evidently`` (created with pip on first
  use, ``pandas<3``), ``Report([DataDriftPreset()]).run(reference_data=..., current_data=...)``
  on ``Dataset.from_pandas`` with the numerical and categorical columns declared;
- the limit: the same statistics written directly in SciPy/NumPy on the raw columns —
  ``scipy.stats.wasserstein_distance`` over the reference std (floored at 0.001) for numeric
  columns, ``scipy.spatial.distance.jensenshannon`` of the level frequencies for
  categorical ones, drift when ≥ 0.1: what Evidently's preset picks above 1,000 rows.

Sizes up to 1M rows per side: the workers read both files into pandas DataFrames first
(not timed), so every tool gets the same frames. Larger sizes (default 10M rows per side,
about 1.6 GiB of Parquet per side): the tools get the file paths and reading is timed;
Conveyor runs in process and with ``executor="ray"``, the limit reads one column of each
file at a time (exact statistics in bounded memory); Evidently is left out (it needs
over 2 GiB at 1M rows). Each worker runs one untimed warm-up on 5,000 rows (lazy imports, Ray
start-up) before the timed runs. Figures are medians of ``--repeats`` runs (default 3; 1
for Evidently from 1M rows on and for the Parquet sizes unless ``--repeats`` is given).
The HTML report of each tool (Evidently's ``snapshot.save_html``, Conveyor's
``render_report(drift_report_data(...))``) is written once per in-memory size and its size
compared.

Targets, judged at full size only: at 1M rows per side Conveyor is ≥ 30× faster than
Evidently and both flag exactly the injected columns; at 10M rows from Parquet Conveyor
(in process) takes < 60 s and < 1.5 GiB peak RSS. ``--smoke``: 5,000 rows per side,
Conveyor and the limit only, 1 run, no Ray, targets not judged (< 60 s). Exits 1 when a
Conveyor run fails or flags other columns than the injected ones.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("DO_NOT_TRACK", "1")  # Evidently's usage telemetry, in every child process
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _monitoring_data as data
from _harness import Report, scratch
from _monitoring_run import Outcome, ensure_evidently, run_worker
from rich.console import Console
from tracking import conveyor_revision

import conveyor

IN_MEMORY_MAX = 1_000_000  # larger sizes are given to the tools as Parquet paths
WARMUP_ROWS = 5_000
SPEEDUP_TARGET = 30.0  # × Evidently at 1M rows per side
SECONDS_TARGET = 60.0  # at 10M rows per side from Parquet
RSS_TARGET = 1.5 * 2**30


@dataclass(frozen=True)
class Config:
    """What to run, from the command line."""

    smoke: bool
    sizes: tuple[int, ...]
    repeats: int | None  # None: the defaults (see ``repeats_for``)
    evidently: bool
    ray: bool
    folder: Path  # scratch: worker logs, HTML reports

    def repeats_for(self, tool: str, rows: int) -> int:
        if self.repeats:
            return self.repeats
        if self.smoke or rows > IN_MEMORY_MAX or (tool == "evidently" and rows >= 1_000_000):
            return 1
        return 3


@dataclass
class Bench:
    """The run's state: configuration, output, Evidently's python, summary lines."""

    cfg: Config
    console: Console
    report: Report
    evidently: Path | None = None
    evidently_version: str = ""
    evidently_peaks: dict[int, int] = field(default_factory=dict)  # rows per side -> its peak RSS
    summary: list[str] = field(default_factory=list)


def parse_size(text: str) -> int:
    """``100k`` → 100,000; ``1m`` → 1,000,000; ``2500`` → 2,500."""
    match = re.fullmatch(r"\s*([\d_.]+)\s*([kKmM]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    return int(float(match.group(1).replace("_", "")) * {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()])


def parse_config(argv: list[str] | None, folder: Path) -> Config:
    """The command line as a ``Config``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="5,000 rows, no Evidently, no Ray, 1 run (CI)")
    parser.add_argument("--skip-evidently", action="store_true", help="Conveyor and the limit only")
    parser.add_argument("--sizes", help="rows per side, comma-separated (default 100k,1m,10m); "
                                        f"above {IN_MEMORY_MAX:,} the tools read Parquet files")
    parser.add_argument("--repeats", type=int, help="timed runs per tool and size, medians quoted")
    args = parser.parse_args(argv)
    default = "5k" if args.smoke else "100k,1m,10m"
    sizes = tuple(parse_size(s) for s in (args.sizes or default).split(","))
    return Config(smoke=args.smoke, sizes=sizes, repeats=args.repeats,
                  evidently=not (args.smoke or args.skip_evidently), ray=not args.smoke, folder=folder)


# formatting ------------------------------------------------------------------------------------


def seconds(value: float) -> str:
    return f"{value:,.0f} s" if value >= 100 else f"{value:.1f} s" if value >= 10 else f"{value:.3f} s"


def size(value: float) -> str:
    return f"{value / 2**30:.2f} GiB" if value >= 2**30 else f"{value / 2**20:,.0f} MiB" \
        if value >= 2**20 else f"{value / 2**10:,.0f} KiB"


def compared(this: float, other: float, name: str) -> str:
    """``31× faster than Evidently`` / ``1.4× slower than the limit``."""
    if this <= other:
        factor = other / this
        return f"{factor:,.0f}× faster than {name}" if factor >= 10 else f"{factor:.2f}× faster than {name}"
    factor = this / other
    return f"{factor:,.0f}× slower than {name}" if factor >= 10 else f"{factor:.2f}× slower than {name}"


def figure(outcome: Outcome) -> str:
    """``0.412 s · peak RSS 612 MiB (data 380 MiB)``."""
    assert outcome.result is not None
    result = outcome.result
    text = f"{seconds(outcome.seconds)} · peak RSS {size(result['peak_rss'])}"
    if outcome.tree_peak and outcome.processes > 1:
        text += f" (all {outcome.processes} processes: {size(outcome.tree_peak)} PSS)"
    return text


def flag_check(outcome: Outcome) -> tuple[bool, str]:
    """Whether the tool flagged exactly the injected columns (and judged all 25), and how it reads."""
    columns = outcome.columns
    missing_columns = sorted(set(data.COLUMNS) - set(columns))
    extra = sorted(outcome.flagged - data.DRIFTED)
    missed = sorted(data.DRIFTED - outcome.flagged - set(missing_columns))
    if not (missing_columns or extra or missed):
        return True, "flagged = injected ✓"
    parts = []
    if missing_columns:
        parts.append(f"no verdict for {', '.join(missing_columns)}")
    parts += [f"wrongly flagged {name} ({columns[name]['statistic']:.4f} {columns[name]['test']})" for name in extra]
    parts += [f"missed {name} ({columns[name]['statistic']:.4f} {columns[name]['test']})" for name in missed]
    return False, "[red]flagged ≠ injected: " + "; ".join(parts) + "[/]"


def agreement(outcome: Outcome, limit: Outcome | None) -> str:
    """``statistics within 2e-12 of the limit's`` (largest absolute difference over columns)."""
    if limit is None or not limit.ok:
        return ""
    shared = [name for name in data.COLUMNS if name in outcome.columns and name in limit.columns]
    if not shared:
        return ""
    worst = max(shared, key=lambda n: abs(outcome.columns[n]["statistic"] - limit.columns[n]["statistic"]))
    gap = abs(outcome.columns[worst]["statistic"] - limit.columns[worst]["statistic"])
    if gap <= 1e-6:
        return f"statistics within {gap:.1g} of the limit's"
    ours, exact = outcome.columns[worst]["statistic"], limit.columns[worst]["statistic"]
    return f"statistics within {gap:.2g} of the limit's (largest on {worst}: {ours:.4f} vs {exact:.4f})"


# measuring -------------------------------------------------------------------------------------


def measure(bench: Bench, rows: int, tool: str, executor: str | None = None) -> Outcome:
    """One worker of ``tool`` on the files of ``rows`` rows per side."""
    cfg = bench.cfg
    reference, current = data.path_for("reference", rows), data.path_for("current", rows)
    from_files = rows > IN_MEMORY_MAX
    html = None if from_files or tool == "limit" else cfg.folder / f"{tool}-{rows}.html"
    args = {"reference": str(reference), "current": str(current), "numeric": data.NUMERIC_COLUMNS,
            "categorical": data.CATEGORICAL_COLUMNS, "source": "files" if from_files else "frames",
            "repeats": cfg.repeats_for(tool, rows), "warmup_rows": min(WARMUP_ROWS, rows),
            "executor": executor, "html": str(html) if html else None}
    python = bench.evidently if tool == "evidently" else sys.executable
    assert python is not None
    label = {"conveyor": "Conveyor" + (f" (executor={executor})" if executor else ""), "evidently": "Evidently",
             "limit": "the SciPy limit"}[tool]
    bench.console.print(f"  [dim]{label}, {rows:,} rows per side, {args['repeats']} run(s)...[/]")
    return run_worker(python, tool, args, cfg.folder, sample_tree=executor == "ray")


def run_size(bench: Bench, rows: int) -> None:
    """Every tool on one size; one table."""
    cfg, console, report = bench.cfg, bench.console, bench.report
    from_files = rows > IN_MEMORY_MAX
    console.rule(f"{rows:,} rows per side" + (" from Parquet" if from_files else ""))
    reference, _, written = data.ensure_files(rows)
    if written is not None:
        console.print(f"  [dim]wrote {rows:,} rows per side to {reference.parent} in {written:,.1f} s "
                      f"({size(reference.stat().st_size)} per side)[/]")
    limit = measure(bench, rows, "limit")
    if not limit.ok:
        raise RuntimeError(f"the limit failed at {rows:,} rows: {limit.error}")
    runs = [("Conveyor conveyor.drift(reference, current)", measure(bench, rows, "conveyor"))]
    if from_files and cfg.ray:
        runs.append(('Conveyor conveyor.drift(reference, current, executor="ray")',
                     measure(bench, rows, "conveyor", "ray")))
    evidently = None
    if cfg.evidently and bench.evidently is not None and not from_files:
        evidently = measure(bench, rows, "evidently")
    table: list[tuple[str, str, str]] = []
    for name, outcome in runs:
        table.append(conveyor_row(bench, rows, name, outcome, evidently, limit))
    if evidently is not None:
        if evidently.ok:
            bench.evidently_peaks[rows] = evidently.result["peak_rss"]  # type: ignore[index]
        table.append(evidently_row(bench, evidently, limit))
    else:
        largest = max(bench.evidently_peaks, default=0)
        measured = (f"; it took {size(bench.evidently_peaks[largest])} at {largest:,} rows above"
                    if largest else "")
        why = (f"left out above {IN_MEMORY_MAX:,} rows per side (does not fit{measured})" if from_files else
               "skipped (--smoke)" if cfg.smoke else "skipped (--skip-evidently)" if not cfg.evidently else
               "not installed")
        table.append(("Evidently Report([DataDriftPreset()]).run", "—", why))
    right, check = flag_check(limit)
    how = "one column of each file at a time" if from_files else "on the frames' columns"
    versus = compared(limit.seconds, evidently.seconds, "Evidently") + " · " if evidently and evidently.ok else ""
    table.append((f"SciPy {limit.result['version']} wasserstein_distance / jensenshannon, {how} (limit)",  # type: ignore[index]
                  figure(limit), versus + check + ("" if right else " [red](the data does not separate well)[/]")))
    table += html_rows(runs[0][1], evidently)
    source = (f"from Parquet ({size(reference.stat().st_size)} per side), reading timed" if from_files
              else "in-memory pandas DataFrames (reading not timed)")
    runs_per_tool = ", ".join(f"{tool} {cfg.repeats_for(tool, rows)}" for tool in
                              ("conveyor", "evidently", "limit") if tool != "evidently" or evidently is not None)
    report.table(f"Data drift, {rows:,} rows per side × {len(data.COLUMNS)} columns ({len(data.NUMERIC_COLUMNS)} "
                 f"numeric, {len(data.CATEGORICAL_COLUMNS)} categorical), {source}: median of timed runs "
                 f"({runs_per_tool}) after a warm-up; peak RSS of "
                 f"each worker process (data included)", table)


def conveyor_row(bench: Bench, rows: int, name: str, outcome: Outcome, evidently: Outcome | None,
                 limit: Outcome) -> tuple[str, str, str]:
    """Conveyor's row; records failures and targets."""
    report = bench.report
    if not outcome.ok:
        report.fail(f"{name} at {rows:,} rows: {outcome.error}")
        return name, "[red]failed[/]", outcome.error.strip().splitlines()[-1]
    right, check = flag_check(outcome)
    if not right:
        report.fail(f"{name} at {rows:,} rows: {check}")
    notes = []
    ray = "executor" in name
    if evidently is not None and evidently.ok:
        speedup = evidently.seconds / outcome.seconds
        note = compared(outcome.seconds, evidently.seconds, "Evidently")
        if rows == 1_000_000 and not ray:
            same = right and flag_check(evidently)[0]
            mark = report.target("1M rows: ≥ 30× faster than Evidently, same columns flagged",
                                 speedup >= SPEEDUP_TARGET and same)
            note += f" (target ≥ {SPEEDUP_TARGET:.0f}× with the same columns: {mark})"
        notes.append(note)
    elif rows == 1_000_000 and not ray and bench.report.judge:
        notes.append("vs Evidently not judged (no Evidently run)")
    notes.append(compared(outcome.seconds, limit.seconds, "the limit"))
    if rows == 10_000_000 and not ray:
        fast = report.target("10M rows from Parquet < 60 s", outcome.seconds < SECONDS_TARGET)
        small = report.target("10M rows from Parquet peak RSS < 1.5 GiB", outcome.result["peak_rss"] < RSS_TARGET)  # type: ignore[index]
        notes.append(f"< 60 s {fast}, < 1.5 GiB {small}")
    notes.append(check)
    notes.append(agreement(outcome, limit))
    if ray or outcome.result.get("warmup_seconds", 0) > 5:  # type: ignore[union-attr]
        notes.append(f"warm-up (untimed) {seconds(outcome.result['warmup_seconds'])}")  # type: ignore[index]
    bench.summary.append(f"{rows:,} rows: {name.removeprefix('Conveyor ')} {seconds(outcome.seconds)}, peak RSS "
                         f"{size(outcome.result['peak_rss'])}"  # type: ignore[index]
                         + (f", {evidently.seconds / outcome.seconds:,.1f}× faster than Evidently"
                            if evidently is not None and evidently.ok else "")
                         + f", {'right' if right else 'WRONG'} columns flagged")
    return name, figure(outcome), " · ".join(n for n in notes if n)


def evidently_row(bench: Bench, outcome: Outcome, limit: Outcome) -> tuple[str, str, str]:
    name = f"Evidently {bench.evidently_version} Report([DataDriftPreset()]).run"
    if not outcome.ok:
        return name, "[yellow]failed[/]", outcome.error.strip().splitlines()[-1]
    notes = [compared(outcome.seconds, limit.seconds, "the limit"), flag_check(outcome)[1], agreement(outcome, limit)]
    return name, figure(outcome), " · ".join(n for n in notes if n)


def html_rows(conveyor_run: Outcome, evidently: Outcome | None) -> list[tuple[str, str, str]]:
    """The HTML reports' sizes (in-memory sizes only)."""
    rows = []
    ours = conveyor_run.result if conveyor_run.ok else None
    theirs = evidently.result if evidently is not None and evidently.ok else None
    if ours is not None and (ours["html_bytes"] or ours["html_note"]):
        if ours["html_bytes"]:
            note = (f"{theirs['html_bytes'] / ours['html_bytes']:,.1f}× smaller than Evidently's"
                    if theirs and theirs["html_bytes"] else "")
            rows.append(("HTML report: Conveyor render_report(drift_report_data(...))",
                         f"{size(ours['html_bytes'])} (built in {seconds(ours['html_seconds'])})", note))
        else:
            rows.append(("HTML report: Conveyor render_report(drift_report_data(...))", "—", ours["html_note"]))
    if theirs is not None and theirs["html_bytes"]:
        written = f"{size(theirs['html_bytes'])} (written in {seconds(theirs['html_seconds'])})"
        rows.append(("HTML report: Evidently snapshot.save_html", written, f"{len(data.COLUMNS)} columns"))
    return rows


def describe(bench: Bench) -> None:
    cfg = bench.cfg
    from importlib import metadata

    libraries = ", ".join(f"{name} {metadata.version(name)}" for name in ("pandas", "pyarrow", "numpy", "scipy"))
    evidently = (f"Evidently {bench.evidently_version} (in {bench.evidently.parent.parent.name})" if bench.evidently
                 else "Evidently skipped")
    drift = "present" if hasattr(conveyor, "drift") else "[red]MISSING[/]"
    bench.console.print(f"Conveyor {conveyor.__version__} at {conveyor_revision()} (conveyor.drift {drift}) vs "
                        f"{evidently}; Python {sys.version.split()[0]}, {libraries}; {os.cpu_count()} cores, "
                        f"load average {os.getloadavg()[0]:.2f} at the start")
    bench.console.print(f"Sizes (rows per side): {', '.join(f'{s:,}' for s in cfg.sizes)}"
                        f"{' (smoke)' if cfg.smoke else ''}; drift injected in {len(data.DRIFTED)} columns: "
                        f"{data.describe_drift()}", soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    """Run every size and print the tables; 1 when a Conveyor run failed or flagged wrong columns."""
    console = Console(width=None if sys.stdout.isatty() else 200)
    started = time.perf_counter()
    with scratch("monitoring-") as folder:
        cfg = parse_config(argv, folder)
        bench = Bench(cfg, console, Report(console, judge=not cfg.smoke))
        if cfg.evidently:
            bench.evidently, found = ensure_evidently(console, data.FOLDER.parent / "evidently-pip.log")
            if bench.evidently is None:
                console.print(f"[yellow]{found}; Evidently is left out[/]")
            bench.evidently_version = found
        describe(bench)
        for rows in cfg.sizes:
            run_size(bench, rows)
    console.rule("summary")
    for line in bench.summary:
        console.print(line, soft_wrap=True)
    for name, ok in bench.report.targets:
        console.print(f"target {name}: {'met' if ok else '[red]MISSED[/]'}")
    console.print(f"Total time {time.perf_counter() - started:,.0f} s; load average {os.getloadavg()[0]:.2f} at the end.")
    if bench.report.failures:
        console.print(f"[bold red]{len(bench.report.failures)} Conveyor failure(s)[/]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
