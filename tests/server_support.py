"""A real Conveyor server for tests: uvicorn in a background thread on a free port."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import uvicorn

from conveyor.core.config import load_settings
from conveyor.core.workspace import RemoteWorkspace, Workspace
from conveyor.governance import Actor, acting_as
from conveyor.server.app import create_app

ADMIN = Actor("test-admin", frozenset({"platform-admin"}))


def free_port() -> int:
    """A TCP port nobody listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve(workspace: Workspace, auth: bool = True, ui: bool = False) -> Iterator[str]:
    """Serve ``workspace`` over HTTP while the block runs; yields the base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(workspace, auth=auth, ui=ui), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def token_for(workspace: Workspace, user: str, roles: list[str] | tuple[str, ...]) -> str:
    """A fresh API token of ``user``, created (with ``roles``) if the server does not know them."""
    identity = workspace.identity
    with acting_as(ADMIN):
        if identity.find_user(user) is None:
            identity.create_user(user, roles=list(roles))
        else:
            identity.set_roles(user, list(roles))
        token, _ = identity.create_token(user)
    return token


def remote_of(url: str, folder: Path, token: str | None = None) -> RemoteWorkspace:
    """A workspace in ``folder`` that works through the server at ``url``."""
    folder.mkdir(parents=True, exist_ok=True)
    return RemoteWorkspace(load_settings(folder, server=url, token=token))


_SERVED: dict[int, tuple[Workspace, str]] = {}


@contextlib.contextmanager
def remote_workspace(served: Workspace, folder: Path) -> Iterator[RemoteWorkspace]:
    """``served`` behind a real server with authentication, used through HTTP as its default user."""
    actor = served.default_actor
    with serve(served) as url:
        remote = remote_of(url, folder, token_for(served, actor.name, sorted(actor.roles)))
        _SERVED[id(remote)] = (served, url)
        try:
            yield remote
        finally:
            remote.close()
            _SERVED.pop(id(remote), None)


def as_remote_user(remote: RemoteWorkspace, user: str, roles: list[str] | tuple[str, ...]) -> RemoteWorkspace:
    """The same server used as ``user`` holding ``roles``."""
    served, url = _SERVED[id(remote)]
    return remote_of(url, Path(remote.settings.workspace).parent / f"client-{user}", token_for(served, user, roles))


def cli_token(remote: RemoteWorkspace, user: str | None, env: dict[str, str] | None) -> str:
    """The token a CLI call as ``user`` sends: the workspace's own, or one of ``user`` holding the
    roles the call's ``CONVEYOR_ROLES`` gives them (as in-process)."""
    if user is None:
        assert remote.settings.token is not None
        return remote.settings.token
    served, _ = _SERVED[id(remote)]
    roles = json.loads((env or {}).get("CONVEYOR_ROLES", "{}")).get(user, served.settings.default_roles)
    return token_for(served, user, roles)
