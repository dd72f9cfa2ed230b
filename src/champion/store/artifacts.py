"""Content-addressed artifacts: the files and pickled values of versions, named by SHA-256.

:class:`Artifacts` is what the rest of champion needs of an artifact store; the one
implementation today, :class:`ArtifactStore`, keeps files in a directory
(``artifacts/ab/cdef…``). Replicas on several machines share that directory (NFS, a shared
volume). An object store (S3 and the like) fits the same interface: writes go to the bucket,
and ``root`` is a local cache that ``ensure_local`` fills before a worker loads a version.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

_HASH = re.compile(r"^[0-9a-f]{64}$")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def valid_hash(digest: str) -> bool:
    return bool(_HASH.match(digest))


class Artifacts(Protocol):
    #: A local directory laid out as ``ab/cdef…`` from which worker processes read.
    root: Path

    def has(self, digest: str) -> bool: ...

    def missing(self, digests: Iterable[str]) -> list[str]: ...

    def put(self, data: bytes) -> str: ...

    def put_verified(self, digest: str, chunks: Iterable[bytes]) -> None: ...

    def get(self, digest: str) -> bytes: ...

    def ensure_local(self, digests: Iterable[str]) -> None:
        """Make sure these artifacts are under ``root`` (a no-op for a local directory)."""
        ...


class ArtifactStore:
    """Artifacts in a directory, local or shared between machines."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(mode=0o700, parents=True, exist_ok=True)  # files are 0600 (mkstemp)
        with contextlib.suppress(OSError):
            if root.stat().st_uid == os.geteuid() and root.stat().st_mode & 0o077:
                os.chmod(root, 0o700)

    def path(self, digest: str) -> Path:
        if not valid_hash(digest):
            raise ValueError(f"not a SHA-256 digest: {digest!r}")
        return self.root / digest[:2] / digest[2:]

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def missing(self, digests: Iterable[str]) -> list[str]:
        return [d for d in dict.fromkeys(digests) if not self.has(d)]

    def put(self, data: bytes) -> str:
        digest = sha256(data)
        self._write(digest, [data])
        return digest

    def put_verified(self, digest: str, chunks: Iterable[bytes]) -> None:
        """Store chunks under ``digest``; raise ValueError when their hash differs."""
        self._write(digest, chunks)

    def _write(self, digest: str, chunks: Iterable[bytes]) -> None:
        target = self.path(digest)
        if target.is_file():
            return
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        h = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    h.update(chunk)
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
            if h.hexdigest() != digest:
                raise ValueError(f"content hash {h.hexdigest()} does not match {digest}")
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()

    def ensure_local(self, digests: Iterable[str]) -> None:
        """The directory is the local copy: nothing to fetch."""
