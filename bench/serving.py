"""Conveyor's model server and batch scorer against ``mlflow models serve``, BentoML and the
physical limit, side by side, in one run.

Usage::

    .venv/bin/python bench/serving.py [--smoke] [--repeats N] [--skip-competitors]
                                      [--scenario latency|throughput|batch|logging|enrichment]

Two models, the same for every tool, trained here on 50,000 rows of seeded synthetic
binary data (scikit-learn ``make_classification``, 30 float columns ``f0``..``f29``): a
Pipeline StandardScaler + LogisticRegression and a 200-tree LightGBM classifier. Each is
written as a joblib file (what MLflow, BentoML and the limit load) and logged with its
signature and registered in a temporary Conveyor workspace with the alias ``champion``.
Every process, servers included, runs one OpenMP/BLAS thread (LightGBM's OpenMP is
pathologically slow under contention on this 2-core machine), and one server process
per tool. The tools:

- Conveyor: ``.venv/bin/python -m conveyor -w WS serve NAME@champion --port P`` (and with
  ``--no-log`` when ``conveyor serve`` has it), ``POST /v1/models/NAME/predict``
  ``{"instances": [{...}]}``;
- MLflow: the latest ``mlflow`` in ``bench/.venvs/mlflow-serve``, the models saved with
  ``mlflow.sklearn``/``mlflow.lightgbm.save_model`` there (``_serving_mlflow_save.py``),
  ``mlflow models serve -m DIR --env-manager local``, ``POST /invocations``
  ``{"dataframe_records": [{...}]}``;
- BentoML: the latest ``bentoml`` in ``bench/.venvs/bentoml``, ``bentoml serve`` of a
  DataFrame service and of a NumPy service with adaptive batching (``_serving_bento_service.py``);
- the limit: ``predict_proba`` of the fitted model in this process, on a one-row
  DataFrame and a one-row NumPy array.

Both virtualenvs are created with pip on first use (with this virtualenv's scikit-learn
and LightGBM versions, so the same joblib files load) and reused; ``--skip-competitors``
leaves them out. A competitor's variant that fails (start-up, timeouts, errors) is shown
as broken. Scenarios (``_serving_online.py``, ``_serving_batch.py``):

1. latency: 2,000 sequential keep-alive requests from one ``http.client`` connection in
   this process after 200 warm-up ones, client-side p50 and p99 per tool and model, and
   Conveyor's server-side overhead (its p50 minus the limit's one-row p50). Targets, on
   the scikit-learn model: p50 < 2 ms, p99 < 5 ms, p50 ≥ 2.5× lower than BentoML's
   DataFrame service and ≥ 6× lower than MLflow's;
2. throughput: 8 concurrent keep-alive connections for 15 s per variant (``wrk -t2 -c8``
   with a Lua script, installed with apt-get if missing; else a Python generator, said in
   the table); Conveyor must answer every request with 2xx. Targets, on the scikit-learn
   model: Conveyor (prediction log on) ≥ 2× BentoML's best variant and ≥ 10× MLflow;
3. batch: ``conveyor score --chunk-rows 250000`` of a 10M-row Parquet file against
   pyarrow batches into ``predict_proba``: rows/s (target ≥ 80% of the limit) and peak
   RSS (target < 1 GiB);
4. logging: Conveyor's p50 with the prediction log (the default) minus its p50 with
   ``--no-log``, measured by scenario 1's loop (target < 0.3 ms);
5. enrichment: one-row requests sending only an entity key (30 features fetched from the
   SQLite, and the Redis, online store) against requests sending the features, through the
   server's request path (``_serving_enrichment.py``; target < 0.3 ms at p50).

Latency figures are medians of ``--repeats`` (default 3) in which the variants and the
limit alternate, so that drift of this shared machine hits all of them; throughput and
batch run once per variant. ``--smoke``: 5,000 training rows, 20 trees, 200 requests, 2 s of load,
200,000 batch rows, 1 repeat, targets not judged. Scratch (data, workspace, models,
server logs) lives in a folder under ``bench/.work``, removed at the end. Exits 1 when
the Conveyor side fails: a server that does not come up, a non-2xx answer, a wrong
probability, a failed or wrong batch scoring.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path

# One OpenMP/BLAS thread here and in every child process, set before numpy and LightGBM load.
os.environ.update({name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")})
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _serving_batch
import _serving_enrichment
import _serving_online
from _harness import Report, scratch
from _serving_common import Config, Context, prepare
from _serving_servers import Competitors, conveyor_flags, prepare_competitors
from rich.console import Console
from tracking import conveyor_revision

import conveyor

SCENARIOS = ("latency", "throughput", "batch", "logging", "enrichment")
# The limit's NumPy rows have no column names, which scikit-learn warns about on every call.
warnings.filterwarnings("ignore", message="X does not have valid feature names")


def parse_config(argv: list[str] | None, folder: Path) -> Config:
    """The command line as a ``Config``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, 1 repeat, targets not judged (CI)")
    parser.add_argument("--repeats", type=int, default=None, help="latency repeats, medians quoted (default 3)")
    parser.add_argument("--skip-competitors", action="store_true", help="Conveyor and the limit only")
    parser.add_argument("--scenario", choices=SCENARIOS, help="run only this scenario")
    args = parser.parse_args(argv)
    smoke = args.smoke
    return Config(
        smoke=smoke,
        repeats=args.repeats or (1 if smoke else 3),
        train_rows=5_000 if smoke else 50_000,
        trees=20 if smoke else 200,
        calls=200 if smoke else 2_000,
        warmup=20 if smoke else 200,
        duration=2 if smoke else 15,
        batch_rows=200_000 if smoke else 10_000_000,
        chunk_rows=50_000 if smoke else 250_000,
        competitors=not args.skip_competitors,
        scenarios=(args.scenario,) if args.scenario else SCENARIOS,
        folder=folder,
    )


def describe(ctx: Context, tools: Competitors, no_log: bool) -> None:
    """Print what is compared, where."""
    cfg = ctx.cfg
    libraries = ", ".join(f"{name} {metadata.version(name)}" for name in
                          ("scikit-learn", "lightgbm", "pandas", "pyarrow", "uvicorn", "starlette"))
    mlflow = f"MLflow {tools.versions['mlflow']}" if tools.mlflow else "MLflow skipped"
    bentoml = f"BentoML {tools.versions['bentoml']}" if tools.bentoml else "BentoML skipped"
    ctx.console.print(f"Conveyor {conveyor.__version__} at {conveyor_revision()} vs {mlflow} and {bentoml}; "
                      f"Python {sys.version.split()[0]}, {libraries}; {os.cpu_count()} cores, load average "
                      f"{os.getloadavg()[0]:.2f} at the start")
    ctx.console.print(f"Scenarios: {', '.join(cfg.scenarios)}; {cfg.repeats} latency repeat(s)"
                      f"{' (smoke sizes)' if cfg.smoke else ''}; conveyor serve --no-log "
                      f"{'available' if no_log else 'NOT available yet'}; temporary folder {cfg.folder}")


def main(argv: list[str] | None = None) -> int:
    """Run the scenarios and print the tables; 1 when the Conveyor side failed."""
    console = Console(width=None if sys.stdout.isatty() else 200)
    started = time.perf_counter()
    with scratch("serving-") as folder:
        cfg = parse_config(argv, folder)
        ctx = Context(cfg, console, Report(console, judge=not cfg.smoke), prepare(cfg, console))
        tools = prepare_competitors(ctx)
        no_log = "--no-log" in conveyor_flags()
        describe(ctx, tools, no_log)
        if set(cfg.scenarios) - {"batch", "enrichment"}:
            console.rule("latency, throughput, logging")
            online = _serving_online.measure(ctx, tools, no_log)
            _serving_online.print_tables(ctx, online)
        if "batch" in cfg.scenarios:
            console.rule("batch")
            _serving_batch.run(ctx)
        if "enrichment" in cfg.scenarios:
            console.rule("enrichment")
            _serving_enrichment.run(ctx)
    console.rule("summary")
    for line in ctx.summary:
        console.print(line, soft_wrap=True)
    for name, ok in ctx.report.targets:
        console.print(f"target {name}: {'met' if ok else '[red]MISSED[/]'}")
    console.print(f"Total time {time.perf_counter() - started:,.0f} s; "
                  f"load average {os.getloadavg()[0]:.2f} at the end.")
    if ctx.report.failures:
        console.print(f"[bold red]{len(ctx.report.failures)} Conveyor failure(s)[/]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
