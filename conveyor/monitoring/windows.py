"""Time windows over prediction time: fixed (tumbling, aligned so reruns land on the
same boundaries) and rolling (a window of fixed length ending every step)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

from conveyor.errors import ValidationError

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_UNIT_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 7 * 86_400_000}
MAX_WINDOWS = 10_000


def parse_duration(text: str, field: str) -> int:
    """``30m``, ``6h``, ``1d``, ``2w`` in milliseconds.

    Raises:
        ValidationError: not a positive duration.
    """
    match = _DURATION.match(str(text).strip())
    if match is None or float(match[1]) <= 0:
        raise ValidationError(f"{text!r} is not a duration such as 30m, 6h, 1d or 2w", field=field)
    return int(float(match[1]) * _UNIT_MS[match[2]])


def parse_time(text: str | datetime | float | int, field: str) -> int:
    """An ISO 8601 date or time (UTC unless it says otherwise), a datetime or epoch
    seconds, in epoch milliseconds."""
    if isinstance(text, int | float):
        return int(text * 1000)
    if isinstance(text, datetime):
        moment = text
    else:
        try:
            moment = datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
        except ValueError as error:
            raise ValidationError(f"{text!r} is not an ISO 8601 date or time", field=field) from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Window:
    """``[start, end)`` in epoch milliseconds."""

    start: int
    end: int

    @property
    def seconds(self) -> float:
        """Length in seconds."""
        return (self.end - self.start) / 1000

    def __str__(self) -> str:
        return f"{iso(self.start)} .. {iso(self.end)}"


def windows(since: int, until: int, size: int, step: int | None = None) -> list[Window]:
    """Windows covering ``[since, until)``.

    Fixed (``step`` None): consecutive windows of ``size`` aligned to multiples of
    ``size`` since the epoch, the last one cut at ``until``. Rolling: windows of ``size``
    ending at ``until``, ``until - step``, ... while they start at or after ``since``.

    Raises:
        ValidationError: an empty range, or more than ``MAX_WINDOWS`` windows.
    """
    if until <= since:
        raise ValidationError(f"the range is empty: {iso(since)} is not before {iso(until)}", field="since")
    if step is None:
        starts = range(since - since % size, until, size)
        found = [Window(max(start, since), min(start + size, until)) for start in starts]
    else:
        count = max(1, (until - since - size) // step + 1)
        found = [Window(max(since, until - k * step - size), until - k * step) for k in reversed(range(count))]
    if len(found) > MAX_WINDOWS:
        raise ValidationError(f"{len(found)} windows: use a larger window or a shorter range", field="window")
    return found
