"""Scenario 3 of ``bench/serving.py``: batch scoring of a Parquet file.

The file (30 float columns, row groups of ``chunk_rows``) is written once with pyarrow
from the training rows, resampled and jittered. For each model, in turn:
``conveyor -w WS score NAME@champion -i in.parquet -o out.parquet --chunk-rows N`` and
the limit (``_serving_batch_limit.py``: pyarrow record batches, not pre-buffered, into
``predict_proba`` of the same fitted model, results discarded), each a subprocess timed
from start to exit, peak RSS from ``wait4``'s ``ru_maxrss``. Conveyor's output is
checked: as many rows as the input, and the first rows' probabilities equal to the
fitted model's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from _harness import BENCH_DIR
from _serving_common import (
    FEATURES,
    MODELS,
    REGISTERED,
    Context,
    child_env,
    mib,
    per_second,
)

CHECKED_ROWS = 10_000  # rows of Conveyor's output compared with the fitted model
RSS_TARGET = 2**30
SHARE_TARGET = 0.8


@dataclass(frozen=True)
class Measured:
    """A subprocess: wall seconds from start to exit, peak resident memory, exit status."""

    seconds: float
    peak_rss: int
    returncode: int
    log: Path


def run_measured(argv: list[str], log: Path) -> Measured:
    """Run ``argv`` (output into ``log``) and wait for it with ``wait4`` for its own rusage."""
    start = time.perf_counter()
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=child_env())
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    return Measured(seconds, usage.ru_maxrss * 1024, process.returncode, log)


def write_input(ctx: Context, path: Path) -> None:
    """``batch_rows`` rows in row groups of ``chunk_rows``: training rows drawn at random, plus noise."""
    cfg, base = ctx.cfg, ctx.prepared.features.to_numpy()
    rng = np.random.default_rng(11)
    schema = pa.schema([(name, pa.float64()) for name in FEATURES])
    start = time.perf_counter()
    with pq.ParquetWriter(path, schema) as writer:
        for offset in range(0, cfg.batch_rows, cfg.chunk_rows):
            count = min(cfg.chunk_rows, cfg.batch_rows - offset)
            noise = rng.normal(0, 0.05, (count, len(FEATURES)))
            block = np.asfortranarray(base[rng.integers(0, len(base), count)] + noise)
            writer.write_table(pa.table({name: block[:, i] for i, name in enumerate(FEATURES)}, schema=schema),
                               row_group_size=cfg.chunk_rows)
    ctx.console.print(f"  [dim]wrote {cfg.batch_rows:,} rows ({path.stat().st_size / 2**30:.2f} GiB) in "
                      f"{time.perf_counter() - start:,.1f} s[/]")


def check_output(ctx: Context, model: str, source: Path, output: Path) -> str:
    """What is wrong with Conveyor's output ('' if nothing): row count, first rows' probabilities."""
    if not output.exists():
        return "no output file"
    rows = pq.ParquetFile(output).metadata.num_rows
    if rows != ctx.cfg.batch_rows:
        return f"{rows:,} output rows for {ctx.cfg.batch_rows:,} input rows"
    scored = next(pq.ParquetFile(output).iter_batches(batch_size=CHECKED_ROWS, columns=["probability_1"]))
    given = next(pq.ParquetFile(source).iter_batches(batch_size=CHECKED_ROWS)).to_pandas()
    expected = ctx.prepared.fitted[model].predict_proba(given)[:, 1]
    got = scored.column(0).to_numpy()
    if not np.allclose(got, expected, rtol=0, atol=1e-6):
        return f"probabilities differ from the fitted model's by up to {np.abs(got - expected).max():.3g}"
    return ""


def score_one(ctx: Context, model: str, source: Path) -> tuple[Measured, Measured, str]:
    """Conveyor's scorer, then the limit, on one model; Conveyor's output problem ('' if none)."""
    cfg = ctx.cfg
    output = cfg.folder / f"scored-{model}.parquet"
    conveyor = run_measured([sys.executable, "-m", "conveyor", "-w", str(ctx.prepared.workspace), "score",
                             f"{REGISTERED[model]}@champion", "-i", str(source), "-o", str(output),
                             "--chunk-rows", str(cfg.chunk_rows)], cfg.folder / f"score-{model}.log")
    problem = f"exited {conveyor.returncode}" if conveyor.returncode else check_output(ctx, model, source, output)
    output.unlink(missing_ok=True)
    args = {"model": str(ctx.prepared.pickles[model]), "input": str(source), "chunk_rows": cfg.chunk_rows}
    limit = run_measured([sys.executable, str(BENCH_DIR / "_serving_batch_limit.py"), json.dumps(args)],
                         cfg.folder / f"limit-{model}.log")
    if limit.returncode:
        raise RuntimeError(f"the batch limit failed on {model}:\n{limit.log.read_text()[-2000:]}")
    return conveyor, limit, problem


def run(ctx: Context) -> None:
    """Scenario 3: write the file, score it with both models, print the table."""
    cfg, report = ctx.cfg, ctx.report
    source = cfg.folder / "batch-input.parquet"
    write_input(ctx, source)
    rows: list[tuple[str, str, str]] = []
    summary = []
    for model in MODELS:
        conveyor, limit, problem = score_one(ctx, model, source)
        loop = json.loads(limit.log.read_text().strip().splitlines()[-1])["result"]["seconds"]
        limit_row = (f"pyarrow batches → predict_proba, results discarded (limit), {model}",
                     figure(cfg.batch_rows, limit), f"its read + predict loop alone: {loop:,.1f} s")
        name = f"Conveyor score --chunk-rows {cfg.chunk_rows:,}, {model}"
        if problem:
            report.fail(f"conveyor score {model}: {problem}\n{conveyor.log.read_text()[-1500:]}")
        if conveyor.returncode:
            rows += [(name, "[red]failed[/]", problem), limit_row]
            continue
        share = limit.seconds / conveyor.seconds
        small = conveyor.peak_rss < RSS_TARGET
        note = (f"{share:.0%} of the limit's rows/s (target ≥ {SHARE_TARGET:.0%}: "
                f"{report.target(f'batch {model} ≥ 80% of the limit', share >= SHARE_TARGET)}); "
                f"peak RSS < 1 GiB {report.target(f'batch {model} peak RSS < 1 GiB', small)}; "
                + (f"[red]output WRONG: {problem}[/]" if problem else "output checked (row count, probabilities)"))
        rows += [(name, figure(cfg.batch_rows, conveyor), note), limit_row]
        summary.append(f"{model} Conveyor {cfg.batch_rows / conveyor.seconds:,.0f} rows/s = {share:.0%} of the limit, "
                       f"peak RSS {mib(conveyor.peak_rss)}")
    report.table(f"Batch scoring of {cfg.batch_rows:,} rows × {len(FEATURES)} float columns from Parquet (row groups "
                 f"of {cfg.chunk_rows:,}): rows/s over each subprocess's whole life (start-up and model load "
                 f"included), one run each, one OpenMP thread", rows)
    ctx.summary.append("batch: " + "; ".join(summary))


def figure(rows: int, measured: Measured) -> str:
    """``1,234,567 rows/s (8.1 s) · peak RSS 512 MiB``."""
    rate = per_second(rows / measured.seconds, "rows/s")
    return f"{rate} ({measured.seconds:,.1f} s) · peak RSS {mib(measured.peak_rss)}"
