"""Users and tokens managed through the server, as the SDK and CLI do in remote mode."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from server_support import remote_of, serve, token_for

from conveyor.core.config import load_settings
from conveyor.core.workspace import Workspace
from conveyor.errors import PermissionDenied, Unauthenticated


def test_tokens_and_users_through_the_server(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    served = Workspace(load_settings(tmp_path / "ws"))
    with serve(served) as url:
        admin = remote_of(url, tmp_path / "admin", token_for(served, "alice", ["platform-admin"]))
        dana = remote_of(url, tmp_path / "dana", token_for(served, "dana", ["data-scientist"]))
        assert admin.identity.create_user("erin", roles=["viewer"]).roles == ["viewer"]
        with pytest.raises(PermissionDenied, match="users.admin"):
            dana.identity.create_user("mallory", roles=["platform-admin"])
        token, info = dana.identity.create_token(name="laptop", expires_in=timedelta(days=30))
        assert token.startswith("cvy_") and info.user == "dana" and info.expires_at is not None
        assert [t.name for t in dana.identity.list_tokens()].count("laptop") == 1
        with pytest.raises(PermissionDenied, match="users.admin"):
            dana.identity.list_tokens("alice")
        erin_token, _ = admin.identity.create_token("erin")
        erin = remote_of(url, tmp_path / "erin", erin_token)
        assert erin.tracking.list_experiments() == []
        dana.identity.revoke_token(info.id)
        revoked = remote_of(url, tmp_path / "revoked", token)
        with pytest.raises(Unauthenticated):
            revoked.tracking.list_experiments()
        listed = run_cli(admin, "users", "list", "--json")
        assert listed.returncode == 0, listed.stderr
        assert {"alice", "dana", "erin"} <= {user["name"] for user in json.loads(listed.stdout)}
    served.close()
