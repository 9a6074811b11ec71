"""Where "now" comes from: the system clock, or a simulated one.

Everything that stamps or schedules by time (the automation agent, the prediction log of
a server) asks a ``Clock``, so tests and the demo can run weeks of simulated time in
seconds through the same code as real time. Leases and timeouts that guard against dead
processes keep using real time: a simulated week must not expire a live worker's lease.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone
from typing import Protocol


class Clock(Protocol):
    """Epoch seconds now, and a way to wait."""

    def now(self) -> float:
        """Seconds since the epoch, UTC."""
        ...

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "system clock"


class SimulatedClock:
    """Time that starts at ``start`` and runs ``speed`` times faster than real time
    (``speed=86400``: a simulated day per real second)."""

    def __init__(self, start: float, speed: float = 1.0) -> None:
        if speed <= 0:
            from conveyor.errors import ValidationError

            raise ValidationError(f"speed must be positive, got {speed}", field="speed")
        self.start = start
        self.speed = speed
        self._origin = time.monotonic()

    def now(self) -> float:
        return self.start + (time.monotonic() - self._origin) * self.speed

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds) / self.speed)

    def __repr__(self) -> str:
        return f"simulated clock from {iso(self.start)} at {self.speed:g}x"


class ManualClock:
    """Time that moves only when told to (``advance``, or ``sleep``, which returns at once)."""

    def __init__(self, start: float) -> None:
        self._now = start
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward; returns the new now."""
        with self._lock:
            self._now += max(0.0, seconds)
            return self._now

    def set(self, when: float) -> None:
        """Jump to ``when`` (never backwards)."""
        with self._lock:
            self._now = max(self._now, when)

    def sleep(self, seconds: float) -> None:
        self.advance(seconds)

    def __repr__(self) -> str:
        return f"manual clock at {iso(self.now())}"


SYSTEM_CLOCK = SystemClock()


def iso(seconds: float) -> str:
    """An epoch time as ISO 8601 UTC, to the second."""
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
