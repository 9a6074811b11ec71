"""Runs capture the code version they ran: commit, branch and the uncommitted diff."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import conveyor
from conveyor.core.config import load_settings
from conveyor.core.workspace import Workspace

SCRIPT = """
import conveyor
with conveyor.start_run(experiment="code") as run:
    print(run.id)
"""


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True, text=True).stdout.strip()


def _run_script(repo: Path, workspace: Path) -> str:
    env = {**os.environ, "CONVEYOR_WORKSPACE": str(workspace)}
    done = subprocess.run([sys.executable, str(repo / "train.py")], cwd=repo, env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_a_run_records_commit_branch_and_dirty_diff(tmp_path: Path) -> None:
    repo, root = tmp_path / "repo", tmp_path / "ws"
    repo.mkdir()
    root.mkdir()
    _git(repo, "init", "-q", "-b", "feature-x")
    _git(repo, "config", "user.email", "t@example.com")
    _git(repo, "config", "user.name", "t")
    (repo / "train.py").write_text(SCRIPT)
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-qm", "first")
    commit = _git(repo, "rev-parse", "HEAD")

    clean_id = _run_script(repo, root)
    (repo / "train.py").write_text(SCRIPT + "# tuned\n")
    dirty_id = _run_script(repo, root)

    workspace = Workspace(load_settings(root))
    clean = conveyor.get_run(clean_id, workspace=workspace)
    dirty = conveyor.get_run(dirty_id, workspace=workspace)
    assert (clean.info.git_commit, clean.info.git_branch, clean.info.git_dirty) == (commit, "feature-x", False)
    assert "_conveyor/git.diff" not in {a.path for a in clean.artifacts}
    assert dirty.info.git_dirty is True
    diff = workspace.tracking.read_artifact(dirty_id, "_conveyor/git.diff").decode()
    assert "+# tuned" in diff
    assert "train.py" in (dirty.info.command or "")
    workspace.close()


def test_artifacts_go_to_any_fsspec_url(tmp_path: Path) -> None:
    workspace = Workspace(load_settings(tmp_path, artifacts={"url": "memory://conveyor-fsspec-test"}))
    with conveyor.start_run(workspace=workspace) as run:
        info = workspace.tracking.log_bytes(run.id, b"remote bytes", "notes.txt")
    assert workspace.artifacts.fs.exists(workspace.artifacts.blob_path(info.sha256))
    assert workspace.tracking.read_artifact(run.id, "notes.txt") == b"remote bytes"
    assert not (tmp_path / ".conveyor" / "artifacts").exists()
    workspace.close()
