"""One tool's drift detection for ``bench/monitoring.py``, in a process of its own (so that
its peak RSS is its own): Conveyor and the SciPy/NumPy limit in the project's virtualenv,
Evidently in ``bench/.venvs/evidently``. Imports nothing from the project at module level,
only the standard library, NumPy, pandas, pyarrow and SciPy, which every virtualenv has.

Usage: ``python _monitoring_worker.py '{"tool": "conveyor"|"evidently"|"limit",
"reference": "r.parquet", "current": "c.parquet", "numeric": [...], "categorical": [...],
"source": "frames"|"files", "repeats": 3, "warmup_rows": 5000, "executor": null,
"html": "report.html" or null}'``.

``source: frames``: both files are read into pandas DataFrames first (not timed), then the
tool runs on the frames. ``files``: the tool is given the paths and reads them itself
(timed; Conveyor: ``conveyor.drift(path, path)``, the limit: one column at a time with
pyarrow). Before the timed runs, one untimed warm-up on the first ``warmup_rows`` rows of
each side (lazy imports, Ray start-up). Prints JSON lines: ``{"loaded": {...}}`` once the
data is in memory, then ``{"result": {"seconds": [...], "columns": {name: {"test",
"statistic", "threshold", "drifted"}}, "peak_rss": ..., "loaded_rss": ..., "html_bytes":
..., ...}}``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from _features_common import peak_rss
from _workload import emit

Columns = dict[str, dict[str, Any]]  # column -> {"test", "statistic", "threshold", "drifted"}
THRESHOLD = 0.1  # Evidently's default for both normed Wasserstein and Jensen-Shannon


def head(path: str, rows: int) -> pd.DataFrame:
    """The first ``rows`` rows of a Parquet file."""
    batch = next(pq.ParquetFile(path).iter_batches(batch_size=rows))
    return batch.to_pandas()


# the limit: the same statistics, written directly in SciPy and NumPy ------------------------


def _wasserstein(reference: np.ndarray, current: np.ndarray) -> float:
    from scipy import stats

    return float(stats.wasserstein_distance(reference, current) / max(float(np.std(reference)), 0.001))


def _jensen_shannon(reference: pd.Series | np.ndarray, current: pd.Series | np.ndarray) -> float:
    from scipy.spatial import distance

    ref = pd.Series(reference).value_counts()
    cur = pd.Series(current).value_counts()
    keys = ref.index.union(cur.index)
    p = ref.reindex(keys, fill_value=0).to_numpy() / len(reference)
    q = cur.reindex(keys, fill_value=0).to_numpy() / len(current)
    return float(distance.jensenshannon(p, q))


def _verdicts(stats: dict[str, tuple[str, float]]) -> Columns:
    return {name: {"test": test, "statistic": value, "threshold": THRESHOLD, "drifted": value >= THRESHOLD}
            for name, (test, value) in stats.items()}


def limit_frames(reference: pd.DataFrame, current: pd.DataFrame, numeric: list[str], categorical: list[str]) -> Columns:
    stats = {name: ("wasserstein", _wasserstein(reference[name].to_numpy(), current[name].to_numpy()))
             for name in numeric}
    stats |= {name: ("jensenshannon", _jensen_shannon(reference[name], current[name])) for name in categorical}
    return _verdicts(stats)


def limit_files(reference: str, current: str, numeric: list[str], categorical: list[str]) -> Columns:
    """One column of both files in memory at a time: exact statistics in bounded memory."""
    stats = {}
    for name in numeric + categorical:
        ref = pq.read_table(reference, columns=[name]).column(0)
        cur = pq.read_table(current, columns=[name]).column(0)
        if name in numeric:
            stats[name] = ("wasserstein", _wasserstein(ref.to_numpy(), cur.to_numpy()))
        else:  # value counts straight on the Arrow arrays, no Python strings
            stats[name] = ("jensenshannon", _arrow_jensen_shannon(ref, cur))
        del ref, cur
    return _verdicts(stats)


def _arrow_jensen_shannon(reference: Any, current: Any) -> float:
    from scipy.spatial import distance

    def counts(values: Any) -> dict[str, int]:
        tallied = values.value_counts()
        return dict(zip(tallied.field("values").to_pylist(), tallied.field("counts").to_pylist(), strict=True))

    ref, cur = counts(reference), counts(current)
    keys = sorted(set(ref) | set(cur), key=str)
    p = np.array([ref.get(k, 0) for k in keys]) / len(reference)
    q = np.array([cur.get(k, 0) for k in keys]) / len(current)
    return float(distance.jensenshannon(p, q))


# Evidently --------------------------------------------------------------------------------


def evidently_run(reference: pd.DataFrame, current: pd.DataFrame, numeric: list[str],
                  categorical: list[str]) -> tuple[Any, Columns]:
    """``Report([DataDriftPreset()]).run`` on both frames (columns declared), and its verdicts:
    each ``ValueDrift`` metric's value against its threshold (drift when value ≥ threshold)."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    snapshot = Report([DataDriftPreset()]).run(
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
        current_data=Dataset.from_pandas(current, data_definition=definition),
    )
    columns: Columns = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if not config.get("type", "").endswith("ValueDrift"):
            continue
        value, threshold = float(metric["value"]), float(config["threshold"])
        columns[config["column"]] = {"test": config["method"], "statistic": value, "threshold": threshold,
                                     "drifted": value >= threshold}
    return snapshot, columns


# Conveyor ---------------------------------------------------------------------------------


def conveyor_run(reference: Any, current: Any, executor: str | None) -> Columns:
    import conveyor

    table = conveyor.drift(reference, current, executor=executor)
    return {str(row["column"]): {"test": str(row["test"]), "statistic": float(row["statistic"]),
                                 "threshold": float(row["threshold"]), "drifted": bool(row["drifted"]),
                                 "type": str(row["type"])}
            for row in table.to_dict("records")}


def conveyor_html(reference: Any, current: Any, path: Path) -> tuple[int | None, float, str]:
    """Size of Conveyor's HTML drift report, seconds to build it, and a note when it cannot."""
    from conveyor import monitoring

    make_data = getattr(monitoring, "drift_report_data", None)
    if make_data is None:
        return None, 0.0, "conveyor.monitoring.drift_report_data does not exist yet"
    try:
        from conveyor.monitoring.report import render_report
    except ImportError as error:
        return None, 0.0, f"conveyor.monitoring.report.render_report: {error}"
    start = time.perf_counter()
    html = render_report(make_data(reference, current))
    if isinstance(html, str):
        path.write_text(html, encoding="utf-8")
    elif isinstance(html, bytes):
        path.write_bytes(html)
    elif isinstance(html, (str, os.PathLike)) and Path(html).exists():
        path = Path(html)
    return path.stat().st_size, time.perf_counter() - start, ""


# main -------------------------------------------------------------------------------------


def timed(call: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    samples, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = call()
        samples.append(time.perf_counter() - start)
    return samples, result


def main() -> None:
    args = json.loads(sys.argv[1])
    tool, numeric, categorical = args["tool"], args["numeric"], args["categorical"]
    from_files = args["source"] == "files"
    html = Path(args["html"]) if args.get("html") else None
    out: dict[str, Any] = {"html_bytes": None, "html_seconds": None, "html_note": ""}
    if from_files:
        reference, current = args["reference"], args["current"]
    else:
        reference, current = pd.read_parquet(args["reference"]), pd.read_parquet(args["current"])
    loaded = peak_rss()
    emit({"loaded": {"rss": loaded}})
    warm = (head(args["reference"], args["warmup_rows"]), head(args["current"], args["warmup_rows"]))
    start = time.perf_counter()
    if tool == "limit":
        limit_frames(*warm, numeric, categorical)
        run = ((lambda: limit_files(reference, current, numeric, categorical)) if from_files
               else (lambda: limit_frames(reference, current, numeric, categorical)))
        out["version"] = __import__("scipy").__version__
    elif tool == "evidently":
        evidently_run(*warm, numeric, categorical)
        run = lambda: evidently_run(reference, current, numeric, categorical)
        out["version"] = __import__("evidently").__version__
    elif tool == "conveyor":
        conveyor_run(*warm, args.get("executor"))
        run = lambda: conveyor_run(reference, current, args.get("executor"))
        out["version"] = __import__("conveyor").__version__
    else:
        raise SystemExit(f"unknown tool {tool!r}")
    out["warmup_seconds"] = time.perf_counter() - start
    del warm
    samples, result = timed(run, args["repeats"])
    out |= {"seconds": samples, "loaded_rss": loaded, "peak_rss": peak_rss()}
    if tool == "evidently":
        snapshot, out["columns"] = result
        if html is not None:
            start = time.perf_counter()
            snapshot.save_html(str(html))
            out |= {"html_bytes": html.stat().st_size, "html_seconds": time.perf_counter() - start}
        del snapshot
    else:
        out["columns"] = result
    if tool == "conveyor" and html is not None:
        try:
            out["html_bytes"], out["html_seconds"], out["html_note"] = conveyor_html(reference, current, html)
        except Exception as error:  # noqa: BLE001  reported, not fatal: the report is another helper's work
            out["html_note"] = f"render failed: {type(error).__name__}: {error}"[:300]
    out["peak_rss_with_html"] = peak_rss()
    emit({"result": out})
    if tool == "conveyor" and args.get("executor") == "ray" and "ray" in sys.modules:
        sys.modules["ray"].shutdown()


if __name__ == "__main__":
    main()
