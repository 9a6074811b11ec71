"""What a run records about where it ran: code version, environment, command, seed.

Captured once per process: the code a process runs and the packages it imported do
not change under it, and capturing costs subprocesses and a scan of installed packages.
"""

from __future__ import annotations

import functools
import getpass
import importlib.metadata
import os
import platform
import random
import shlex
import socket
import subprocess
import sys
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GitState:
    """The repository the program runs from, if any."""

    commit: str | None
    branch: str | None
    dirty: bool
    diff: str


@dataclass(frozen=True)
class ProcessContext:
    """Who ran what, where."""

    user: str
    host: str
    command: str
    python_version: str


def _git(*args: str, cwd: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def _program_dir() -> str:
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    return os.path.dirname(os.path.abspath(main)) if main else os.getcwd()


@functools.cache
def git_state() -> GitState:
    """Commit, branch and uncommitted diff of the repository holding the main program."""
    cwd = _program_dir()
    commit = _git("rev-parse", "HEAD", cwd=cwd)
    if commit is None:
        return GitState(None, None, False, "")
    branch = _git("rev-parse", "--abbrev-ref", "HEAD", cwd=cwd)
    status = _git("status", "--porcelain", "--untracked-files=no", cwd=cwd) or ""
    diff = _git("diff", "HEAD", cwd=cwd) if status.strip() else ""
    return GitState(commit.strip(), (branch or "").strip() or None, bool(status.strip()), diff or "")


@functools.cache
def environment_text() -> str:
    """Python, platform and every installed distribution with its version, one per line."""
    packages = sorted(
        {f"{dist.metadata['Name']}=={dist.version}" for dist in importlib.metadata.distributions() if dist.metadata["Name"]},
        key=str.lower,
    )
    header = [f"# python {platform.python_version()} ({sys.implementation.name})", f"# platform {platform.platform()}"]
    return "\n".join(header + packages) + "\n"


@functools.cache
def process_context() -> ProcessContext:
    """The user, host, pid, command line and Python version of this process."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return ProcessContext(
        user=user,
        host=socket.gethostname(),
        command=shlex.join([sys.executable, *sys.argv]),
        python_version=platform.python_version(),
    )


_seed: int | None = None


def seed_everything(seed: int) -> int:
    """Seed Python's, NumPy's and (if imported) PyTorch's generators; later runs record it."""
    global _seed
    if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**32:
        from conveyor.errors import ValidationError

        raise ValidationError(f"seed must be an integer in [0, 2**32), got {seed!r}", field="seed")
    random.seed(seed)
    np.random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)
    _seed = seed
    return seed


def current_seed() -> int | None:
    """The seed set by ``seed_everything`` in this process, if any."""
    return _seed
