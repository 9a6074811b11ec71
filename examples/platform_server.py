"""The end of the demo: the platform server over the demo's workspace, for people to browse.

The demo's people become users of the identity store with the roles they acted with
(Dana builds, Val validates, the agent retrains), plus a demo user who may look at
everything and approve; the server starts in the background (API at /api/v1, web UI
at /) and the demo prints its URL and the demo user's token, shown once.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
from rich.console import Console

import conveyor
from conveyor.governance import Actor, acting_as

DEMO_USER = "demo"
DEMO_ROLES = ["data-scientist", "ml-engineer", "validator"]
ADMIN = Actor("demo-setup", frozenset({"platform-admin"}))
PID_FILE = Path(".conveyor") / "server.pid"
LOG_FILE = Path(".conveyor") / "server.log"


def _free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def stop_previous() -> None:
    """Stop the server an earlier demo left running, if any."""
    if not PID_FILE.exists():
        return
    try:
        os.kill(int(PID_FILE.read_text()), signal.SIGTERM)
        time.sleep(0.5)
    except (ProcessLookupError, ValueError):
        pass
    PID_FILE.unlink(missing_ok=True)


def create_users(workspace: conveyor.Workspace, people: dict[str, list[str]]) -> str:
    """Users for the demo's people and the demo user; returns a fresh token of the demo user."""
    identity = workspace.identity
    with acting_as(ADMIN):
        for name, roles in {**people, DEMO_USER: DEMO_ROLES}.items():
            if identity.find_user(name) is None:
                identity.create_user(name, roles=roles)
        token, _ = identity.create_token(DEMO_USER, name="demo", expires_in=None)
    return token


def start_server(workspace: conveyor.Workspace, port: int = 8080) -> str:
    """Start ``conveyor server start`` in the background on the first free port from ``port``; its URL."""
    stop_previous()
    while not _free(port):
        port += 1
    command = [sys.executable, "-m", "conveyor", "-w", str(workspace.settings.workspace), "server", "start",
               "--port", str(port)]
    with open(LOG_FILE, "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
    PID_FILE.write_text(str(process.pid))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server stopped at start; see examples/{LOG_FILE}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return url
        except httpx.TransportError:
            time.sleep(0.3)
    raise RuntimeError(f"the server did not answer within 60 s; see examples/{LOG_FILE}")


def open_platform(workspace: conveyor.Workspace, people: dict[str, list[str]], console: Console) -> None:
    """Create the users, start the server and tell the reader how to use it."""
    token = create_users(workspace, people)
    with console.status("starting the platform server"):
        url = start_server(workspace)
    console.rule("[bold]Platform server")
    console.print(f"web UI and API: [bold]{url}[/]   (OpenAPI: {url}/docs)")
    console.print(f"token of user [bold]{DEMO_USER}[/] ({', '.join(DEMO_ROLES)}), shown once: [bold]{token}[/]")
    console.print(f"from the SDK or CLI: [bold]CONVEYOR_SERVER={url} CONVEYOR_TOKEN={token} "
                  ".venv/bin/conveyor experiments list[/]")
    console.print(f"it keeps running in the background (pid {PID_FILE.read_text()}, log examples/{LOG_FILE}); "
                  "stop it with [bold]make demo-stop[/]")
