"""The artifact store: content addressing, verification on read, any fsspec URL."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest

from conveyor.core.artifacts import ArtifactStore
from conveyor.errors import IntegrityError, NotFound


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ArtifactStore:
    if request.param == "local":
        return ArtifactStore(str(tmp_path / "artifacts"))
    return ArtifactStore(f"memory://conveyor-test-{uuid.uuid4().hex}")


def test_blobs_are_addressed_by_their_sha256(store: ArtifactStore) -> None:
    sha, size = store.put_bytes(b"hello")
    assert sha == hashlib.sha256(b"hello").hexdigest()
    assert size == 5
    assert store.get_bytes(sha) == b"hello"


def test_storing_the_same_content_twice_keeps_one_blob(store: ArtifactStore, tmp_path: Path) -> None:
    file = tmp_path / "a.bin"
    file.write_bytes(b"x" * 3_000_000)
    first = store.put_file(file)
    second = store.put_bytes(b"x" * 3_000_000)
    assert first == second
    blobs = [p for p in store.fs.find(store.root) if "/blobs/" in p]
    assert len(blobs) == 1


def test_a_corrupted_blob_raises_integrity_error(store: ArtifactStore) -> None:
    sha, _ = store.put_bytes(b"the real content")
    with store.fs.open(store.blob_path(sha), "wb") as handle:
        handle.write(b"tampered content")
    with pytest.raises(IntegrityError, match=f"artifact blob {sha} is corrupted"):
        store.get_bytes(sha)


def test_a_corrupted_download_leaves_no_file(store: ArtifactStore, tmp_path: Path) -> None:
    sha, _ = store.put_bytes(b"abc" * 1000)
    with store.fs.open(store.blob_path(sha), "wb") as handle:
        handle.write(b"xyz" * 1000)
    target = tmp_path / "out" / "file.bin"
    with pytest.raises(IntegrityError):
        store.download(sha, target)
    assert not target.exists()
    assert list(target.parent.iterdir()) == []


def test_a_missing_blob_is_not_found(store: ArtifactStore) -> None:
    with pytest.raises(NotFound, match="missing"):
        store.get_bytes("0" * 64)
