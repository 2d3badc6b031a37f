"""Content hashes of files and folders (sha256, streamed)."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["file_sha256", "tree_sha256"]

_BLOCK = 1 << 20


def file_sha256(path: Path) -> str:
    """Return the sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def tree_sha256(path: Path) -> str:
    """Return the sha256 of a file, or of a folder's sorted relative paths and file hashes."""
    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        relative = file.relative_to(path).as_posix()
        digest.update(f"{relative}\0{file_sha256(file)}\n".encode())
    return digest.hexdigest()
