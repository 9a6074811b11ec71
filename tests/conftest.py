"""Shared fixtures: every store test runs on SQLite and on PostgreSQL.

PostgreSQL comes from ``CONVEYOR_TEST_POSTGRES_URL`` (default: the local server,
database ``test``); each test gets its own schema. When the server is missing the
PostgreSQL cases skip, unless ``CONVEYOR_REQUIRE_SERVICES=1`` (as in CI), where they fail.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa

from conveyor.core.config import load_settings
from conveyor.core.workspace import RemoteWorkspace, Workspace

POSTGRES_URL = os.environ.get(
    "CONVEYOR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REQUIRE_SERVICES = os.environ.get("CONVEYOR_REQUIRE_SERVICES") == "1"


def _postgres_reachable() -> str | None:
    try:
        engine = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        engine.dispose()
    except Exception as error:  # noqa: BLE001  any failure means "not reachable"
        return str(error).splitlines()[0]
    return None


_postgres_problem: str | None | bool = False


def need_postgres() -> None:
    """Skip (or fail, when services are required) if PostgreSQL is not reachable."""
    global _postgres_problem
    if _postgres_problem is False:
        _postgres_problem = _postgres_reachable()
    if _postgres_problem:
        message = f"PostgreSQL at {POSTGRES_URL} unreachable: {_postgres_problem}"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)


REDIS_URL = os.environ.get("CONVEYOR_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
_redis_problem: str | None | bool = False


def need_redis() -> str:
    """The Redis URL; skip (or fail, when services are required) if Redis does not answer."""
    global _redis_problem
    if _redis_problem is False:
        try:
            import redis

            redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3).ping()
            _redis_problem = None
        except Exception as error:  # noqa: BLE001  any failure means "not reachable"
            _redis_problem = str(error).splitlines()[0]
    if _redis_problem:
        message = f"Redis at {REDIS_URL} unreachable: {_redis_problem}"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    return REDIS_URL


@pytest.fixture(params=["sqlite", "redis"])
def online_settings(request: pytest.FixtureRequest) -> Iterator[dict]:
    """Feature store settings selecting each online store; Redis gets a private namespace."""
    if request.param == "sqlite":
        yield {"online": {"type": "sqlite"}}
        return
    import redis

    url = need_redis()
    namespace = f"t{uuid.uuid4().hex[:12]}"
    yield {"online": {"type": "redis", "url": url, "namespace": namespace}}
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(f"{namespace}:*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh, private schema."""
    need_postgres()
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in POSTGRES_URL else "?"
    yield f"{POSTGRES_URL}{separator}options={quote(f'-csearch_path={schema}')}"
    with admin.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def metadata_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh metadata database URL, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta' / 'conveyor.db'}"
    return request.getfixturevalue("postgres_url")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked ``both_modes`` run on a local workspace and through a real server."""
    marked = metafunc.definition.get_closest_marker("both_modes") and not metafunc.definition.get_closest_marker("local_only")
    if marked and "mode" in metafunc.fixturenames:
        metafunc.parametrize("mode", ["local", "remote"])


@pytest.fixture
def mode() -> str:
    """How a test reaches its workspace: in-process (``local``) or through a server (``remote``)."""
    return "local"


@pytest.fixture
def workspace(tmp_path: Path, metadata_url: str, mode: str) -> Iterator[Workspace]:
    """A workspace in a temporary folder, on each metadata backend; for tests marked
    ``both_modes``, also the same workspace served by a real server and used through HTTP."""
    root = tmp_path / "ws"
    root.mkdir()
    ws = Workspace(load_settings(root, metadata={"url": metadata_url}))
    if mode == "remote":
        from server_support import remote_workspace

        with remote_workspace(ws, tmp_path / "client") as remote:
            yield remote
    else:
        yield ws
    ws.close()


@pytest.fixture
def tracking(workspace: Workspace):  # noqa: ANN201
    """The tracking service of a fresh workspace."""
    return workspace.tracking


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CONVEYOR_") and name not in {"CONVEYOR_TEST_POSTGRES_URL", "CONVEYOR_TEST_REDIS_URL",
                                                      "CONVEYOR_REQUIRE_SERVICES"}:
            monkeypatch.delenv(name)


@pytest.fixture
def run_cli():  # noqa: ANN201
    """Run ``conveyor`` in a subprocess against a workspace (its folder and metadata URL)."""
    import subprocess
    import sys

    def run(ws: Workspace, *args: str, user: str | None = None, env: dict[str, str] | None = None):  # noqa: ANN202
        extra = {"CONVEYOR_USER": user} if user else {}
        target = ["--metadata-url", ws.settings.metadata_url]
        if isinstance(ws, RemoteWorkspace):
            from server_support import cli_token

            extra, target = {"CONVEYOR_SERVER": ws.settings.server, "CONVEYOR_TOKEN": cli_token(ws, user, env)}, []
        return subprocess.run(
            [sys.executable, "-m", "conveyor", "-w", str(ws.settings.workspace), *target, *args],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "COLUMNS": "200", **extra, **(env or {})},
        )

    return run
