"""The tracking benchmark still runs end to end (tiny sizes; Conveyor and the limits)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "tracking.py"


def test_the_tracking_benchmark_smoke_run_passes() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--skip-mlflow"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "one log_metric call per point" in result.stdout
    assert "search_runs" in result.stdout


REGISTRY_BENCH = BENCH.with_name("registry.py")


def _figure(cell: str) -> float:
    """The first number of a table cell such as ``0.074 s``, ``7,697 µs`` or ``45,286 rows/s (11.0 ms)``."""
    match = re.search(r"\d[\d,]*(?:\.\d+)?", cell)
    assert match is not None, f"no number in {cell!r}"
    return float(match.group().replace(",", ""))


def test_the_registry_benchmark_smoke_run_passes() -> None:
    result = subprocess.run(
        [sys.executable, str(REGISTRY_BENCH), "--smoke", "--skip-mlflow"],
        check=False, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = {}
    for line in result.stdout.splitlines():
        cells = [cell.strip() for cell in line.split("│")]
        if len(cells) == 5 and cells[1].startswith("Conveyor "):
            rows[cells[1]] = (cells[2], cells[3])
    expected = [
        "Conveyor run.log_model(",
        "Conveyor load_model('models:/bench-model@champion'), sklearn",
        "Conveyor load_model('models:/bench-lgbm@champion'), lightgbm",
        "Conveyor predictor.predict_proba, 1 row",
        "Conveyor predictor.predict_proba, 500 rows",
    ]
    for prefix in expected:
        found = [name for name in rows if name.startswith(prefix)]
        assert len(found) == 1, f"no single row {prefix!r} in:\n{result.stdout}"
        figure, ratio = rows[found[0]]
        assert _figure(figure) > 0, (found[0], figure)
        if "load_model" in prefix:
            assert "same probabilities as the native model" in ratio, (found[0], ratio)
    assert "versions 2..3 registered (right)" in result.stdout
    assert "skops.io.dump to a local file (limit)" in result.stdout
    assert "Total time" in result.stdout


FEATURES_BENCH = BENCH.with_name("features.py")


def test_the_feature_store_benchmark_smoke_run_passes() -> None:
    result = subprocess.run(
        [sys.executable, str(FEATURES_BENCH), "--smoke", "--skip-feast"],
        check=False, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith("│ Conveyor ")]
    assert any("get_historical_features" in line and "all right, order kept" in line for line in lines), result.stdout
    online = [line for line in lines if "get_online_features" in line]
    assert len(online) == 2 and all(" right" in line for line in online), result.stdout
    assert sum("materialize(" in line for line in lines) == 2, result.stdout
    assert "Total time" in result.stdout


PIPELINES_BENCH = BENCH.with_name("pipelines.py")


def test_the_pipelines_benchmark_smoke_run_passes() -> None:
    result = subprocess.run(
        [sys.executable, str(PIPELINES_BENCH), "--smoke"], check=False, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = {line.split(":")[0]: line for line in result.stdout.splitlines()
             if line.startswith(("overhead: ", "tuning: ", "segments: "))}
    assert re.search(r"= [+-]\d+\.\d% of the plain wall time", lines.get("overhead", "")), result.stdout
    assert "test ROC AUC the same" in lines["overhead"], result.stdout
    tuning = lines.get("tuning", "")
    assert len(re.findall(r"\d[\d,.]*× (?:faster|slower)", tuning)) == 4, result.stdout
    assert re.search(r"cores busy \d+\.\d+ local, \d+\.\d+ Ray", tuning), result.stdout
    segments = lines.get("segments", "")
    assert segments.startswith("segments: 6 models;"), result.stdout
    assert len(re.findall(r"\d[\d,.]*× ", segments)) == 6, result.stdout
    assert "Total time" in result.stdout


SERVING_BENCH = BENCH.with_name("serving.py")


def test_the_serving_benchmark_smoke_run_passes() -> None:
    result = subprocess.run(
        [sys.executable, str(SERVING_BENCH), "--smoke", "--skip-competitors"],
        check=False, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for title in ("Single-row latency:", "Throughput:", "Prediction logging:", "Batch scoring of 200,000 rows"):
        assert title in result.stdout, f"no table {title!r} in:\n{result.stdout}"
    assert re.search(r"Conveyor \(prediction log on\), sklearn\s+│\s+p50 [\d.]+ ms · p99", result.stdout), result.stdout
    assert "output checked (row count, probabilities)" in result.stdout, result.stdout
    assert "Total time" in result.stdout
