"""Conveyor's model registry against MLflow and the libraries alone, side by side, in one run.

Usage::

    .venv/bin/python bench/registry.py [--smoke] [--skip-mlflow] [--repeats N] [--threads N]

One scikit-learn Pipeline (StandardScaler on 15 float columns and OneHotEncoder on 3
string columns, then a 100-iteration HistGradientBoostingClassifier) and one 200-tree
LGBMClassifier are trained once here, on 50,000 generated rows, and handed to every tool
(a joblib file each, plus the rows as Parquet). Scenarios:

1. log + register the pipeline (one run per model): Conveyor ``run.log_model`` vs
   ``mlflow.sklearn.log_model`` (pip requirements inferred, its default, then given) vs
   ``skops.io.dump`` / ``joblib.dump`` to a file;
2. cold load by alias ``models:/NAME@champion`` (Conveyor's model cache emptied first;
   MLflow copies the files on every load) vs ``skops.io.load`` / ``joblib.load``, and the
   same for the LightGBM model vs ``lightgbm.Booster(model_file=...)``;
3. warm ``predict_proba`` of the pipeline on one row (latency) and on 10,000 rows
   (throughput): Conveyor (signature validation first) vs MLflow pyfunc (schema
   enforcement first) vs the pipeline itself; Conveyor's predictor is also alternated
   call by call with its own native model, which isolates the cost of validation.

Each tool runs in its own process: ``_registry_conveyor.py`` and ``_registry_limit.py``
here, ``_registry_mlflow.py`` in ``bench/.venvs/mlflow`` (created on first use, with the
project's scikit-learn and LightGBM versions added so the same model files load there).
Figures are medians of ``--repeats`` after a warm-up. Exits 1 when the Conveyor side is
wrong (wrong version numbers, a load by alias serving the wrong version, probabilities
that differ from the native model's).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import (
    MLFLOW_VENV,
    WORK_DIR,
    Mlflow,
    Report,
    call_worker,
    ensure_mlflow,
    scratch,
    times,
)
from _registry_workload import (
    LIGHTGBM_MODEL,
    NUMERIC,
    SKLEARN_MODEL,
    STRINGS,
    TARGET,
    lightgbm_frame,
    make_frame,
)
from tracking import conveyor_revision

import conveyor

Row = tuple[str, str, str]
# Distributions whose versions must match between the project's and MLflow's virtualenvs,
# so both load the same fitted models from the same joblib files.
SHARED_LIBRARIES = ("scikit-learn", "lightgbm")


@dataclass(frozen=True)
class Config:
    """What to run, from the command line."""

    smoke: bool
    rows: int  # training rows
    score_rows: int  # rows of the batch prediction
    iterations: int  # HistGradientBoostingClassifier max_iter
    trees: int  # LGBMClassifier n_estimators
    repeats: int  # timed logs, loads and batch predictions per tool
    calls: int  # timed one-row predictions per tool
    threads: int  # OpenMP threads of each worker
    mlflow: Mlflow | None  # None: skip MLflow


@dataclass(frozen=True)
class Inputs:
    """The files every worker reads: the data, the fitted models, the skops types to trust."""

    folder: Path
    train: Path
    score: Path
    pipeline: Path
    lightgbm: Path
    trusted_types: list[str]

    def args(self, cfg: Config, command: str, **extra: Any) -> dict[str, Any]:
        """A worker's JSON argument."""
        return {
            "command": command, "train": str(self.train), "score": str(self.score), "model": str(self.pipeline),
            "trusted_types": self.trusted_types, "count": cfg.repeats, "calls": cfg.calls, "predict": False, **extra,
        }


# formatting ------------------------------------------------------------------------------


def seconds(value: float) -> str:
    """``0.213 s``."""
    return f"{value:.3f} s"


def micros(value: float) -> str:
    """``1,234 µs``."""
    return f"{value * 1e6:,.0f} µs"


def rows_per_second(rows: int, value: float) -> str:
    """``123,456 rows/s (81.0 ms)``."""
    return f"{rows / value:,.0f} rows/s ({value * 1000:,.1f} ms)"


def versus(ours: float, theirs: float) -> str:
    """``Conveyor 3.20× faster`` or ``Conveyor 1.40× slower`` (``ours`` and ``theirs`` are times)."""
    return f"Conveyor {times(theirs / ours)} faster" if ours <= theirs else f"Conveyor {times(ours / theirs)} slower"


def of_limit(ours: float, limit: float) -> str:
    """``Conveyor takes 1.25× the limit``."""
    return f"Conveyor takes {times(ours / limit)} the limit"


# set-up ------------------------------------------------------------------------------------


def build_pipeline(iterations: int) -> Any:
    """The scikit-learn Pipeline of scenarios 1-3 (unfitted)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    prepare = ColumnTransformer([
        ("numbers", StandardScaler(), NUMERIC),
        ("strings", OneHotEncoder(handle_unknown="ignore"), list(STRINGS)),
    ])
    classifier = HistGradientBoostingClassifier(max_iter=iterations, early_stopping=False, random_state=0)
    return Pipeline([("prepare", prepare), ("classify", classifier)])


def prepare_inputs(cfg: Config, folder: Path, console: Console) -> Inputs:
    """Generate the data, train both models once and write what the workers read."""
    import lightgbm as lgb
    import skops.io as sio

    features, target = make_frame(cfg.rows, seed=1)
    score, _ = make_frame(cfg.score_rows, seed=2)
    inputs = Inputs(folder, folder / "train.parquet", folder / "score.parquet", folder / "pipeline.joblib",
                    folder / "lightgbm.joblib", [])
    features.assign(**{TARGET: target}).to_parquet(inputs.train, index=False)
    score.to_parquet(inputs.score, index=False)
    start = time.perf_counter()
    pipeline = build_pipeline(cfg.iterations).fit(features, target)
    booster = lgb.LGBMClassifier(n_estimators=cfg.trees, random_state=0, verbose=-1).fit(lightgbm_frame(features), target)
    joblib.dump(pipeline, inputs.pipeline)
    joblib.dump(booster, inputs.lightgbm)
    trusted = sorted(sio.get_untrusted_types(data=sio.dumps(pipeline)))
    console.print(f"Trained the pipeline ({cfg.iterations} iterations) and LightGBM ({cfg.trees} trees) on "
                  f"{cfg.rows:,} rows in {time.perf_counter() - start:,.0f} s; skops types to trust: {', '.join(trusted)}")
    return dataclasses.replace(inputs, trusted_types=trusted)


def versions_in(python: Path | str) -> dict[str, str | None]:
    """Versions of ``SHARED_LIBRARIES`` installed for ``python``."""
    code = ("import json, importlib.metadata as m\n"
            "def v(n):\n    try: return m.version(n)\n    except m.PackageNotFoundError: return None\n"
            f"print(json.dumps({{n: v(n) for n in {list(SHARED_LIBRARIES)!r}}}))")
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def ensure_mlflow_libraries(python: Path, console: Console, install: bool) -> bool:
    """Give the MLflow virtualenv this project's scikit-learn and LightGBM versions; False if
    they differ and ``install`` is off (``--smoke``)."""
    wanted = {name: metadata.version(name) for name in SHARED_LIBRARIES}
    if versions_in(python) == wanted:
        return True
    if not install:
        return False
    pins = [f"{name}=={version}" for name, version in wanted.items()]
    console.print(f"Installing {', '.join(pins)} into {MLFLOW_VENV} (first use only)...")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", *pins], check=True)
    if versions_in(python) != wanted:
        raise SystemExit(f"{MLFLOW_VENV} has {versions_in(python)} after installing {', '.join(pins)}")
    return True


# workers -------------------------------------------------------------------------------------

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def worker_environment(threads: int) -> Iterator[None]:
    """Workers started meanwhile run ``threads`` OpenMP/BLAS threads (read when the libraries
    load), and MLflow sends no telemetry."""
    settings = {**{name: str(threads) for name in THREAD_VARIABLES}, "MLFLOW_DISABLE_TELEMETRY": "true"}
    saved = {name: os.environ.get(name) for name in settings}
    os.environ.update(settings)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_worker(console: Console, label: str, python: Path | str, script: str, args: dict[str, Any]) -> dict[str, Any]:
    """One worker to completion, with a line saying how long it took."""
    result = call_worker(python, script, args)
    console.print(f"  [dim]{label}: {result['wall']:,.1f} s in the worker[/]")
    return result


def conveyor_worker(console: Console, label: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run ``_registry_conveyor.py`` in this virtualenv."""
    return run_worker(console, f"Conveyor {label}", sys.executable, "_registry_conveyor.py", args)


def limit_worker(console: Console, label: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run ``_registry_limit.py`` in this virtualenv."""
    return run_worker(console, f"limit {label}", sys.executable, "_registry_limit.py", args)


def mlflow_worker(cfg: Config, console: Console, label: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run ``_registry_mlflow.py`` in the MLflow virtualenv on a fresh SQLite database."""
    assert cfg.mlflow is not None
    with scratch("registry-mlflow-") as folder:
        db = cfg.mlflow.fresh_db(folder)
        return run_worker(console, f"MLflow {label}", cfg.mlflow.python, "_registry_mlflow.py", {**args, "db": str(db)})


def probabilities_match(report: Report, what: str, path: Path, reference: Path, fail: bool) -> str:
    """Compare a tool's probabilities with the native model's; a Conveyor mismatch fails the run."""
    ours, theirs = np.load(path), np.load(reference)
    if ours.shape == theirs.shape and np.allclose(ours, theirs, rtol=0, atol=1e-9):
        return "same probabilities as the native model"
    difference = float(np.abs(ours - theirs).max()) if ours.shape == theirs.shape else float("nan")
    if fail:
        report.fail(f"{what}: probabilities differ from the native model's (shape {ours.shape} vs "
                    f"{theirs.shape}, max difference {difference:.3g})")
    return f"DIFFERENT probabilities (max difference {difference:.3g})"


# scenario 1: log + register --------------------------------------------------------------------


def scenario_log(cfg: Config, inputs: Inputs, report: Report, console: Console) -> None:
    """Scenario 1: seconds per logged and registered model."""
    ours = conveyor_worker(console, f"log + register × {cfg.repeats}", inputs.args(cfg, "log"))
    expected = list(range(1, cfg.repeats + 2))
    if ours["versions"] != expected:
        report.fail(f"log + register: versions {ours['versions']}, expected {expected}")
    rows: list[Row] = [(
        "Conveyor run.log_model(training_data=, registered_model_name=)", seconds(ours["median"]),
        (f"versions {expected[1]}..{expected[-1]} registered ({'right' if ours['versions'] == expected else 'WRONG'}); "
         f"{ours['bytes'] / 1e6:.2f} MB of model files"),
    )]
    if cfg.mlflow:
        for requirements, name in (("inferred", "MLflow sklearn.log_model(input_example=, registered_model_name=)"),
                                   ("given", "MLflow, the same with pip_requirements= given (no inference)")):
            theirs = mlflow_worker(cfg, console, f"log + register × {cfg.repeats}, requirements {requirements}",
                                   inputs.args(cfg, "log", requirements=requirements))
            rows.append((name, seconds(theirs["median"]), versus(ours["median"], theirs["median"])))
    limit = limit_worker(console, f"dump × {cfg.repeats}", inputs.args(cfg, "log"))
    rows.append(("skops.io.dump to a local file (limit)", seconds(limit["skops"]), of_limit(ours["median"], limit["skops"])))
    rows.append(("joblib.dump to a local file (pickle)", seconds(limit["joblib"]), of_limit(ours["median"], limit["joblib"])))
    report.table(f"1. log + register a fitted Pipeline ({len(NUMERIC)} float + {len(STRINGS)} string columns, "
                 f"{cfg.iterations}-iteration HistGradientBoostingClassifier, {cfg.rows:,} training rows), one run "
                 f"per model: seconds per model, median of {cfg.repeats}", rows)


# scenarios 2 and 3: load by alias, predict -----------------------------------------------------


def serve_all(cfg: Config, inputs: Inputs, console: Console, flavor: str) -> dict[str, dict[str, Any]]:
    """Each tool's ``serve`` command on one flavor; keyed by tool."""
    model = inputs.pipeline if flavor == "sklearn" else inputs.lightgbm
    predict = flavor == "sklearn"
    label = f"{flavor}: load × {cfg.repeats}" + (f", predict {cfg.calls} × 1 row + {cfg.repeats} × {cfg.score_rows:,}" if predict else "")

    def args(tool: str) -> dict[str, Any]:
        path = inputs.folder / f"probabilities-{tool}-{flavor}.npy"
        return inputs.args(cfg, "serve", flavor=flavor, model=str(model), predict=predict, probabilities=str(path))

    results = {"conveyor": conveyor_worker(console, label, args("conveyor"))}
    if cfg.mlflow:
        results["mlflow"] = mlflow_worker(cfg, console, label, args("mlflow"))
    results["limit"] = limit_worker(console, label, args("limit"))
    for tool, result in results.items():
        result["probabilities"] = Path(args(tool)["probabilities"])
    return results


def load_rows(report: Report, flavor: str, results: dict[str, dict[str, Any]]) -> list[Row]:
    """Scenario 2's rows of one flavor."""
    ours, limit = results["conveyor"], results["limit"]
    if ours["version"] != ours["expected_version"]:
        report.fail(f"{flavor}: load by alias served version {ours['version']}, expected {ours['expected_version']}")
    same = probabilities_match(report, f"Conveyor {flavor}", ours["probabilities"], limit["probabilities"], fail=True)
    name = SKLEARN_MODEL if flavor == "sklearn" else LIGHTGBM_MODEL
    rows: list[Row] = [(f"Conveyor load_model('models:/{name}@champion'), {flavor}, cache emptied", seconds(ours["median"]),
                        f"served version {ours['version']}; {same}")]
    if "mlflow" in results:
        theirs = results["mlflow"]
        same = probabilities_match(report, f"MLflow {flavor}", theirs["probabilities"], limit["probabilities"], fail=False)
        rows.append((f"MLflow pyfunc.load_model('models:/{name}@champion'), {flavor}", seconds(theirs["median"]),
                     f"{versus(ours['median'], theirs['median'])}; {same}"))
    if flavor == "sklearn":
        rows.append(("skops.io.load of the model file (limit)", seconds(limit["skops"]), of_limit(ours["median"], limit["skops"])))
        rows.append(("joblib.load of a pickle of it", seconds(limit["joblib"]), of_limit(ours["median"], limit["joblib"])))
    else:
        rows.append(("lightgbm.Booster(model_file=...) (limit)", seconds(limit["booster"]), of_limit(ours["median"], limit["booster"])))
    return rows


def overhead(ours: dict[str, Any], key: str, scale: float, unit: str) -> str:
    """Conveyor's predictor against its own native model, alternated in one process, and
    ``validate_frame`` timed alone (``key``: ``one`` or ``batch``; ``scale`` seconds to ``unit``)."""
    pair, alone = ours[f"paired_{key}"], ours[f"validate_{key}"]
    extra = pair["wrapped"] - pair["native"]
    digits = 0 if unit == "µs" else 1
    return (f"alternated with its native model in one process: {extra * scale:+,.{digits}f} {unit} "
            f"({extra / pair['native']:+.0%}) = signature validation (alone: {alone * scale:,.{digits}f} {unit})")


def predict_rows(results: dict[str, dict[str, Any]], rows: int) -> list[Row]:
    """Scenario 3's rows: one-row latency, then batch throughput."""
    ours, limit = results["conveyor"], results["limit"]
    mine, raw = ours["predict"], limit["predict"]
    theirs = results["mlflow"]["predict"] if "mlflow" in results else None
    table: list[Row] = [("Conveyor predictor.predict_proba, 1 row", micros(mine["latency"]),
                         f"{of_limit(mine['latency'], raw['latency'])}; {overhead(ours, 'one', 1e6, 'µs')}")]
    if theirs is not None:
        table.append(("MLflow pyfunc predict, 1 row", micros(theirs["latency"]), versus(mine["latency"], theirs["latency"])))
    table.append(("pipeline.predict_proba, 1 row (limit)", micros(raw["latency"]), ""))
    table.append((f"Conveyor predictor.predict_proba, {rows:,} rows", rows_per_second(rows, mine["batch"]),
                  f"{of_limit(mine['batch'], raw['batch'])}; {overhead(ours, 'batch', 1000, 'ms')}"))
    if theirs is not None:
        table.append((f"MLflow pyfunc predict, {rows:,} rows", rows_per_second(rows, theirs["batch"]),
                      versus(mine["batch"], theirs["batch"])))
    table.append((f"pipeline.predict_proba, {rows:,} rows (limit)", rows_per_second(rows, raw["batch"]), ""))
    return table


def scenario_serve(cfg: Config, inputs: Inputs, report: Report, console: Console) -> None:
    """Scenarios 2 (both flavors) and 3 (the pipeline)."""
    pipeline = serve_all(cfg, inputs, console, "sklearn")
    booster = serve_all(cfg, inputs, console, "lightgbm")
    report.table(f"2. cold load by alias (libraries imported, files not yet in the model cache): seconds, median of "
                 f"{cfg.repeats}; the LightGBM model has {cfg.trees} trees",
                 load_rows(report, "sklearn", pipeline) + load_rows(report, "lightgbm", booster))
    report.table(f"3. warm predict_proba of the Pipeline: latency of 1 row (median of {cfg.calls} calls) and "
                 f"throughput on {cfg.score_rows:,} rows (median of {cfg.repeats}); {cfg.threads} thread(s) per process",
                 predict_rows(pipeline, cfg.score_rows))


# main ------------------------------------------------------------------------------------------


def parse_config(argv: list[str] | None, console: Console) -> Config:
    """The command line as a ``Config`` (creates the MLflow virtualenv when needed)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes; MLflow only if its venv is ready")
    parser.add_argument("--skip-mlflow", action="store_true", help="Conveyor and the limits only")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed logs, loads and batch predictions per tool (default 15; one-row calls: 50× that)")
    parser.add_argument("--threads", type=int, default=1, help="OpenMP threads per worker process (default 1)")
    args = parser.parse_args(argv)
    smoke = args.smoke
    python = None if args.skip_mlflow else ensure_mlflow(console, create=not smoke)
    if python is not None and not ensure_mlflow_libraries(python, console, install=not smoke):
        console.print(f"[yellow]--smoke: skipping MLflow ({MLFLOW_VENV} lacks this project's "
                      f"{' and '.join(SHARED_LIBRARIES)} versions)[/]")
        python = None
    elif not args.skip_mlflow and python is None:
        console.print(f"[yellow]--smoke: skipping MLflow ({MLFLOW_VENV} does not exist yet)[/]")
    repeats = args.repeats or (2 if smoke else 15)
    return Config(
        smoke=smoke,
        rows=2_000 if smoke else 50_000,
        score_rows=500 if smoke else 10_000,
        iterations=10 if smoke else 100,
        trees=20 if smoke else 200,
        repeats=repeats,
        calls=10 if smoke else 50 * repeats,
        threads=args.threads,
        mlflow=Mlflow(python, console) if python else None,
    )


def describe(cfg: Config, console: Console) -> None:
    """Print what is compared."""
    mlflow_version = cfg.mlflow.version if cfg.mlflow else "skipped"
    libraries = ", ".join(f"{name} {metadata.version(name)}" for name in ("scikit-learn", "skops", "lightgbm", "pandas"))
    console.print(f"Conveyor {conveyor.__version__} at {conveyor_revision()} vs MLflow {mlflow_version}; "
                  f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, {libraries}; "
                  f"work folder {WORK_DIR}")


def main(argv: list[str] | None = None) -> int:
    """Run every scenario and print the tables; 1 when the Conveyor side failed."""
    console = Console(width=None if sys.stdout.isatty() else 160)
    cfg = parse_config(argv, console)
    describe(cfg, console)
    report = Report(console, judge=False)
    started = time.perf_counter()
    try:
        with scratch("registry-inputs-") as folder:
            inputs = prepare_inputs(cfg, folder, console)
            with worker_environment(cfg.threads):
                scenario_log(cfg, inputs, report, console)
                scenario_serve(cfg, inputs, report, console)
    finally:
        if cfg.mlflow:
            cfg.mlflow.close()
    console.print(f"Total time {time.perf_counter() - started:,.0f} s.")
    if report.failures:
        console.print(f"[bold red]{len(report.failures)} Conveyor failure(s)[/]")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
