"""The drift benchmark still runs end to end (tiny sizes; Conveyor and the SciPy limit)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "monitoring.py"


def _rows(output: str) -> list[list[str]]:
    """The rows of the Rich tables in ``output``, cells joined over wrapped lines."""
    rows: list[list[str]] = []
    for line in output.splitlines():
        if not line.startswith("│"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        if cells[0] or not rows:
            rows.append(cells)
        else:  # a wrapped line of the row above
            rows[-1] = [f"{old} {new}".strip() for old, new in zip(rows[-1], cells, strict=False)]
    return rows


def test_the_monitoring_benchmark_smoke_run_passes() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--smoke"], check=False, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Data drift, 5,000 rows per side" in result.stdout, result.stdout
    rows = _rows(result.stdout)
    conveyor = [row for row in rows if row[0].startswith("Conveyor conveyor.drift(")]
    assert len(conveyor) == 1, result.stdout
    _, figure, ratio = conveyor[0]
    assert re.fullmatch(r"\d[\d,]*\.\d+ s · peak RSS \d[\d,.]* [KMG]iB", figure), figure
    assert "flagged = injected ✓" in ratio, ratio
    assert re.search(r"× (?:faster|slower) than the limit", ratio), ratio
    limit = [row for row in rows if row[0].endswith("(limit)")]
    assert len(limit) == 1 and "flagged = injected ✓" in limit[0][2], result.stdout
    assert "Total time" in result.stdout
