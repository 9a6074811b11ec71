"""The scheduling benchmark still runs end to end (30 slots; Conveyor on PostgreSQL and
SQLite, and the bare-SQL limit), and every side executes each slot exactly once."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "automation.py"
SLOTS = 30


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


def test_the_automation_benchmark_smoke_run_passes(postgres_url: str) -> None:
    # postgres_url: skips (fails under CONVEYOR_REQUIRE_SERVICES=1) without the PostgreSQL server;
    # the benchmark makes schemas of its own on it.
    result = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--skip-apscheduler"], check=False, capture_output=True, text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"Scheduling {SLOTS} slots" in result.stdout, result.stdout
    rows = {(row[0], row[1]): row for row in _rows(result.stdout) if len(row) == 10}
    expected = [("Conveyor, 2 agents", "PostgreSQL"), ("Conveyor, 2 agents", "SQLite"),
                ("bare SQL, 2 threads (limit)", "PostgreSQL"), ("bare SQL, 2 threads (limit)", "SQLite")]
    assert set(expected) <= set(rows), result.stdout
    for key in expected:
        _, _, slots, seconds, rate, per_slot, executions, duplicates, missed, ratio = rows[key]
        assert slots == executions == str(SLOTS), rows[key]
        assert duplicates == missed == "0", rows[key]
        assert float(seconds) > 0 and float(per_slot.replace(",", "")) > 0 and rate.replace(",", "").isdigit(), rows[key]
        if "limit" in key[0]:
            assert re.fullmatch(r"Conveyor at \d+\.\d% of the limit \([\d,.]+× slower\)", ratio), ratio
    assert not any(row[0].startswith("APScheduler") for row in rows), result.stdout
    assert "Where Conveyor's time goes" in result.stdout
    assert "FAIL" not in result.stdout and "Total time" in result.stdout
