"""The server load benchmark still runs end to end (``--smoke``: 3 clients for 5 s against
Conveyor's server on PostgreSQL, then the raw-SQL limit) with no error, no wrong search
answer and every acknowledged metric point stored."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "server_load.py"
COLUMNS = 9  # target, requests/s, points/s, runs, searches, errors, wrong answers, acknowledged / stored, ratio


def _rows(output: str) -> dict[str, list[str]]:
    """The rows of the Rich tables in ``output`` by their first cell, wrapped lines joined."""
    rows: list[list[str]] = []
    for line in output.splitlines():
        if not line.startswith("│"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("│").split("│")]
        if cells[0] or not rows:
            rows.append(cells)
        else:
            rows[-1] = [f"{old} {new}".strip() for old, new in zip(rows[-1], cells, strict=False)]
    return {row[0]: row for row in rows}


def _number(cell: str) -> float:
    match = re.search(r"\d[\d,]*(?:\.\d+)?", cell)
    assert match is not None, f"no number in {cell!r}"
    return float(match.group().replace(",", ""))


def test_the_server_load_benchmark_smoke_run_passes(postgres_url: str) -> None:
    # postgres_url: skips (fails under CONVEYOR_REQUIRE_SERVICES=1) without the PostgreSQL server;
    # the benchmark makes schemas of its own on it.
    result = subprocess.run([sys.executable, str(BENCH), "--smoke"], check=False, capture_output=True, text=True,
                            timeout=300, env={**os.environ, "COLUMNS": "250"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    rows = _rows(result.stdout)
    ours = next((row for name, row in rows.items() if name.startswith("Conveyor ") and len(row) == COLUMNS), None)
    assert ours is not None, result.stdout
    _, requests, points, runs, searches, errors, wrong, stored, _ = ours
    assert _number(requests) > 0 and _number(points) > 0 and _number(runs) > 0, ours
    assert _number(searches) > 0, ours
    assert errors == "0" and wrong == "0", ours
    acknowledged, kept = (part.strip() for part in stored.split("/"))
    assert acknowledged == kept and _number(acknowledged) > 0, ours
    limit = next((row for name, row in rows.items() if name.startswith("raw SQL") and len(row) == COLUMNS), None)
    assert limit is not None and limit[5] == "0", result.stdout
    assert re.search(r"Conveyor at \d+\.\d% of the", limit[-1]), limit
    for request in ("create run (5 params)", "log 100 metric points", "end run", "search, 100 runs at most"):
        assert re.fullmatch(r"[\d,.]+ / [\d,.]+ / [\d,.]+", rows[request][1]), rows.get(request)
    assert "MLflow" not in "".join(rows), result.stdout
    assert "FAIL" not in result.stdout and "Total time" in result.stdout
