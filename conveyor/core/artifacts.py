"""Content-addressed artifact store over fsspec.

Bytes are stored once under their sha256 (``blobs/ab/abcdef...``) on a local folder or
any fsspec URL. Every read is verified against the digest it was asked for: corrupted
bytes raise ``IntegrityError`` and are never returned.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import fsspec

from conveyor.errors import IntegrityError, NotFound, Unavailable

CHUNK = 1 << 20


def sha256_file(path: str | Path) -> tuple[str, int]:
    """The sha256 hex digest and size of a local file."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class BlobReader(ABC):
    """Reading verified blobs, built on ``iter_chunks``: shared by the store and its HTTP client."""

    @abstractmethod
    def iter_chunks(self, sha256: str) -> Iterator[bytes]:
        """A blob's bytes, chunk by chunk; ``IntegrityError`` when they do not match the digest."""

    def get_bytes(self, sha256: str) -> bytes:
        """The verified bytes of a blob (see ``iter_chunks`` for the errors)."""
        return b"".join(self.iter_chunks(sha256))

    def download(self, sha256: str, destination: str | Path) -> Path:
        """Write a verified blob to a local file; nothing is left behind if verification fails."""
        destination = Path(destination)
        destination.parent.mkdir(parents=True, exist_ok=True)
        temporary = destination.with_name(f".{destination.name}.{uuid.uuid4().hex}.part")
        try:
            with open(temporary, "wb") as handle:
                handle.writelines(self.iter_chunks(sha256))
            os.replace(temporary, destination)
        finally:
            temporary.unlink(missing_ok=True)
        return destination


class ArtifactStore(BlobReader):
    """Immutable blobs addressed by their sha256, on any fsspec file system.

    Args:
        url: a local folder or an fsspec URL such as ``s3://bucket/prefix``.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.fs, self.root = fsspec.core.url_to_fs(url)
        except (ImportError, ValueError) as exc:
            from conveyor.errors import ValidationError

            raise ValidationError(f"setting 'artifacts.url': cannot open {url!r}: {exc}", field="artifacts.url") from exc
        self.fs.makedirs(self.root, exist_ok=True)

    def __repr__(self) -> str:
        return f"ArtifactStore({self.url!r})"

    def blob_path(self, sha256: str) -> str:
        """Where the blob with this digest lives."""
        return f"{self.root.rstrip('/')}/blobs/{sha256[:2]}/{sha256}"

    def exists(self, sha256: str) -> bool:
        """Whether a blob with this digest is stored."""
        return self.fs.exists(self.blob_path(sha256))

    def size(self, sha256: str) -> int:
        """The stored size in bytes of a blob."""
        try:
            return int(self.fs.size(self.blob_path(sha256)))
        except FileNotFoundError as exc:
            raise NotFound(f"artifact blob {sha256} is not in the store", field="sha256") from exc

    def put_bytes(self, data: bytes) -> tuple[str, int]:
        """Store ``data``; returns its digest and size. Storing the same bytes twice is free."""
        sha = hashlib.sha256(data).hexdigest()
        if not self.exists(sha):
            self._atomic_put(sha, lambda handle: handle.write(data))
        return sha, len(data)

    def put_file(self, path: str | Path) -> tuple[str, int]:
        """Store a local file's content; returns its digest and size."""
        sha, size = sha256_file(path)
        if not self.exists(sha):

            def copy(handle: BinaryIO) -> None:
                with open(path, "rb") as source:
                    while chunk := source.read(CHUNK):
                        handle.write(chunk)

            self._atomic_put(sha, copy)
        return sha, size

    def _atomic_put(self, sha: str, write: object) -> None:
        target = self.blob_path(sha)
        self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        temporary = f"{target}.tmp-{uuid.uuid4().hex}"
        try:
            with self.fs.open(temporary, "wb") as handle:
                write(handle)  # type: ignore[operator]
            self.fs.mv(temporary, target)
        except OSError as exc:
            raise Unavailable(f"artifact store {self.url!r} refused a write: {exc}") from exc

    def iter_chunks(self, sha256: str) -> Iterator[bytes]:
        """Stream a blob; the digest is checked when the stream ends.

        Raises:
            NotFound: no blob with that digest.
            IntegrityError: the stored bytes do not match the digest.
        """
        path = self.blob_path(sha256)
        digest = hashlib.sha256()
        try:
            handle = self.fs.open(path, "rb")
        except FileNotFoundError as exc:
            raise NotFound(f"artifact blob {sha256} is missing from {self.url!r}") from exc
        with handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
                yield chunk
        if digest.hexdigest() != sha256:
            raise IntegrityError(
                f"artifact blob {sha256} is corrupted: its content hashes to {digest.hexdigest()}"
            )
