"""How numbers and timestamps read in reports and model cards."""

from __future__ import annotations

from datetime import UTC, datetime

MISSING = "—"


def number(value: float | None) -> str:
    """Four significant digits; a dash for a missing value."""
    return MISSING if value is None else f"{value:.4g}"


def timestamp(value: int | str | None) -> str:
    """Milliseconds since the epoch as an ISO time in UTC; text passes through unchanged."""
    if value is None:
        return MISSING
    if isinstance(value, str):
        return value
    return datetime.fromtimestamp(value / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")
