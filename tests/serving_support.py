"""A real model server in a subprocess, for the HTTP tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from conveyor.core.workspace import Workspace


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def running_server(workspace: Workspace, *models: str, deployments: tuple[str, ...] = (), workers: int = 1,
                   settings: dict[str, str] | None = None, log: bool = True) -> Iterator[httpx.Client]:
    """``conveyor serve`` on a free port until the block ends; yields a client bound to it.

    ``settings`` are extra ``CONVEYOR_*`` variables (e.g. a short poll interval)."""
    port = free_port()
    command = [sys.executable, "-m", "conveyor", "-w", str(workspace.settings.workspace),
               "--metadata-url", workspace.settings.metadata_url, "serve", *models,
               *(arg for name in deployments for arg in ("--deployment", name)),
               "--port", str(port), "--workers", str(workers), "--log" if log else "--no-log"]
    env = {**os.environ, **(settings or {})}
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited {process.returncode}: {process.stderr.read().decode()[-2000:]}")
            try:
                if client.get("/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("server not ready after 60 s")
            time.sleep(0.2)
        yield client
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=20)
