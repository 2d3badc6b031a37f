"""Reading compressed files by the compression pandas names (``gzip``, ``bz2``, ``zip``, ``xz``)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import IO

__all__ = ["open_decompressed"]

_MODULES = {"gzip": "gzip", "bz2": "bz2", "xz": "lzma"}


def open_decompressed(path: Path, compression: str | None) -> IO[bytes]:
    """Open a file for reading its bytes, decompressed (``None``: as they are).

    Raises
    ------
    ValueError
        For a zip archive that does not hold exactly one file.
    """
    if compression is None:
        return open(path, "rb")
    if compression == "zip":
        import zipfile

        with zipfile.ZipFile(path) as archive:
            members = [n for n in archive.namelist() if not n.endswith("/")]
            if len(members) != 1:
                raise ValueError(f"the zip archive holds {len(members)} files; give it one")
            # The member keeps the archive's file open after the archive is closed.
            return archive.open(members[0])
    return importlib.import_module(_MODULES[compression]).open(path, "rb")
