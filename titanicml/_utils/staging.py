"""Whole-or-absent writes: build beside the target, then rename into place.

Every artifact titanicml writes (a model directory, an exported copy, a data asset
version, a batch output file) is built in a hidden staging folder on the same file
system as its target and published with one rename, so a reader sees the whole
thing or nothing, and a crash leaves only a hidden folder that nothing lists::

    with staged_path(Path("titanic-model"), overwrite=True) as building:
        write_everything_into(building)
    # titanic-model is now the new model; the old one survived any failure
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

__all__ = ["Staging", "staged_path"]


class Staging:
    """A hidden folder in ``parent`` where something is built, removed on exit.

    Parameters
    ----------
    parent : Path
        Folder of the staging area; created if missing. Publish only to targets on
        the same file system (a rename cannot cross file systems).
    prefix : str
        Start of the hidden folder's name.
    """

    def __init__(self, parent: Path, prefix: str = ".staging-") -> None:
        parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))

    def __enter__(self) -> Staging:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        shutil.rmtree(self.path, ignore_errors=True)

    def publish(self, built: Path, target: Path, overwrite: bool = False) -> Path:
        """Move ``built`` (a file or folder in the staging area) to ``target`` whole.

        With ``overwrite`` an existing target is replaced: a file by one atomic
        ``os.replace``; a folder is first moved aside into the staging area, and
        put back if the second rename fails, so the old content survives any failure.

        Raises
        ------
        FileExistsError
            If ``target`` exists and ``overwrite`` is false.
        """
        if not (target.exists() or target.is_symlink()):
            os.rename(built, target)
            return target
        if not overwrite:
            raise FileExistsError(target)
        if built.is_file() and target.is_file():
            os.replace(built, target)
            return target
        aside = self.path / ".replaced"
        os.rename(target, aside)
        try:
            os.rename(built, target)
        except BaseException:
            os.rename(aside, target)
            raise
        return target


@contextmanager
def staged_path(target: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield the path to build ``target`` at; on success it is published whole.

    On any error (or Ctrl-C) inside the block the staged copy is deleted and an
    existing ``target`` is left as it was.

    Raises
    ------
    FileExistsError
        If ``target`` exists and ``overwrite`` is false (checked again at publication).
    """
    if target.exists() and not overwrite:
        raise FileExistsError(target)
    with Staging(target.parent, prefix=f".{target.name}.") as staging:
        built = staging.path / target.name
        yield built
        staging.publish(built, target, overwrite)
