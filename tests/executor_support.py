"""Functions the executor tests run in worker processes (spawned or Ray), importable there.

Kept free of Conveyor and of the test module so a worker can import it by name alone.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

PICKLES = 0


class Payload:
    """A shared object that counts its pickles in the sender and tags each unpickled copy."""

    def __init__(self, value: int) -> None:
        self.value = value
        self.load_id: str | None = None

    def __getstate__(self) -> dict[str, Any]:
        global PICKLES
        PICKLES += 1
        return {"value": self.value}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.value = state["value"]
        self.load_id = uuid.uuid4().hex


def add_offset(shared: dict[str, Any], item: int) -> int:
    """``shared["offset"] + item``, after the delay ``shared["delays"]`` gives the item."""
    time.sleep(shared["delays"].get(item, 0.0))
    return shared["offset"] + item


def load_signature(shared: Payload, item: int) -> tuple[int, str | None, int]:
    """Which process ran the item, which unpickled copy of the payload it saw, and its value."""
    time.sleep(0.05)
    return os.getpid(), shared.load_id, shared.value + item


def sleep_for(shared: Any, seconds: float) -> float:
    """Sleep ``seconds`` and return them."""
    time.sleep(seconds)
    return seconds


def fail_on_three(shared: Any, item: int) -> int:
    """Raise ``ValueError("bad item 3")`` for item 3; the others sleep ``shared`` seconds."""
    if item == 3:
        raise ValueError("bad item 3")
    time.sleep(shared)
    return item


def exit_abruptly(shared: Any, item: int) -> int:
    """Kill the worker process without a Python exception, as the OOM killer would."""
    os._exit(3)
