"""Deciding that a run's process is gone, so the run can be marked killed."""

from __future__ import annotations

import os
from typing import Any


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def is_dead(run: Any, host: str, own_pid: int, now_ms: int, timeout_ms: float) -> bool:
    """A running run is dead if its heartbeat is older than the timeout, or if it was
    started on this host by a process that no longer exists (or by an earlier process
    with this very pid: the caller has already excluded its own active runs)."""
    if now_ms - run.heartbeat_at > timeout_ms:
        return True
    if run.host != host or run.pid is None:
        return False
    return run.pid == own_pid or not pid_alive(run.pid)
