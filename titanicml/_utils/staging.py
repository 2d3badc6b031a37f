"""Whole-or-absent writes: build beside the target, then rename into place.

Every artifact titanicml writes (a model directory, an exported copy, a data asset
version, a batch output file) is built in a hidden staging folder on the same file
system as its target and published with one rename, so a reader sees the whole
thing or nothing, and a crash leaves only a hidden folder that nothing lists::

    with staged_path(Path("titanic-model"), overwrite=True) as building:
        write_everything_into(building)
    # titanic-model is now the new model; the old one survived any failure

A staging folder's name records its owner (``...tml<pid>-<start>-<host>-<random>``:
pid, start time, and a key of the host and pid namespace;
:mod:`titanicml._utils.processes`). A process killed
outright (SIGKILL, out of memory, power cut) cannot remove its folder, so each new
staging folder removes the ones beside it whose owner no longer runs on this host,
after putting back a target that the dead owner had moved aside to replace it.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from titanicml._utils.processes import ProcessIdentity, current_process, is_running

__all__ = ["Staging", "remove_stale_staging", "staged_path"]

#: ``tml<pid>-<start>-<host key>-`` then ``tempfile``'s 8 random characters.
_OWNED = re.compile(r"tml(?P<pid>\d+)-(?P<start>\d*)-(?P<host>[0-9a-f]{8})-[a-z0-9_]{8}$")
_REAPING = ".reaping-"
_ASIDE = ".replaced-"
_ASIDE_TARGET = ".target"


def _owner_tag(owner: ProcessIdentity) -> str:
    return f"tml{owner.pid}-{owner.start}-{owner.host_key}-"


class Staging:
    """A hidden folder in ``parent`` where something is built, removed on exit.

    Parameters
    ----------
    parent : Path
        Folder of the staging area; created if missing. Publish only to targets on
        the same file system (a rename cannot cross file systems).
    prefix : str
        Start of the hidden folder's name; the owner's tag follows it.

    Notes
    -----
    Creating one removes the stale staging folders of dead processes in ``parent``
    (see :func:`remove_stale_staging`).
    """

    def __init__(self, parent: Path, prefix: str = ".staging-") -> None:
        parent.mkdir(parents=True, exist_ok=True)
        owner = current_process()
        self.path = Path(tempfile.mkdtemp(prefix=prefix + _owner_tag(owner), dir=parent))
        self._replaced = 0
        remove_stale_staging(parent, keep=self.path)

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
        self._replaced += 1
        aside = self.path / f"{_ASIDE}{self._replaced}"
        # Written before the move: if this process dies between the two renames,
        # whoever removes this folder puts the old target back (remove_stale_staging).
        Path(f"{aside}{_ASIDE_TARGET}").write_text(str(target.absolute()), encoding="utf-8")
        os.rename(target, aside)
        try:
            os.rename(built, target)
        except BaseException:
            os.rename(aside, target)
            raise
        return target


def remove_stale_staging(parent: Path, keep: Path | None = None) -> list[Path]:
    """Remove the staging folders in ``parent`` whose owner no longer runs; return them.

    Only folders named by :class:`Staging` on this host are considered; a folder of a
    running process (same pid and start time) or of another host or pid namespace
    (container) is left alone. A
    target the dead owner had moved aside to replace it, and not replaced yet, is
    put back first. Several processes may clean one folder at once: each stale
    folder is first claimed by a rename, which only one of them wins.
    """
    me = current_process()
    removed: list[Path] = []
    try:
        entries = list(os.scandir(parent))
    except OSError:
        return removed
    for entry in entries:
        match = _OWNED.search(entry.name)
        if match is None or (keep is not None and entry.name == keep.name):
            continue
        try:
            if match["host"] != me.host_key or not entry.is_dir(follow_symlinks=False):
                continue
            if is_running(int(match["pid"]), match["start"]):
                continue
            claimed = Path(parent, f"{_REAPING}{_owner_tag(me)}{secrets.token_hex(4)}")
            os.rename(entry.path, claimed)
        except OSError:  # another process claimed it first, or it went away
            continue
        _restore_replaced(claimed)
        shutil.rmtree(claimed, ignore_errors=True)
        removed.append(Path(entry.path))
    return removed


def _restore_replaced(folder: Path) -> None:
    """Put back every target that was moved aside into ``folder`` and never replaced."""
    for marker in folder.glob(f"{_ASIDE}*{_ASIDE_TARGET}"):
        aside = folder / marker.name[: -len(_ASIDE_TARGET)]
        try:
            target = Path(marker.read_text(encoding="utf-8"))
            if aside.exists() and not (target.exists() or target.is_symlink()):
                os.rename(aside, target)
        except OSError:
            continue


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
