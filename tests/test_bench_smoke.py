"""The tracking benchmark still runs end to end (tiny sizes; Conveyor and the limits)."""

from __future__ import annotations

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
