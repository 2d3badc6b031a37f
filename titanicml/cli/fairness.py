"""``titanicml fairness``: being built."""

from __future__ import annotations

from typing import Any


def add_commands(commands: Any) -> None:
    """Add the ``fairness`` command (not yet)."""
