"""Retention of the production data store: whole hour partitions, never single rows.

An ``hour=`` folder whose hour ended more than ``days`` days ago is first renamed
to a hidden name (readers stop seeing it at once, whole) and then deleted.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from titanicml.capture.layout import hour_start

__all__ = ["remove_old_partitions"]

_HOUR = 3600.0


def remove_old_partitions(partitions: Path, days: float, now: float) -> list[str]:
    """Remove the hour partitions of ``partitions`` older than ``days``; return their hours.

    Parameters
    ----------
    partitions : Path
        A deployment's folder (``deployment=<name>``), holding ``hour=`` folders.
    days : float
        Retention: a partition is removed once its hour ended ``days`` days before ``now``.
    now : float
        The Unix time to measure from.
    """
    removed = []
    cutoff = now - days * 86_400
    for folder in sorted(partitions.glob("hour=*")):
        value = folder.name.removeprefix("hour=")
        try:
            ended = hour_start(value) + _HOUR
        except ValueError:
            continue
        if ended > cutoff:
            continue
        hidden = folder.with_name(f".removing-{os.getpid()}-{folder.name}")
        try:
            os.rename(folder, hidden)
        except OSError:  # another process removed it first
            continue
        shutil.rmtree(hidden, ignore_errors=True)
        removed.append(value)
    return removed
